"""Confusion matrix and per-class precision/recall of every validation epoch.

The matrix is counted on the device with one `bincount` per batch (no sync), read once at validation end,
and drawn with Pillow: no plotting library.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView
from trainscope.tensorboard.images import add_png, default_font


def confusion_counts(targets: Tensor, predicted: Tensor, num_classes: int) -> Tensor:
    """[true, predicted] counts of one batch, computed where the tensors live."""
    flat = targets.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def precision_recall(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """Per-class precision (column-wise) and recall (row-wise); 0 where a class was never predicted/seen."""
    matrix = matrix.double()
    correct = matrix.diagonal()
    precision = correct / matrix.sum(dim=0).clamp(min=1)
    recall = correct / matrix.sum(dim=1).clamp(min=1)
    return precision, recall


CELL = 36  # pixels per matrix cell


def render_confusion_matrix(matrix: Tensor, class_names: Sequence[str]) -> np.ndarray:
    """A labelled heat map of `matrix` (rows: true class, columns: predicted) as an [H, W, 3] uint8 array.

    Colours are row-normalized (each true class sums to 1), so rare classes are as readable as common ones;
    each cell shows the raw count. The labelled frame is drawn once per run and reused.
    """
    counts = matrix.cpu().numpy()
    size = len(counts)
    labels = tuple(str(name)[:10] for name in class_names[:size]) + tuple(str(i) for i in range(len(class_names), size))
    frame, left, top = _frame(labels)
    image = frame.copy()
    draw = ImageDraw.Draw(image)
    font = default_font()
    rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    for true in range(size):
        for predicted in range(size):
            shade = float(rows[true, predicted])
            fade = int(255 * (1 - shade))
            colour = (fade, int(255 * (1 - 0.6 * shade)), 255) if true == predicted else (255, fade, fade)
            x, y = left + predicted * CELL, top + true * CELL
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=colour, outline=(200, 200, 200))
            ink = (255, 255, 255) if shade > 0.6 else (0, 0, 0)
            draw.text((x + 3, y + CELL // 2 - 6), str(int(counts[true, predicted])), fill=ink, font=font)
    return np.asarray(image).copy()


@functools.lru_cache(maxsize=4)
def _frame(labels: tuple[str, ...]) -> tuple[Image.Image, int, int]:
    """The title and class labels around an empty matrix, and where the matrix's top-left cell goes."""
    font = default_font()
    size = len(labels)
    margin = 12 + 6 * max(len(label) for label in labels)
    header = 16
    left, top = margin, header + margin
    image = Image.new("RGB", (left + CELL * size + 4, top + CELL * size + 4), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((margin, 2), "predicted ->  (rows: true class)", fill=(0, 0, 0), font=font)
    for index, label in enumerate(labels):  # column labels: vertical text drawn on its own image
        text = Image.new("RGB", (margin, 12), (255, 255, 255))
        ImageDraw.Draw(text).text((2, 0), label, fill=(0, 0, 0), font=font)
        image.paste(text.rotate(90, expand=True), (left + index * CELL + CELL // 2 - 6, header))
        draw.text((2, top + index * CELL + CELL // 2 - 6), label, fill=(0, 0, 0), font=font)
    return image, left, top


class ConfusionMatrixLogger(Callback):
    """Per validation: `val/confusion_matrix` image (optional) and `val_precision/<class>`, `val_recall/<class>`,
    `val/precision_macro`, `val/recall_macro` scalars."""

    def __init__(self, image: bool = True) -> None:
        self.image = image
        self._matrix: Tensor | None = None

    def on_validation_batch_end(self, trainer: TrainerView, inputs: Any, targets: Tensor, logits: Tensor) -> None:
        counts = confusion_counts(targets, trainer.task.predictions(logits), trainer.data.num_classes)
        self._matrix = counts if self._matrix is None else self._matrix + counts

    def on_validation_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        matrix, self._matrix = self._matrix, None
        if matrix is None:
            return
        matrix = trainer.distributed.all_reduce_sum(matrix).cpu()  # each rank counted its own shard of val
        step = trainer.state.global_step
        writer = trainer.tensorboard.writer
        names = list(trainer.data.class_names)
        precision, recall = precision_recall(matrix)
        for index in range(len(matrix)):
            name = (names[index] if index < len(names) else str(index)).replace("/", "_").replace(" ", "_")
            writer.add_scalar(f"val_precision/{name}", float(precision[index]), step)
            writer.add_scalar(f"val_recall/{name}", float(recall[index]), step)
        writer.add_scalar("val/precision_macro", float(precision.mean()), step)
        writer.add_scalar("val/recall_macro", float(recall.mean()), step)
        if self.image:
            add_png(writer, "val/confusion_matrix", render_confusion_matrix(matrix, names), step)
