"""Datasets laid out on disk as a user's `data/` folder would hold them, and the `data` config of in-process tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from trainscope.config.groups.data import ImageDataConfig
from trainscope.data.files import BUNDLED_MNIST_DIR


def copy_mnist_files(root: Path) -> Path:
    """Lay the bundled .gz files out as a downloaded `data=mnist` would be: <root>/mnist/MNIST/raw."""
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in BUNDLED_MNIST_DIR.glob("*.gz"):
        shutil.copy(path, raw / path.name)
    return raw


NO_AUGMENT = {"crop_padding": 0, "horizontal_flip": False}


def data_kwargs(root: Path, dataset: str = "synthetic", **overrides: Any) -> dict[str, Any]:
    """The keys of conf/data/<dataset>.yaml plus what the trainer passes (device, seed)."""
    kwargs: dict[str, Any] = {
        "dataset": dataset,
        "root": str(root),
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "batch_size": 32,
        "val_fraction": 0.1,
        "split_seed": 0,
        "num_workers": 0,
        "loader": "auto",
        "download": True,
        "mean": [0.1307],
        "std": [0.3081],
        "augment": NO_AUGMENT,
        "num_samples": 200 if dataset == "synthetic" else None,
        "device": torch.device("cpu"),
        "seed": 0,
    }
    kwargs.update(overrides)
    return kwargs


def validate_config(root: Path, dataset: str, **overrides: Any) -> ImageDataConfig:
    """The checked config of `data_kwargs` (what `build_data` checks before loading)."""
    kwargs = data_kwargs(root, dataset, **overrides)
    kwargs.pop("device")
    return ImageDataConfig.for_option(kwargs, seed=kwargs.pop("seed"))
