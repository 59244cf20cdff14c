"""Image grids in TensorBoard: what the model sees, and what it gets wrong.

Grids are tiled here, as `torchvision.utils.make_grid` tiles them (importing torchvision for it cost a run
~0.15 s); labels are drawn with Pillow (a torchvision dependency), so no plotting library is needed.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from trainscope.adapters.tensorboard_private import event_file_writer
from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView

MIN_TILE_SIZE = 64  # small images (MNIST's 28 px) are upscaled so a label fits under them


@functools.lru_cache(maxsize=1)
def default_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font, loaded once (loading it costs tens of milliseconds)."""
    return ImageFont.load_default()


def unnormalize(inputs: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Undo the data's Normalize, back to [0, 1] pixels on the CPU, as 3-channel images."""
    inputs = inputs.detach().float().cpu()
    channels = inputs.shape[1]
    mean_t = torch.tensor(list(mean) * (channels // len(mean) or 1))[:channels].view(1, -1, 1, 1)
    std_t = torch.tensor(list(std) * (channels // len(std) or 1))[:channels].view(1, -1, 1, 1)
    images = (inputs * std_t + mean_t).clamp(0, 1)
    return images.expand(-1, 3, -1, -1) if channels == 1 else images[:, :3]


def upscale(images: Tensor, min_size: int = MIN_TILE_SIZE) -> Tensor:
    """Nearest-neighbour upscale by an integer factor, so small images stay crisp and labels readable."""
    factor = max(1, -(-min_size // images.shape[-1]))
    if factor == 1:
        return images
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def labelled_tiles(images: Tensor, captions: Sequence[str]) -> Tensor:
    """Each image with its caption on a dark strip below it: [N, 3, H + strip, W'] in [0, 1].

    Tiles are widened (image centred) when a caption is wider than the image, so labels are never cut.
    """
    font = default_font()
    images = upscale(images)
    strip = 12
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max((int(measure.textlength(caption, font=font)) + 4 for caption in captions), default=0)
    width, height = max(images.shape[-1], text_width), images.shape[-2]
    tiles = []
    for image, caption in zip(images, captions, strict=True):
        canvas = Image.new("RGB", (width, height + strip), (20, 20, 20))
        pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        canvas.paste(Image.fromarray(pixels), ((width - image.shape[-1]) // 2, 0))
        ImageDraw.Draw(canvas).text((2, height), caption, fill=(255, 220, 60), font=font)
        tiles.append(torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(tiles)


def grid(images: Tensor) -> np.ndarray:
    """A near-square [H, W, 3] uint8 grid (16 tiles: 4 x 4) with a thin gap between tiles."""
    columns = max(1, math.ceil(math.sqrt(len(images))))
    tiled = tile(images, columns, padding=2, pad_value=0.5)
    return (tiled.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def tile(images: Tensor, columns: int, padding: int, pad_value: float) -> Tensor:
    """[N, 3, H, W] images as one [3, H', W'] image, row by row, `padding` pixels of `pad_value` around each:
    the result of `torchvision.utils.make_grid(images, nrow=columns, padding=padding, pad_value=pad_value)`
    (a single image comes back as it is, without a border, as make_grid returns it)."""
    if len(images) == 1:
        return images[0]
    count, channels, height, width = images.shape
    columns = min(columns, count)
    rows = -(-count // columns)
    cell_height, cell_width = height + padding, width + padding
    canvas = images.new_full((channels, cell_height * rows + padding, cell_width * columns + padding), pad_value)
    for index, image in enumerate(images):
        top, left = (index // columns) * cell_height + padding, (index % columns) * cell_width + padding
        canvas[:, top : top + height, left : left + width] = image
    return canvas


def add_png(writer: SummaryWriter, tag: str, image: np.ndarray, step: int) -> None:
    """Write an [H, W, 3] uint8 image as a TensorBoard image summary.

    Same record as `SummaryWriter.add_image`, but encoded straight from uint8 with fast PNG compression:
    about half the cost, which matters for an image every validation.
    """
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    height, width, channels = image.shape
    summary = Summary(
        value=[
            Summary.Value(
                tag=tag,
                image=Summary.Image(
                    height=height, width=width, colorspace=channels, encoded_image_string=buffer.getvalue()
                ),
            )
        ]
    )
    event_file_writer(writer).add_summary(summary, step)  # what add_image does after encoding


class InputImages(Callback):
    """A grid of the first training batch (augmented and un-normalized) at the start: `images/train_inputs`,
    captioned with each example's target as the task reads it. Nothing for inputs that are not images."""

    def __init__(self, num_images: int = 16) -> None:
        self.num_images = num_images

    def on_fit_start(self, trainer: TrainerView) -> None:
        if trainer.state.global_step > 0 or not trainer.data.image_inputs:
            return  # a resumed run already logged its inputs; a table has no picture to show
        source = trainer.data.train
        source.set_epoch(trainer.state.epoch)  # the loop sets it again; reseeding is idempotent
        with torch.random.fork_rng(devices=[]):  # a DataLoader draws its base seed: keep the run's RNG as is
            inputs, targets = trainer.task.split_batch(next(iter(source.iter_from(0))))
        count = min(self.num_images, len(inputs))
        captions = [trainer.task.caption(target) for target in targets[:count]]
        images = unnormalize(inputs[:count], trainer.data.mean, trainer.data.std)
        add_png(trainer.tensorboard.writer, "images/train_inputs", grid(labelled_tiles(images, captions)), 0)


class KeptExamples:
    """The `capacity` highest-scoring examples of a whole pass, kept on the device without a host sync.

    Each batch's best candidates (`topk`: fixed shapes, nothing read back) are merged with those kept so
    far, so memory stays at `capacity` examples however long the pass; `take` reads them once at the end.
    A score of -inf marks an example that must never be shown.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._kept: tuple[Tensor, ...] | None = None  # scores, inputs, targets, predicted; best first

    def offer(self, scores: Tensor, inputs: Tensor, targets: Tensor, predicted: Tensor) -> None:
        candidates = self._best((scores, inputs, targets, predicted))  # gather a few, never copy the batch
        if self._kept is not None:
            candidates = self._best(tuple(torch.cat(pair) for pair in zip(self._kept, candidates, strict=True)))
        self._kept = candidates

    def _best(self, examples: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        best = examples[0].topk(min(self.capacity, len(examples[0]))).indices
        return tuple(tensor[best] for tensor in examples)

    def take(self) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """Scores, inputs, targets and predictions of the kept examples with a finite score (None if none); resets."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        scores = kept[0].cpu()
        shown = (scores > float("-inf")).nonzero().flatten()
        if len(shown) == 0:
            return None
        return scores[shown], kept[1][shown.to(kept[1].device)], kept[2].cpu()[shown], kept[3].cpu()[shown]


class ValidationExamples(Callback):
    """A grid of `num_images` validation examples picked by `scores` over the whole validation pass.

    Every `every_n_epochs` validations (and the last), at the step of that validation. Picking happens on
    the device, batch by batch (`KeptExamples`), and is read once at validation end: no per-batch sync.
    """

    tag = ""

    def __init__(self, num_images: int = 16, every_n_epochs: int = 1) -> None:
        self.num_images, self.every_n_epochs = num_images, max(1, every_n_epochs)
        self._examples = KeptExamples(num_images)
        self._seen = 0  # validation examples offered so far in this pass

    def scores(self, logits: Tensor, targets: Tensor, predicted: Tensor, first_position: int) -> Tensor:
        """Per example: higher is shown first, -inf never; `first_position` numbers the batch's first example."""
        raise NotImplementedError

    def caption(self, trainer: TrainerView, predicted: Tensor, target: Tensor, score: float) -> str:
        return f"{trainer.task.caption(predicted)} / {trainer.task.caption(target)}"

    def _active(self, trainer: TrainerView) -> bool:
        epoch = trainer.state.epoch + 1  # validation runs before the epoch is counted
        return (epoch % self.every_n_epochs == 0 or epoch == trainer.max_epochs) and trainer.data.image_inputs

    def on_validation_batch_end(self, trainer: TrainerView, inputs: Any, targets: Tensor, logits: Tensor) -> None:
        if not self._active(trainer):
            return
        logits = logits.detach()
        predicted = trainer.task.predictions(logits)
        self._examples.offer(self.scores(logits, targets, predicted, self._seen), inputs.detach(), targets, predicted)
        self._seen += len(targets)

    def on_validation_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        self._seen = 0
        kept = self._examples.take()
        if kept is None:
            return
        scores, inputs, targets, predicted = kept
        captions = [self.caption(trainer, predicted[i], targets[i], float(scores[i])) for i in range(len(targets))]
        images = unnormalize(inputs, trainer.data.mean, trainer.data.std)
        add_png(trainer.tensorboard.writer, self.tag, grid(labelled_tiles(images, captions)), trainer.state.global_step)


class MisclassifiedImages(ValidationExamples):
    """The first `num_images` misclassified validation examples, captioned `predicted / true`."""

    tag = "images/val_misclassified"

    def scores(self, logits: Tensor, targets: Tensor, predicted: Tensor, first_position: int) -> Tensor:
        # float32 (MPS has no float64) numbers positions exactly up to 2**24 examples, far beyond a val split.
        positions = torch.arange(first_position, first_position + len(targets), device=targets.device)
        return torch.where(predicted != targets, -positions.float(), float("-inf"))


class WorstImages(ValidationExamples):
    """The `num_images` validation examples with the highest loss, captioned `predicted / true (loss)`.

    `per_example_loss` is the task's (`Task.per_example_loss`): (outputs, targets) -> the loss of each example.
    """

    tag = "images/val_worst"

    def __init__(
        self, per_example_loss: Callable[[Tensor, Tensor], Tensor], num_images: int = 16, every_n_epochs: int = 1
    ) -> None:
        super().__init__(num_images, every_n_epochs)
        self.per_example_loss = per_example_loss

    def scores(self, logits: Tensor, targets: Tensor, predicted: Tensor, first_position: int) -> Tensor:
        return self.per_example_loss(logits, targets)

    def caption(self, trainer: TrainerView, predicted: Tensor, target: Tensor, score: float) -> str:
        return f"{super().caption(trainer, predicted, target, score)} ({score:.2f})"
