"""Validate the `data` config once, so every later failure is about the data, not a typo in a key.

Single keys follow the rules in `trainscope.config.schema.DATA_RULES`; the checks that combine keys are here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainscope.config.schema import check_value, is_number
from trainscope.core.errors import ConfigError
from trainscope.data.augment import AugmentConfig


@dataclass(frozen=True)
class DataConfig:
    """The validated `data` config group."""

    dataset: str
    root: Path
    input_shape: tuple[int, int, int]
    num_classes: int | None  # None: counted from an image folder's class folders
    batch_size: int
    val_fraction: float
    split_seed: int
    num_workers: int
    loader: str
    download: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: AugmentConfig
    num_samples: int | None
    seed: int
    max_memory_gb: float = 4.0
    test_fraction: float = 0.0
    skip_bad_files: bool = False
    cache_dir: Path | None = None
    rank: int = 0  # this process's shard of every split in a torchrun job (`world_size` processes)
    world_size: int = 1

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_gb * 1024**3)


# ImageNet's statistics for RGB (what pretrained timm models expect), their average for grayscale.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def default_mean(channels: int) -> tuple[float, ...]:
    """`data.mean: null`: ImageNet's per-channel mean, or its average for other channel counts."""
    return _IMAGENET_MEAN if channels == 3 else (round(sum(_IMAGENET_MEAN) / 3, 4),) * channels


def default_std(channels: int) -> tuple[float, ...]:
    """`data.std: null`: ImageNet's per-channel std, or its average for other channel counts."""
    return _IMAGENET_STD if channels == 3 else (round(sum(_IMAGENET_STD) / 3, 4),) * channels


def _floats(key: str, value: Any, length: int) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != length:
        raise ConfigError(f"data.{key} must be a list of {length} numbers (one per channel), got {value!r}")
    if not all(is_number(v) for v in value):
        raise ConfigError(f"data.{key} must be a list of {length} numbers (one per channel), got {list(value)}")
    return tuple(float(v) for v in value)


def validate_data_config(
    *,
    dataset: Any,
    root: Any,
    input_shape: Any,
    num_classes: Any,
    batch_size: Any,
    val_fraction: Any,
    split_seed: Any,
    num_workers: Any,
    loader: Any,
    download: Any,
    mean: Any,
    std: Any,
    augment: Any,
    num_samples: Any,
    seed: Any,
    max_memory_gb: Any = 4.0,
    test_fraction: Any = 0.0,
    skip_bad_files: Any = False,
    cache_dir: Any = None,
) -> DataConfig:
    """Check types and ranges; raise ConfigError naming the key, the value and what is allowed."""
    values = {
        "dataset": dataset,
        "root": root,
        "input_shape": input_shape,
        "num_classes": num_classes,
        "batch_size": batch_size,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "num_workers": num_workers,
        "loader": loader,
        "download": download,
        "max_memory_gb": max_memory_gb,
        "skip_bad_files": skip_bad_files,
        "cache_dir": cache_dir,
    }
    if num_classes is None and dataset == "image_folder":
        del values["num_classes"]  # an image folder's classes are its subfolders: null means "count them"
    for key, value in values.items():
        check_value(f"data.{key}", value)
    shape = (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
    if dataset == "image_folder" and shape[0] not in (1, 3):
        raise ConfigError(f"data.channels must be 1 (grayscale) or 3 (RGB) for data=image_folder, got {shape[0]}")
    mean_values = default_mean(shape[0]) if mean is None else _floats("mean", mean, shape[0])
    std_values = default_std(shape[0]) if std is None else _floats("std", std, shape[0])
    if not all(s > 0 for s in std_values):
        raise ConfigError(f"data.std must be positive for every channel, got {list(std_values)}")
    augment = {} if augment is None else augment
    if not isinstance(augment, Mapping):
        raise ConfigError(f"data.augment must be a mapping with crop_padding and horizontal_flip, got {augment!r}")
    unknown = set(augment) - {"crop_padding", "horizontal_flip"}
    if unknown:
        raise ConfigError(f"data.augment has unknown keys {sorted(unknown)}; allowed: crop_padding, horizontal_flip")
    crop_padding = check_value("data.augment.crop_padding", augment.get("crop_padding", 0))
    flip = check_value("data.augment.horizontal_flip", augment.get("horizontal_flip", False))
    if dataset == "synthetic":
        check_value("data.num_samples", num_samples)
    elif num_samples is not None:
        raise ConfigError(f"data.num_samples only applies to data=synthetic, got {num_samples!r} for {dataset}")
    check_value("trainer.seed", seed)
    if not is_number(test_fraction) or not 0 <= test_fraction < 1 or test_fraction + val_fraction >= 1:
        raise ConfigError(
            f"data.test_fraction must be a number in [0, 1) leaving training samples next to "
            f"data.val_fraction={val_fraction}, got {test_fraction!r}"
        )
    return DataConfig(
        dataset=dataset,
        root=Path(str(root)).expanduser(),
        input_shape=shape,
        num_classes=None if num_classes is None else int(num_classes),
        batch_size=int(batch_size),
        val_fraction=float(val_fraction),
        split_seed=int(split_seed),
        num_workers=int(num_workers),
        loader=loader,
        download=download,
        mean=mean_values,
        std=std_values,
        augment=AugmentConfig(crop_padding=crop_padding, horizontal_flip=flip),
        num_samples=None if num_samples is None else int(num_samples),
        seed=int(seed),
        max_memory_gb=float(max_memory_gb),
        test_fraction=float(test_fraction),
        skip_bad_files=skip_bad_files,
        cache_dir=None if cache_dir is None else Path(str(cache_dir)).expanduser(),
    )
