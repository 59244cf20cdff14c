"""What the in-memory and DataLoader batch sources share (the BatchSource protocol is `trainscope.core.batches`)."""

from __future__ import annotations

import torch

from trainscope.core.batches import BatchSource
from trainscope.data.augment import AugmentConfig

__all__ = ["BatchSource", "SplitSettings"]


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
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.batch_size = batch_size
        self.rank = rank  # this process's shard of every epoch in a distributed run (see `shard`)
        self.world_size = world_size
        self.shuffle = shuffle
        self.augment = augment if shuffle else AugmentConfig()  # val/test are never augmented
        self.seed = seed
        self.device = device
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        # A black pixel after normalization: crop padding fills with it, as RandomCrop pads raw images with 0.
        self.pad_value = (-self.mean / self.std).flatten()

    def num_batches(self, num_samples: int) -> int:
        """Batches per epoch of this process's shard of `num_samples` (the last one may be partial)."""
        return -(-self.shard_size(num_samples) // self.batch_size)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This process's part of an epoch's sample order, as torch's `DistributedSampler` takes it: every
        `world_size`-th sample from `rank` on, so rank r's batch j holds samples of the one-process batch j at
        `world_size * batch_size`. The training split (the one that shuffles) is padded with its first samples
        to a multiple of `world_size`, so every rank takes the same number of steps; val and test are not, so
        each of their samples is evaluated exactly once."""
        if self.world_size == 1:
            return order
        if self.shuffle:
            order = torch.cat((order, order[: (-len(order)) % self.world_size]))
        return order[self.rank :: self.world_size]

    def shard_size(self, num_samples: int) -> int:
        if self.world_size == 1:
            return num_samples
        if self.shuffle:
            return -(-num_samples // self.world_size)
        return len(range(self.rank, num_samples, self.world_size))

    def check_start(self, batch_index: int, num_batches: int) -> None:
        if not 0 <= batch_index <= num_batches:
            raise ValueError(f"batch_index must be in [0, {num_batches}], got {batch_index}")
