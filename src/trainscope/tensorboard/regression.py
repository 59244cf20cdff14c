"""A regression's validation at a glance: predicted against true values as an image, residuals as a histogram.

Predictions are those of the task (`trainscope.core.view.TaskFacts.predictions`: in the targets' own units). Up
to `max_points` validation examples are kept on the device batch by batch (slices, no host read) and read once at
validation end; the scatter is drawn with Pillow, no plotting library. With several targets each gets its own
pair, tagged by its name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView
from trainscope.tensorboard.images import add_png, default_font

SIZE = 320  # pixels of the plot area's side
MARGIN = 44  # room for the axis labels


def render_scatter(true: np.ndarray, predicted: np.ndarray, title: str) -> np.ndarray:
    """Predicted (y) against true (x) values with the diagonal y = x, as an [H, W, 3] uint8 image.

    Both axes share one range, so a perfect model is the diagonal and a biased one sits off it.
    """
    finite = np.isfinite(true) & np.isfinite(predicted)
    true, predicted = true[finite], predicted[finite]
    low = float(min(true.min(initial=math.inf), predicted.min(initial=math.inf)))
    high = float(max(true.max(initial=-math.inf), predicted.max(initial=-math.inf)))
    if not math.isfinite(low) or high <= low:
        low, high = (low - 1, low + 1) if math.isfinite(low) else (0.0, 1.0)
    image = Image.new("RGB", (SIZE + MARGIN + 8, SIZE + MARGIN + 16), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = default_font()
    left, top = MARGIN, 16

    def place(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = SIZE / (high - low)
        return left + (x - low) * scale, top + SIZE - (y - low) * scale

    draw.rectangle((left, top, left + SIZE, top + SIZE), outline=(120, 120, 120))
    draw.line((left, top + SIZE, left + SIZE, top), fill=(200, 80, 80), width=1)  # y = x
    xs, ys = place(true, predicted)
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=(40, 90, 200))
    draw.text((left, 2), title, fill=(0, 0, 0), font=font)
    draw.text((left, top + SIZE + 4), f"{low:.4g}", fill=(0, 0, 0), font=font)
    draw.text((left + SIZE - 40, top + SIZE + 4), f"{high:.4g}  true", fill=(0, 0, 0), font=font)
    draw.text((2, top + SIZE - 12), f"{low:.4g}", fill=(0, 0, 0), font=font)
    draw.text((2, top), f"{high:.4g}", fill=(0, 0, 0), font=font)
    draw.text((2, top + 14), "pred", fill=(0, 0, 0), font=font)
    return np.asarray(image).copy()


class PredictionPanels(Callback):
    """Per validation: `val/predicted_vs_true` (image) and `val/residuals` (histogram, predicted - true); with
    several targets `val_predicted_vs_true/<target>` and `val_residuals/<target>`."""

    def __init__(self, max_points: int = 2000) -> None:
        self.max_points = max_points
        self._kept: list[tuple[Tensor, Tensor]] = []
        self._count = 0

    def on_validation_batch_end(self, trainer: TrainerView, inputs: Any, targets: Tensor, logits: Tensor) -> None:
        room = self.max_points - self._count
        if room <= 0:
            return
        predicted = trainer.task.predictions(logits.detach().float())[:room]
        self._kept.append((predicted, targets[:room].float().reshape(len(predicted), -1)))
        self._count += len(predicted)

    def on_validation_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        kept, self._kept, self._count = self._kept, [], 0
        if not kept:
            return
        predicted = torch.cat([pair[0] for pair in kept]).cpu().double()  # the one read of the pass
        true = torch.cat([pair[1] for pair in kept]).cpu().double()
        predicted, true = predicted.reshape(len(predicted), -1), true.reshape(len(true), -1)
        names = list(trainer.data.target_names) or [f"target_{index}" for index in range(true.shape[1])]
        writer, step = trainer.tensorboard.writer, trainer.state.global_step
        for index in range(true.shape[1]):
            single = true.shape[1] == 1
            image_tag = "val/predicted_vs_true" if single else f"val_predicted_vs_true/{names[index]}"
            residual_tag = "val/residuals" if single else f"val_residuals/{names[index]}"
            r2 = metrics.get("val/r2" if single else f"val_r2/{names[index]}", math.nan)
            title = f"{names[index]}: predicted vs true (R2 {r2:.3f}, {len(true)} examples)"
            add_png(writer, image_tag, render_scatter(true[:, index].numpy(), predicted[:, index].numpy(), title), step)
            writer.add_histogram(residual_tag, (predicted[:, index] - true[:, index]).numpy(), step)
