"""Image grids are tiled without torchvision, exactly as `torchvision.utils.make_grid` tiles them."""

from __future__ import annotations

import pytest
import torch
from torchvision.utils import make_grid

from trainscope.tensorboard.images import grid, tile


@pytest.mark.parametrize("count", [1, 2, 5, 16, 17])
@pytest.mark.parametrize("columns", [1, 3, 4, 8])
def test_tile_matches_make_grid(count: int, columns: int) -> None:
    images = torch.rand(count, 3, 7, 9, generator=torch.Generator().manual_seed(count))
    expected = make_grid(images, nrow=columns, padding=2, pad_value=0.5)
    assert torch.equal(tile(images, columns, padding=2, pad_value=0.5), expected)


def test_grid_is_near_square_uint8_with_gaps() -> None:
    images = torch.ones(16, 3, 10, 10)
    pixels = grid(images)
    assert pixels.shape == (4 * 12 + 2, 4 * 12 + 2, 3) and str(pixels.dtype) == "uint8"
    assert pixels[0, 0].tolist() == [128, 128, 128]  # the gap (0.5) between tiles
    assert pixels[2, 2].tolist() == [255, 255, 255]  # a tile's first pixel
