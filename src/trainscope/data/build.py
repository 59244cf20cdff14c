"""`build_data`: the data config's `_target_`; turns the `data` group into train/val/test BatchSources."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from trainscope.core.errors import ConfigError
from trainscope.data.batching import BatchSource, SplitSettings
from trainscope.data.config import DataConfig, validate_data_config
from trainscope.data.dataloader import DataLoaderBatchSource, UInt8ImageDataset, uint8_to_float
from trainscope.data.files import load_split, prepare_files, split_size, torchvision_dataset
from trainscope.data.in_memory import InMemoryBatchSource
from trainscope.data.synthetic import make_synthetic, synthetic_class_names

# Above this many bytes of uint8 train images, loader=auto streams through a DataLoader instead.
IN_MEMORY_LIMIT_BYTES = 4 * 1024**3


@dataclass
class DataModule:
    """Everything the trainer, the models and the monitor need to know about the data."""

    train: BatchSource
    val: BatchSource
    test: BatchSource | None
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def split_indices(num_samples: int, val_fraction: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Carve val from train with `split_seed` alone: every run and every trainer.seed sees one split."""
    num_val = round(num_samples * val_fraction)
    if num_samples - num_val < 1:
        raise ConfigError(f"data.val_fraction={val_fraction} leaves no training samples out of {num_samples}")
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(split_seed))
    return order[num_val:].sort().values, order[:num_val].sort().values


def uses_in_memory(config: DataConfig) -> bool:
    """loader=auto keeps the data on the device when it fits: the fast path for every bundled dataset."""
    if config.loader != "auto":
        return config.loader == "in_memory"
    return split_size(config, "train") * prod(config.input_shape) <= IN_MEMORY_LIMIT_BYTES


def _settings(config: DataConfig, device: torch.device, shuffle: bool) -> SplitSettings:
    return SplitSettings(
        batch_size=config.batch_size,
        shuffle=shuffle,
        augment=config.augment,
        mean=config.mean,
        std=config.std,
        seed=config.seed,
        device=device,
    )


def _build_in_memory(config: DataConfig, device: torch.device) -> tuple[list[BatchSource], list[str]]:
    train = load_split(config, "train")
    test = load_split(config, "test")
    train_rows, val_rows = split_indices(len(train.labels), config.val_fraction, config.split_seed)
    sources: list[BatchSource] = [
        InMemoryBatchSource(train.images[train_rows], train.labels[train_rows], _settings(config, device, True)),
        InMemoryBatchSource(train.images[val_rows], train.labels[val_rows], _settings(config, device, False)),
        InMemoryBatchSource(test.images, test.labels, _settings(config, device, False)),
    ]
    return sources, train.class_names


def _per_sample_datasets(config: DataConfig) -> tuple[Dataset, Dataset, list[str]]:
    from torchvision import transforms  # only this path needs it; importing torchvision costs seconds

    normalize = transforms.Normalize(config.mean, config.std)
    if config.dataset == "synthetic":
        transform = transforms.Compose([uint8_to_float, normalize])
        datasets = []
        for split in ("train", "test"):
            images, labels = make_synthetic(config.input_shape, config.num_classes, config.num_samples or 0, split)
            datasets.append(UInt8ImageDataset(images, labels, transform))
        return datasets[0], datasets[1], synthetic_class_names(config.num_classes)
    prepare_files(config)
    transform = transforms.Compose([transforms.ToTensor(), normalize])
    train = torchvision_dataset(config, "train", transform)
    test = torchvision_dataset(config, "test", transform)
    return train, test, list(train.classes)  # type: ignore[attr-defined]


def _build_dataloader(config: DataConfig, device: torch.device) -> tuple[list[BatchSource], list[str]]:
    train, test, class_names = _per_sample_datasets(config)
    train_rows, val_rows = split_indices(len(train), config.val_fraction, config.split_seed)  # type: ignore[arg-type]
    sources: list[BatchSource] = [
        DataLoaderBatchSource(Subset(train, train_rows.tolist()), _settings(config, device, True), config.num_workers),
        DataLoaderBatchSource(Subset(train, val_rows.tolist()), _settings(config, device, False), config.num_workers),
        DataLoaderBatchSource(test, _settings(config, device, False), config.num_workers),
    ]
    return sources, class_names


def build_data(
    *,
    dataset: str,
    root: str,
    input_shape: list[int],
    num_classes: int,
    batch_size: int,
    val_fraction: float,
    split_seed: int,
    num_workers: int,
    loader: str,
    download: bool,
    mean: list[float],
    std: list[float],
    augment: dict[str, Any] | None,
    num_samples: int | None = None,
    device: torch.device | str,
    seed: int,
    **_: Any,
) -> DataModule:
    """Build train/val/test batch sources for the `data` config on `device`, seeded by trainer `seed`.

    Raises ConfigError for a bad config value and DataError for missing, unreadable or corrupt data.
    """
    config = validate_data_config(
        dataset=dataset,
        root=root,
        input_shape=input_shape,
        num_classes=num_classes,
        batch_size=batch_size,
        val_fraction=val_fraction,
        split_seed=split_seed,
        num_workers=num_workers,
        loader=loader,
        download=download,
        mean=mean,
        std=std,
        augment=augment,
        num_samples=num_samples,
        seed=seed,
    )
    target = torch.device(device)
    build = _build_in_memory if uses_in_memory(config) else _build_dataloader
    (train, val, test), class_names = build(config, target)
    return DataModule(
        train=train,
        val=val,
        test=test,
        input_shape=config.input_shape,
        num_classes=config.num_classes,
        class_names=class_names,
        mean=config.mean,
        std=config.std,
    )
