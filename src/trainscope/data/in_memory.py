"""Batches sliced from tensors that already sit on the device (uint8 images, a table's rows): no workers, no
per-sample Python.

Decoding once and keeping MNIST/CIFAR-sized data on the GPU removes the input pipeline as a bottleneck.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from trainscope.data.augment import augment_batch
from trainscope.data.batching import SplitSettings
from trainscope.data.seeding import epoch_permutation


class InMemoryBatchSource:
    """A BatchSource over uint8 images [N, C, H, W] and int64 labels, moved to the device once."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, settings: SplitSettings) -> None:
        self.settings = settings
        self.images = images.to(settings.device)
        self.labels = labels.to(settings.device)
        self.num_samples = len(labels)
        self.epoch = 0

    def __len__(self) -> int:
        return self.settings.num_batches(self.num_samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor | None:
        """The epoch's rows in batch order; None for all rows in stored order (plain slices, no gather)."""
        settings = self.settings
        if not settings.shuffle and settings.world_size == 1:
            return None
        if settings.shuffle:
            order = epoch_permutation(self.num_samples, settings.seed, self.epoch)
        else:
            order = torch.arange(self.num_samples)
        return settings.shard(order).to(settings.device)

    def iter_from(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        settings = self.settings
        settings.check_start(batch_index, len(self))
        # Resolved now, not at the first next(): a later set_epoch must not change this iteration.
        return self._batches(self._order(), batch_index, self.epoch)

    def _batches(
        self, order: torch.Tensor | None, batch_index: int, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        settings = self.settings
        for index in range(batch_index, len(self)):
            start, stop = index * settings.batch_size, (index + 1) * settings.batch_size
            if order is None:
                images, labels = self.images[start:stop], self.labels[start:stop]
            else:
                rows = order[start:stop]
                images, labels = self.images.index_select(0, rows), self.labels.index_select(0, rows)
            yield self.prepare(images, epoch, index), labels

    def prepare(self, rows: torch.Tensor, epoch: int, index: int) -> torch.Tensor:
        """Batch `index` of `epoch` as the model sees it: uint8 images normalized and augmented."""
        settings = self.settings
        # Same float ops, in the same order, as ToTensor + Normalize: both paths give identical batches.
        inputs = rows.to(torch.float32).div(255).sub_(settings.mean).div_(settings.std)
        return augment_batch(inputs, settings.augment, settings.pad_value, settings.seed, epoch, index)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)


class TableBatchSource(InMemoryBatchSource):
    """Rows of a table already standardized as float32 [N, features] on the device, and their targets."""

    def prepare(self, rows: torch.Tensor, epoch: int, index: int) -> torch.Tensor:
        return rows
