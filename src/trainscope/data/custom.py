"""`data=custom`: any `torch.utils.data.Dataset` the user writes, batched like the built-in datasets.

    python train.py data=custom data.train._target_=my_pkg.MyDataset +data.train.split=train

Hydra builds `data.train` (and optional `data.val`, `data.test`) before `build_custom_data` is called; a
`_target_` may also be a function returning a Dataset, or all splits as a `(train, val, test)` tuple or a
`{"train": ..., "val": ..., "test": ...}` dict. Samples are `(inputs, target)` pairs or dicts of tensors:

- inputs: an image (a tensor, uint8 scaled to [0, 1]; a numpy array; a PIL image) or any tensor (a feature
  vector, token ids), or, in a dict sample, every key but `task.target_key` (the model gets them as keywords);
- targets as the task reads them (`trainscope.data.targets`): an int class label (task=classification), a
  number or a vector of numbers (task=regression), a 0/1 vector (task=multilabel), anything (task=custom).

The dataset's own transform normalizes; `data.mean`/`std` only describe it, so image panels can undo it; inputs
that are not [C, H, W] images switch the image panels off. Batches go through a DataLoader with
`data.num_workers`.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from trainscope.config.groups.data import CustomDataConfig
from trainscope.core.errors import ConfigError, DataError, first_line
from trainscope.data.batching import BatchSource
from trainscope.data.build import DataModule, settings_for, split_indices
from trainscope.data.dataloader import DataLoaderBatchSource
from trainscope.data.synthetic import synthetic_class_names
from trainscope.data.targets import ANY, CLASS, FLOAT, MULTI_HOT

SPLITS = ("train", "val", "test")


def as_image_tensor(image: Any) -> torch.Tensor:
    """A sample's image as float32 [C, H, W]: PIL and HWC numpy images are transposed, uint8 scaled to [0, 1]."""
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        image = np.asarray(image)  # PIL images and nested lists; a PIL image is HWC (or HW)
        if image.ndim == 3:
            image = image.transpose(2, 0, 1)
    tensor = torch.as_tensor(image)
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32).div(255)
    return tensor.to(torch.float32)


def as_input_tensor(value: Any) -> torch.Tensor:
    """A sample's inputs: a vector stays a vector (int64 for integers: token ids, categories; else float32),
    anything else is an image as `as_image_tensor` makes it."""
    if isinstance(value, list | tuple):
        value = np.asarray(value)
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim <= 1:
        tensor = torch.as_tensor(value)
        integer = not tensor.is_floating_point() and tensor.dtype not in (torch.uint8, torch.bool)
        return tensor.to(torch.int64 if integer else torch.float32)
    return as_image_tensor(value)


def as_target(value: Any, kind: str) -> Any:
    """One sample's target as the task reads it: an int label, a float vector [targets], or as it is."""
    if kind == CLASS:
        return int(value)
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if kind in (FLOAT, MULTI_HOT):
        return tensor.to(torch.float32).reshape(-1)
    return tensor.to(torch.float32) if tensor.is_floating_point() else tensor


class DatasetItemFailed(DataError):
    """The user's Dataset raised on one item: `data.train (my_pkg.Scans) raised on item 7: ValueError: ...`.

    `details` keeps the original traceback for train.log (from a DataLoader worker: the worker's traceback,
    `DataLoaderBatchSource`).
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details

    def __reduce__(self) -> tuple[type[DatasetItemFailed], tuple[str, str]]:
        return type(self), (str(self), self.details)  # details survive a copy or a pickle

    @classmethod
    def of(cls, dataset: Any, split: str, index: int, error: Exception) -> DatasetItemFailed:
        name = f"{type(dataset).__module__}.{type(dataset).__qualname__}"
        details = "".join(traceback.format_exception(error))
        message = f"data.{split} ({name}) raised on item {index}: {type(error).__name__}: {first_line(error)}"
        return cls(message, details)


class TaskSamples(Dataset):
    """The user's dataset with each sample made what the DataLoader can batch and the task reads: an
    (inputs, target) pair of tensors, or a dict of tensors (the task takes its targets out by key)."""

    def __init__(self, dataset: Dataset, split: str, kind: str = CLASS) -> None:
        self.dataset = dataset
        self.split = split
        self.kind = kind

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            sample = self.dataset[index]
        except Exception as error:  # the user's __getitem__: one line naming the item, not a DataLoader traceback
            raise DatasetItemFailed.of(self.dataset, self.split, index, error) from error
        if isinstance(sample, Mapping):
            return {key: value if isinstance(value, str) else torch.as_tensor(value) for key, value in sample.items()}
        if not isinstance(sample, Sequence) or len(sample) < 2:
            raise DataError(
                f"data.{self.split}[{index}] is a {type(sample).__name__}; a dataset must return (inputs, target) "
                "pairs or dicts"
            )
        inputs = as_image_tensor(sample[0]) if self.kind == CLASS else as_input_tensor(sample[0])
        return inputs, as_target(sample[1], self.kind)


def _unpack_splits(train: Any, val: Any, test: Any) -> dict[str, Any]:
    """The datasets per split, whether configured one by one or returned together by one function."""
    if isinstance(train, Mapping):
        unknown = set(train) - set(SPLITS)
        if unknown or "train" not in train:
            raise ConfigError(f"data.train returned a dict with keys {sorted(train)}; use train, val, test")
        return {split: train.get(split) for split in SPLITS}
    if isinstance(train, tuple | list):
        if not 1 <= len(train) <= 3:
            raise ConfigError(
                f"data.train returned {len(train)} items; return (train), (train, val) or (train, val, test)"
            )
        return dict(zip(SPLITS, [*train, None, None], strict=False))
    return {"train": train, "val": val, "test": test}


def _check_dataset(split: str, dataset: Any) -> None:
    if isinstance(dataset, str | bytes) or not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise ConfigError(
            f"data.{split} is a {type(dataset).__name__}, not a Dataset (it needs __getitem__ and __len__)"
        )
    if len(dataset) == 0:
        raise DataError(f"data.{split} is empty")


def _class_names(train: Any, num_classes: int | None, class_names: list[str] | None) -> list[str]:
    """From config, else the dataset's `classes` (names) or `targets` (labels); no full pass over images."""
    if class_names:
        return [str(name) for name in class_names]
    classes = getattr(train, "classes", None)
    if num_classes is None and classes is not None:
        return [str(name) for name in classes]
    if num_classes is None and getattr(train, "targets", None) is not None:
        num_classes = int(torch.as_tensor(train.targets).max()) + 1
    if num_classes is None:
        raise ConfigError(
            "set data.num_classes: the dataset has no `classes` or `targets` attribute to count classes from"
        )
    if classes is not None and len(classes) == num_classes:
        return [str(name) for name in classes]
    return synthetic_class_names(num_classes)


