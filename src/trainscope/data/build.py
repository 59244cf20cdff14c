"""`build_data`: the data config's `_target_`; turns the `data` group into train/val/test BatchSources."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from math import prod
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from trainscope.config.groups.data import ImageDataConfig, ImageFolderConfig, ImagesConfig
from trainscope.core.checkpoint_io import Stateful
from trainscope.core.errors import ConfigError
from trainscope.data.batching import BatchSource, SplitSettings
from trainscope.data.dataloader import DataLoaderBatchSource, UInt8ImageDataset, uint8_to_float
from trainscope.data.files import load_split, split_size
from trainscope.data.image_folder import FolderSplit, ImageFileDataset, list_image_folder, load_folder
from trainscope.data.in_memory import InMemoryBatchSource
from trainscope.data.targets import ANY, CLASS, target_mismatch

log = logging.getLogger(__name__)


@dataclass
class DataModule:
    """Everything the trainer, the task, the models and the loggers need to know about the data
    (`trainscope.core.view.DataFacts`)."""

    train: BatchSource
    val: BatchSource
    test: BatchSource | None
    input_shape: tuple[int, ...]
    num_classes: int  # classes of class-label targets; 0 when the targets are not class labels
    class_names: list[str]
    mean: tuple[float, ...]  # image normalization per channel; () for inputs that are not images
    std: tuple[float, ...]
    target_names: list[str] = field(default_factory=list)  # target columns or labels; [] for class labels
    target_source: str = "the dataset's labels"
    train_target_values: torch.Tensor | None = None  # every training target, when the data holds them
    unsharded_train: BatchSource | None = None  # the whole training split, to read its targets in a torchrun job
    preprocessing: Stateful | None = None  # statistics taken from the training split (a table's scaling)

    @property
    def image_inputs(self) -> bool:
        """Inputs are [C, H, W] images (image grids, channels_last and un-normalizing apply to them)."""
        return len(self.input_shape) == 3 and bool(self.mean)

    def train_targets(self, split: Callable[[Any], tuple[Any, Any]]) -> torch.Tensor:
        """Every target of the whole training split, on the CPU: held, or read once from the batches."""
        if self.train_target_values is None:
            source = self.unsharded_train if self.unsharded_train is not None else self.train
            self.train_target_values = torch.cat([split(batch)[1].cpu() for batch in source])
        return self.train_target_values

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: statistics taken from the training split, so `eval.py` and
        `resume=` apply the same ones even to a table that changed since."""
        return {} if self.preprocessing is None else self.preprocessing.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.preprocessing is not None and state:
            self.preprocessing.load_state_dict(state)


def split_indices(num_samples: int, val_fraction: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Carve val from train with `split_seed` alone: every run and every trainer.seed sees one split."""
    train_rows, val_rows, _ = carve_indices(num_samples, val_fraction, 0.0, split_seed)
    return train_rows, val_rows


def carve_indices(
    num_samples: int, val_fraction: float, test_fraction: float, split_seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) rows: val then test taken from one `split_seed` permutation, each sorted."""
    num_val, num_test = round(num_samples * val_fraction), round(num_samples * test_fraction)
    if num_samples - num_val - num_test < 1:
        raise ConfigError(f"data.val_fraction={val_fraction} leaves no training samples out of {num_samples}")
    if num_val == 0 and val_fraction > 0:  # an empty split is what val_fraction=0 asks for, never a rounding accident
        raise ConfigError(
            f"data.val_fraction={val_fraction} leaves no validation samples out of {num_samples}; "
            "raise it, or set 0 to train without validation"
        )
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(split_seed))
    val, test, train = order[:num_val], order[num_val : num_val + num_test], order[num_val + num_test :]
    return train.sort().values, val.sort().values, test.sort().values


def fits_in_memory(config: ImageDataConfig, num_images: int) -> bool:
    """loader=auto keeps the data on the device when its uint8 images fit data.max_memory_gb."""
    if config.loader != "auto":
        return config.loader == "in_memory"
    return num_images * prod(config.input_shape) <= config.max_memory_bytes


def uses_in_memory(config: ImageDataConfig) -> bool:
    """The fast path for every bundled dataset: decoded once, then batches sliced on the device."""
    return fits_in_memory(config, split_size(config, "train"))


def settings_for(config: ImagesConfig, device: torch.device, shuffle: bool) -> SplitSettings:
    """How one split is batched; the shard a torchrun rank reads comes with the config (`rank`, `world_size`)."""
    return SplitSettings(
        batch_size=config.batch_size,
        shuffle=shuffle,
        augment=config.augment,
        mean=config.mean,
        std=config.std,
        seed=config.seed,
        device=device,
        rank=config.rank,
        world_size=config.world_size,
    )


def _build_in_memory(config: ImageDataConfig, device: torch.device) -> tuple[list[BatchSource], list[str]]:
    train = load_split(config, "train")
    test = load_split(config, "test")
    train_rows, val_rows = split_indices(len(train.labels), config.val_fraction, config.split_seed)
    sources: list[BatchSource] = [
        InMemoryBatchSource(train.images[train_rows], train.labels[train_rows], settings_for(config, device, True)),
        InMemoryBatchSource(train.images[val_rows], train.labels[val_rows], settings_for(config, device, False)),
        InMemoryBatchSource(test.images, test.labels, settings_for(config, device, False)),
    ]
    return sources, train.class_names


