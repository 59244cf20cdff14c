"""A good model's mistakes fill the grid: `images/val_misclassified` (and `images/val_worst`) hold `num_images` tiles.

The examples are picked over the whole validation pass, so a model at ~95% validation accuracy on the bundled
MNIST sample (400 validation images, ~20 mistakes) shows 16 of them, laid out 4 x 4.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from tests.conftest import TrainCLI, read_events

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
