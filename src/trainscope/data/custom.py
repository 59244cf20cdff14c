"""`data=custom`: any `torch.utils.data.Dataset` the user writes, batched like the built-in datasets.

    python train.py data=custom data.train._target_=my_pkg.MyDataset +data.train.split=train

Hydra builds `data.train` (and optional `data.val`, `data.test`) before `build_custom_data` is called; a
`_target_` may also be a function returning a Dataset, or all splits as a `(train, val, test)` tuple or a
`{"train": ..., "val": ..., "test": ...}` dict. Samples are `(image, label)` pairs: a tensor (uint8 is
scaled to [0, 1]), a numpy array or a PIL image. The dataset's own transform normalizes; `data.mean`/`std`
only describe it, so image panels can undo it. Batches go through a DataLoader with `data.num_workers`.
"""

from __future__ import annotations

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


class ImageLabelSamples(Dataset):
    """The user's dataset with each sample made an (image tensor, int label) pair the DataLoader can batch."""

    def __init__(self, dataset: Dataset, split: str) -> None:
        self.dataset = dataset
        self.split = split

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.dataset[index]
        if not isinstance(sample, Sequence) or len(sample) < 2:
            raise DataError(
                f"data.{self.split}[{index}] is a {type(sample).__name__}; a dataset must return (image, label) pairs"
            )
        return as_image_tensor(sample[0]), int(sample[1])


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
    *, device: torch.device | str, seed: int, rank: int = 0, world_size: int = 1, **keys: Any
) -> DataModule:
    """Build train/val/test BatchSources from the user's Dataset(s); val is carved from train when absent.

    `keys` are those of `conf/data/custom.yaml` (`trainscope.config.groups.data.CustomDataConfig`), with
    `train`/`val`/`test` already built by Hydra. In a distributed run, process `rank` of `world_size` reads its
    shard of every split.
    """
    config = CustomDataConfig.for_option(keys, seed=seed, rank=rank, world_size=world_size)
    datasets = _unpack_splits(config.train, config.val, config.test)
    for split, dataset in datasets.items():
        if dataset is not None or split == "train":
            _check_dataset(split, dataset)
    names = _class_names(datasets["train"], config.num_classes, config.class_names)
    input_shape = config.input_shape
    if input_shape is None:
        try:
            input_shape = tuple(ImageLabelSamples(datasets["train"], "train")[0][0].shape)
        except Exception as error:  # the user's __getitem__ failed: name it in one line
            raise DataError(f"reading data.train[0] failed: {first_line(error)}") from None
    config = replace(
        config,
        input_shape=input_shape,
        num_classes=len(names),
        val_fraction=config.val_fraction if datasets["val"] is None else 0.0,
    )
    target = torch.device(device)
    samples = {split: ImageLabelSamples(dataset, split) for split, dataset in datasets.items() if dataset is not None}
    if "val" not in samples:
        train_rows, val_rows = split_indices(len(samples["train"]), config.val_fraction, config.split_seed)
        samples["val"] = Subset(samples["train"], val_rows.tolist())
        samples["train"] = Subset(samples["train"], train_rows.tolist())

    def source(split: str) -> BatchSource:
        return DataLoaderBatchSource(samples[split], settings_for(config, target, split == "train"), config.num_workers)

    return DataModule(
        train=source("train"),
        val=source("val"),
        test=source("test") if "test" in samples else None,
        input_shape=config.input_shape,
        num_classes=len(names),
        class_names=names,
        mean=config.mean,
        std=config.std,
    )
