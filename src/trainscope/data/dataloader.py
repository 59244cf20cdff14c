"""The classic path: per-sample torchvision transforms through a torch DataLoader with workers.

For data too large for the device, or to compare against the in-memory path: its sampler draws the
same permutation and the same device-side augmentation, so both paths yield identical batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainscope.core.errors import TrainscopeError
from trainscope.data.augment import augment_batch
from trainscope.data.batching import SplitSettings
from trainscope.data.seeding import epoch_permutation


class EpochSampler(Sampler[int]):
    """Yields this process's shard of the (seed, epoch) permutation from a start position, so a resumed epoch
    skips exactly (with `DistributedSampler`'s sharding in a distributed run, see `SplitSettings.shard`)."""

    def __init__(self, num_samples: int, settings: SplitSettings, epoch: int, start: int) -> None:
        self.num_samples = num_samples
        self.settings = settings
        self.epoch = epoch
        self.start = start

    def __iter__(self) -> Iterator[int]:
        # Built eagerly: DataLoader workers prefetch, and the order must not depend on when they ask.
        settings = self.settings
        if settings.shuffle:
            order = epoch_permutation(self.num_samples, settings.seed, self.epoch)
        else:
            order = torch.arange(self.num_samples)
        return iter(settings.shard(order)[self.start :].tolist())

    def __len__(self) -> int:
        return self.settings.shard_size(self.num_samples) - self.start


class UInt8ImageDataset(Dataset):
    """Per-sample access to uint8 image tensors (synthetic data) with a transform, like torchvision's."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: object) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])  # type: ignore[operator]


def _to_device(value: Any, device: torch.device) -> Any:
    """A collated tensor (or a nested dict/list of them) on `device`; class labels as int64."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() and value.dtype not in (torch.bool, torch.uint8):
            return value.to(device, dtype=torch.int64, non_blocking=True)
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_device(item, device) for item in value)
    return value


def uint8_to_float(image: torch.Tensor) -> torch.Tensor:
    """ToTensor's scaling for images that already are CHW uint8 tensors (module level: picklable)."""
    return image.to(torch.float32).div(255)


class DataLoaderBatchSource:
    """A BatchSource wrapping a DataLoader; moves each batch to the device and augments it there."""

    def __init__(self, dataset: Dataset, settings: SplitSettings, num_workers: int) -> None:
        self.settings = settings
        self.dataset = dataset
        self.num_workers = num_workers
        self.num_samples = len(dataset) if isinstance(dataset, Sized) else 0
        self.epoch = 0

    def __len__(self) -> int:
        return self.settings.num_batches(self.num_samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def iter_from(self, batch_index: int) -> Iterator[Any]:
        settings = self.settings
        settings.check_start(batch_index, len(self))
        epoch = self.epoch
        start = min(batch_index * settings.batch_size, settings.shard_size(self.num_samples))
        # A loader per iteration: its sampler is frozen to this (epoch, start), whenever workers prefetch.
        loader = DataLoader(
            self.dataset,
            batch_size=settings.batch_size,
            sampler=EpochSampler(self.num_samples, settings, epoch, start),
            num_workers=self.num_workers,
            pin_memory=settings.device.type == "cuda",
            drop_last=False,
        )
        return self._batches(loader, batch_index, epoch)

    def _batches(self, loader: DataLoader, batch_index: int, epoch: int) -> Iterator[Any]:
        try:
            yield from self._device_batches(loader, batch_index, epoch)
        except TrainscopeError as error:
            if not str(error).startswith("Caught "):
                raise
            # A worker's error arrives as "Caught DataError in DataLoader worker ...\n<traceback>": keep its message
            # (the traceback goes to train.log where the error keeps `details`, a user Dataset's failure).
            text = str(error).strip()
            rebuilt = type(error)(text.splitlines()[-1].split(": ", 1)[-1])
            if hasattr(rebuilt, "details"):
                rebuilt.details = text
            raise rebuilt from None

    def _device_batches(self, loader: DataLoader, batch_index: int, epoch: int) -> Iterator[Any]:
        settings = self.settings
        for index, batch in enumerate(loader, start=batch_index):
            if isinstance(batch, Mapping):  # a dict sample's batch: every tensor to the device, the task splits it
                yield {key: _to_device(value, settings.device) for key, value in batch.items()}
                continue
            images, labels = batch
            inputs = _to_device(images, settings.device)
            targets = _to_device(labels, settings.device)
            yield (
                augment_batch(inputs, settings.augment, settings.pad_value, settings.seed, epoch, index),
                targets,
            )

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(0)
