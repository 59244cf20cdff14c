"""A user's own Dataset, trained with `data=custom` (see docs/data.md):

    python train.py data=custom data.train._target_=examples.shapes_dataset.Shapes +data.train.split=train \
        +data.test._target_=examples.shapes_dataset.Shapes +data.test.split=test

Images of three shapes (disc, square, cross) drawn at random sizes and positions with noise: nothing to
download, learnable in a few epochs. It is a plain `torch.utils.data.Dataset`: nothing trainscope-specific.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class Shapes(Dataset):
    """`num_samples` grayscale `size` x `size` images of a disc, a square or a cross, normalized to mean 0."""

    classes = ["disc", "square", "cross"]

    def __init__(self, split: str = "train", num_samples: int = 600, size: int = 24) -> None:
        generator = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
        self.targets = torch.randint(0, len(self.classes), (num_samples,), generator=generator)
        self.images = torch.stack([self._draw(int(label), size, generator) for label in self.targets])

    @staticmethod
    def _draw(label: int, size: int, generator: torch.Generator) -> torch.Tensor:
        radius = int(torch.randint(size // 6, size // 3, (1,), generator=generator))
        cy, cx = (int(v) for v in torch.randint(radius, size - radius, (2,), generator=generator))
        y, x = torch.meshgrid(torch.arange(size) - cy, torch.arange(size) - cx, indexing="ij")
        if label == 0:
            shape = x**2 + y**2 <= radius**2
        elif label == 1:
            shape = (x.abs() <= radius) & (y.abs() <= radius)
        else:
            shape = ((x.abs() <= radius // 3) & (y.abs() <= radius)) | ((y.abs() <= radius // 3) & (x.abs() <= radius))
        image = shape.float() + 0.2 * torch.randn(size, size, generator=generator)
        return ((image - 0.3) / 0.5).unsqueeze(0)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])