def _per_sample_datasets(config: ImageDataConfig) -> tuple[Dataset, Dataset, list[str]]:
    """The decoded splits behind per-sample transforms, as a torchvision dataset would serve them."""
    transform = _per_sample_transform(config)
    train, test = load_split(config, "train"), load_split(config, "test")
    datasets = [UInt8ImageDataset(split.images, split.labels, transform) for split in (train, test)]
    return datasets[0], datasets[1], train.class_names


def _build_dataloader(config: ImageDataConfig, device: torch.device) -> tuple[list[BatchSource], list[str]]:
    train, test, class_names = _per_sample_datasets(config)
    train_rows, val_rows = split_indices(len(train), config.val_fraction, config.split_seed)  # type: ignore[arg-type]
    sources: list[BatchSource] = [
        DataLoaderBatchSource(
            Subset(train, train_rows.tolist()), settings_for(config, device, True), config.num_workers
        ),
        DataLoaderBatchSource(
            Subset(train, val_rows.tolist()), settings_for(config, device, False), config.num_workers
        ),
        DataLoaderBatchSource(test, settings_for(config, device, False), config.num_workers),
    ]
    return sources, class_names


def _image_folder_sources(
    config: ImageFolderConfig, splits: dict[str, FolderSplit], class_names: list[str], device: torch.device
) -> list[BatchSource | None]:
    """Train/val/test sources of an image folder; val and test carved from train when their folder is absent."""
    in_memory = fits_in_memory(config, sum(len(split.files) for split in splits.values()))
    pieces: dict[str, Any] = {}
    for name, split in splits.items():
        if in_memory:
            pieces[name] = load_folder(split, class_names, config.input_shape, config.skip_bad_files, config.cache_dir)
        else:
            pieces[name] = ImageFileDataset(split, config.input_shape, _per_sample_transform(config))
    if not in_memory:
        log.info(
            "%d images exceed data.max_memory_gb=%s: decoding per sample in %d DataLoader workers",
            sum(len(split.files) for split in splits.values()),
            config.max_memory_gb,
            config.num_workers,
        )
    train = pieces.pop("train")
    test_fraction = 0.0 if "test" in pieces else config.test_fraction
    val_fraction = 0.0 if "val" in pieces else config.val_fraction
    rows = carve_indices(len(train.labels) if in_memory else len(train), val_fraction, test_fraction, config.split_seed)
    carved = dict(zip(("train", "val", "test"), rows, strict=True))

    def source(name: str) -> BatchSource | None:
        settings = settings_for(config, device, shuffle=name == "train")
        piece, selected = (pieces[name], None) if name in pieces else (train, carved[name])
        if name == "test" and selected is not None and len(selected) == 0:
            return None  # no test/ folder and data.test_fraction=0: the run has no test split
        if in_memory:
            images, labels = (
                (piece.images, piece.labels) if selected is None else (piece.images[selected], piece.labels[selected])
            )
            return InMemoryBatchSource(images, labels, settings)
        dataset = piece if selected is None else Subset(piece, selected.tolist())
        return DataLoaderBatchSource(dataset, settings, config.num_workers)

    return [source("train"), source("val"), source("test")]


def _per_sample_transform(config: ImagesConfig) -> Any:
    """ToTensor + Normalize for uint8 CHW tensors: the DataLoader path's per-sample work."""
    from torchvision import transforms  # only the DataLoader path needs it; importing torchvision costs seconds

    return transforms.Compose([uint8_to_float, transforms.Normalize(config.mean, config.std)])


def _build_image_folder(
    config: ImageFolderConfig, device: torch.device
) -> tuple[ImageFolderConfig, list[BatchSource | None], list[str]]:
    class_names, splits = list_image_folder(config.root)
    if config.num_classes is not None and config.num_classes != len(class_names):
        raise ConfigError(
            f"data.num_classes must be {len(class_names)} for {config.root} (its class folders), "
            f"got {config.num_classes}"
        )
    config = replace(config, num_classes=len(class_names))
    return config, _image_folder_sources(config, splits, class_names, device), class_names


def build_data(
    *,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    targets: str = CLASS,
    **keys: Any,
) -> DataModule:
    """Build train/val/test batch sources for the `data` config on `device`, seeded by trainer `seed`; these
    datasets hold class labels, and a task that needs other `targets` (`trainscope.data.targets`) is refused.

    `keys` are the data option's keys (`conf/data/<option>.yaml`), checked by its dataclass
    (`trainscope.config.groups.data`): a key it does not have is a ConfigError, never ignored.
    In a distributed run, process `rank` of `world_size` reads its shard of every split (`SplitSettings.shard`);
    `batch_size` is per process.

    Raises ConfigError for a bad config value and DataError for missing, unreadable or corrupt data.
    """
    config = ImageDataConfig.for_option(keys, seed=seed, rank=rank, world_size=world_size, targets=targets)
    if config.targets not in (CLASS, ANY):  # these datasets hold class labels
        raise target_mismatch(config.targets, f"data={config.dataset}", "class labels", CLASS)
    target = torch.device(device)
    if isinstance(config, ImageFolderConfig):
        config, (train, val, test), class_names = _build_image_folder(config, target)
    else:
        build = _build_in_memory if uses_in_memory(config) else _build_dataloader
        (train, val, test), class_names = build(config, target)
    assert train is not None and val is not None and config.num_classes is not None
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