def build_custom_data(
    *, device: torch.device | str, seed: int, rank: int = 0, world_size: int = 1, targets: str = CLASS, **keys: Any
) -> DataModule:
    """Build train/val/test BatchSources from the user's Dataset(s); val is carved from train when absent.

    `keys` are those of `conf/data/custom.yaml` (`trainscope.config.groups.data.CustomDataConfig`), with
    `train`/`val`/`test` already built by Hydra; samples are made into the `targets` kind the task reads
    (`trainscope.data.targets`). In a distributed run, process `rank` of `world_size` reads its shard of every
    split.
    """
    config = CustomDataConfig.for_option(keys, seed=seed, rank=rank, world_size=world_size, targets=targets)
    kind = config.targets
    datasets = _unpack_splits(config.train, config.val, config.test)
    for split, dataset in datasets.items():
        if dataset is not None or split == "train":
            _check_dataset(split, dataset)
    names = _class_names(datasets["train"], config.num_classes, config.class_names) if kind == CLASS else []
    try:
        first = TaskSamples(datasets["train"], "train", kind)[0]
    except DatasetItemFailed:
        raise
    except Exception as error:  # the user's __getitem__ failed: name it in one line
        raise DataError(f"reading data.train[0] failed: {first_line(error)}") from None
    shape = config.input_shape
    if shape is None:
        shape = () if isinstance(first, Mapping) else tuple(first[0].shape)
    images = len(shape) == 3
    if kind == ANY and not isinstance(first, Mapping) and not first[1].is_floating_point() and first[1].ndim == 0:
        names = _class_names(datasets["train"], config.num_classes, config.class_names)  # class labels, read as such
    if not images and config.augment.enabled:
        raise ConfigError(f"data.augment crops and flips images [C, H, W]; data.train's inputs are {list(shape)}")
    config = replace(
        config,
        input_shape=shape if images else None,  # the image checks (mean/std per channel) apply to images only
        mean=config.mean if images else (0.0,),  # inputs that are not images are batched as they are
        std=config.std if images else (1.0,),
        num_classes=len(names) if names else None,
        val_fraction=config.val_fraction if datasets["val"] is None else 0.0,
    )
    target = torch.device(device)
    samples = {split: TaskSamples(dataset, split, kind) for split, dataset in datasets.items() if dataset is not None}
    if "val" not in samples:
        train_rows, val_rows = split_indices(len(samples["train"]), config.val_fraction, config.split_seed)
        samples["val"] = Subset(samples["train"], val_rows.tolist())
        samples["train"] = Subset(samples["train"], train_rows.tolist())

    def source(split: str, settings: Any = None) -> BatchSource:
        settings = settings or settings_for(config, target, split == "train")
        return DataLoaderBatchSource(samples[split], settings, config.num_workers)

    # A torchrun job reads its targets' statistics from the whole training split, so every rank agrees on them.
    whole = settings_for(replace(config, rank=0, world_size=1), torch.device("cpu"), False)
    return DataModule(
        train=source("train"),
        val=source("val"),
        test=source("test") if "test" in samples else None,
        input_shape=tuple(int(size) for size in shape),
        num_classes=len(names),
        class_names=names,
        mean=config.mean if images else (),
        std=config.std if images else (),
        target_names=[] if kind == CLASS else _target_names(first, config.class_names, datasets["train"]),
        target_source="data.train's targets",
        unsharded_train=source("train", whole) if config.world_size > 1 else None,
    )


def _target_names(first: Any, class_names: list[str] | None, train: Any) -> list[str]:
    """Names of a float or 0/1 target vector's entries: `data.class_names`, else the dataset's `classes` when
    their number fits; [] to let the task number them (also for dict samples, whose target key the task knows)."""
    if isinstance(first, Mapping):
        return [str(name) for name in class_names or []]
    width = int(first[1].numel())
    for names in (class_names, getattr(train, "classes", None)):
        if names is not None and len(names) == width:
            return [str(name) for name in names]
    if class_names:
        raise ConfigError(f"data.class_names names {len(class_names)} targets; data.train's samples hold {width}")
    return []
