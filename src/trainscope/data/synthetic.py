"""Learnable random images for tests and smoke runs: each class has its own mean image, plus noise.

Fixed seeds make the data identical in every run; the test split is drawn from its own seed.
"""

from __future__ import annotations

import torch

# Fixed, so the synthetic dataset is the same whatever trainer.seed is (like a downloaded dataset).
_PROTOTYPE_SEED = 1234
_SPLIT_SEEDS = {"train": 1, "test": 2}
# Per-pixel class signal and noise on [0, 1]; the config's mean/std (0.5, 0.28) normalize this.
_SIGNAL_SCALE = 0.2
_NOISE_SCALE = 0.2


def synthetic_split_size(num_samples: int, split: str) -> int:
    """`num_samples` train images (val is carved from them) and a quarter as many test images."""
    return num_samples if split == "train" else max(1, num_samples // 4)


def synthetic_class_names(num_classes: int) -> list[str]:
    return [f"class_{index}" for index in range(num_classes)]


def make_synthetic(
    input_shape: tuple[int, int, int], num_classes: int, num_samples: int, split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return uint8 images [N, C, H, W] and int64 labels; classes are balanced."""
    prototypes = torch.randn((num_classes, *input_shape), generator=torch.Generator().manual_seed(_PROTOTYPE_SEED))
    generator = torch.Generator().manual_seed(_SPLIT_SEEDS[split])
    count = synthetic_split_size(num_samples, split)
    labels = (torch.arange(count) % num_classes)[torch.randperm(count, generator=generator)]
    noise = torch.randn((count, *input_shape), generator=generator)
    images = 0.5 + _SIGNAL_SCALE * prototypes[labels] + _NOISE_SCALE * noise
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels.to(torch.int64)
