"""The BatchSource protocol the training loop iterates, and what both implementations share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch

from trainscope.data.augment import AugmentConfig


@runtime_checkable
class BatchSource(Protocol):
    """Batches of one split: (inputs float32 normalized, targets int64), both on the training device.

    Shuffle and augmentation derive from (seed, epoch[, batch index]), so `iter_from(k)` after a resume
    yields exactly batches k, k+1, ... of an uninterrupted epoch.
    """

    num_samples: int

    def __len__(self) -> int:
        """Batches per epoch (the last one may be partial)."""
        ...

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle order and augmentation the next iteration uses."""
        ...

    def iter_from(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the epoch's batches starting at `batch_index`."""
        ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Same as `iter_from(0)`."""
        ...


class SplitSettings:
    """How one split is batched: shared by the in-memory and DataLoader sources."""

    def __init__(
        self,
        *,
        batch_size: int,
        shuffle: bool,
        augment: AugmentConfig,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        seed: int,
        device: torch.device,
    ) -> None:
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment if shuffle else AugmentConfig()  # val/test are never augmented
        self.seed = seed
        self.device = device
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        # A black pixel after normalization: crop padding fills with it, as RandomCrop pads raw images with 0.
        self.pad_value = (-self.mean / self.std).flatten()

    def num_batches(self, num_samples: int) -> int:
        return -(-num_samples // self.batch_size)

    def check_start(self, batch_index: int, num_batches: int) -> None:
        if not 0 <= batch_index <= num_batches:
            raise ValueError(f"batch_index must be in [0, {num_batches}], got {batch_index}")
