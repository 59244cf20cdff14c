"""The BatchSource protocol: what the loop iterates for each split, whatever the data is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class BatchSource(Protocol):
    """Batches of one split, on the training device: `(inputs, targets)` pairs, or dicts of tensors that hold
    the targets under `task.target_key` (the task splits them, `trainscope.tasks.Task.split_batch`).

    Built-in image data yields (float32 normalized images, int64 labels); tables yield (float32 features,
    targets as the task reads them); a user's Dataset yields what its samples collate to.

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

    def iter_from(self, batch_index: int) -> Iterator[Any]:
        """Yield the epoch's batches starting at `batch_index`."""
        ...

    def __iter__(self) -> Iterator[Any]:
        """Same as `iter_from(0)`."""
        ...
