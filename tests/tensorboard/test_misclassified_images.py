"""A good model's mistakes fill the grid: `images/val_misclassified` (and `images/val_worst`) hold `num_images` tiles.

The examples are picked over the whole validation pass, so a model at ~95% validation accuracy on the bundled
MNIST sample (400 validation images, ~20 mistakes) shows 16 of them, laid out 4 x 4.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.helpers.cli import TrainCLI
from tests.helpers.events import read_events
from trainscope.tasks import Classification
from trainscope.tensorboard.images import MisclassifiedImages, WorstImages

NUM_IMAGES = 16
COLUMNS = ROWS = 4  # near-square
PAD = 2  # make_grid's gap between tiles
TILE_HEIGHT = 3 * 28 + 12  # MNIST upscaled 3x so a caption fits, plus the caption strip
STRIP = (20, 20, 20)  # the caption strip's background


def tile_count(png: bytes, width: int, height: int) -> int:
    """How many of the grid's cells hold a captioned tile (an empty cell is the gap's flat grey)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert pixels.shape == (height, width, 3)
    tile_width = (width - PAD) // COLUMNS - PAD
    filled = 0
    for row in range(ROWS):
        for column in range(COLUMNS):
            top, left = PAD + row * (TILE_HEIGHT + PAD), PAD + column * (tile_width + PAD)
            filled += tuple(pixels[top + TILE_HEIGHT - 1, left + tile_width - 1]) == STRIP
    return filled


@pytest.mark.slow
def test_misclassified_and_worst_grids_of_a_good_model_hold_num_images_tiles(tmp_path: Path, data_dir: Path) -> None:
    train = TrainCLI(tmp_path / "outputs", data_dir)
    result = train(
        "model=cnn",
        "data=mnist_sample",
        "trainer.max_epochs=1",
        "trainer.test=false",
        "callbacks=none",
        "logging.text=false",
        "logging.confusion_matrix=false",
        "logging.histograms_every_n_epochs=0",
        f"logging.num_images={NUM_IMAGES}",
        "logging.worst_images=true",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = train.run_dir()
    val_acc = yaml.safe_load((run_dir / "metrics.json").read_text())["final"]["val/acc"]
    assert 0.9 <= val_acc <= 0.98  # a good model: its mistakes are few and spread over the whole split

    events = read_events(run_dir)
    for tag in ("images/val_misclassified", "images/val_worst"):
        (image,) = events.Images(tag)
        assert image.height == PAD + ROWS * (TILE_HEIGHT + PAD), tag
        assert (image.width - PAD) % COLUMNS == 0 and (image.width - PAD) // COLUMNS - PAD >= 3 * 28, tag
        assert tile_count(image.encoded_image_string, image.width, image.height) == NUM_IMAGES, tag


def offer_batches(monitor: MisclassifiedImages | WorstImages, wrong_positions: list[int]) -> list[int]:
    """Feed 5 batches of 4 examples (input value = position) with mistakes at `wrong_positions`; the kept positions."""
    for first in range(0, 20, 4):
        positions = torch.arange(first, first + 4)
        targets = torch.zeros(4, dtype=torch.long)
        wrong = torch.tensor([position in wrong_positions for position in positions.tolist()])
        logits = torch.zeros(4, 2)
        logits[:, 1] = torch.where(wrong, positions.float(), -1.0)  # later mistakes: more confident, higher loss
        predicted = logits.argmax(dim=1)
        inputs = positions.float().view(4, 1, 1, 1)
        monitor._examples.offer(monitor.scores(logits, targets, predicted, first), inputs, targets, predicted)
    kept = monitor._examples.take()
    return [] if kept is None else [int(value) for value in kept[1].flatten()]


def test_picks_span_the_whole_pass_without_reading_each_batch() -> None:
    mistakes = [2, 9, 10, 17, 19]
    assert offer_batches(MisclassifiedImages(num_images=3), mistakes) == [2, 9, 10]  # the first three, in order
    assert offer_batches(MisclassifiedImages(num_images=8), mistakes) == mistakes  # fewer mistakes than tiles
    assert offer_batches(MisclassifiedImages(num_images=3), []) == []
    worst = WorstImages(Classification().per_example_loss, num_images=3)
    assert offer_batches(worst, mistakes) == [19, 17, 10]  # the highest losses first
