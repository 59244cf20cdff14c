"""Find, download, decode and cache datasets as uint8 tensors.

Every dataset lives in `<root>/<dataset>/` (torchvision's layout below it). Decoding through torchvision is
slow for CIFAR-10 and the IDX files, so the decoded split is cached as `<root>/<dataset>/cache-<split>.pt`
together with the size and mtime of the files it came from; a changed source file means a fresh decode.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import socket
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from trainscope.data.cache import DecodedSplit, one_line, read_cache, write_cache
from trainscope.data.config import DataConfig
from trainscope.data.synthetic import make_synthetic, synthetic_class_names, synthetic_split_size
from trainscope.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BUNDLED_MNIST_DIR = Path(__file__).resolve().parent.parent / "resources" / "mnist-5k"
"""The 5,000-image MNIST subset shipped in the package: `data=mnist_sample` trains with no network."""

DOWNLOAD_TIMEOUT_SECONDS = 30.0
OFFLINE_HINT = "use data=mnist_sample to train offline"
IDX_PREFIXES = {"train": "train", "test": "t10k"}

# torchvision is imported only to decode or download: importing it costs seconds (it pulls in torch._dynamo),
# and a run whose split is cached never needs it. Its folder and file names are spelled out here instead.
_TORCHVISION_CLASS_NAMES = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "mnist_sample": "MNIST",
    "cifar10": "CIFAR10",
}
_CIFAR10_FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder
_CIFAR10_FILES = {  # torchvision's CIFAR10.train_list / test_list names, and meta["filename"]
    "train": [f"data_batch_{index}" for index in range(1, 6)],
    "test": ["test_batch"],
    "meta": ["batches.meta"],
}
_IMAGE_SHAPES = {
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "mnist_sample": (1, 28, 28),
    "cifar10": (3, 32, 32),
}
_SPLIT_SIZES = {  # (train, test), to choose a loader before decoding anything
    "mnist": (60_000, 10_000),
    "fashion_mnist": (60_000, 10_000),
    "mnist_sample": (4_000, 1_000),
    "cifar10": (50_000, 10_000),
}


def dataset_dir(config: DataConfig) -> Path:
    """Where this dataset's files and caches live."""
    return config.root / config.dataset


def split_size(config: DataConfig, split: str) -> int:
    """Number of images in a split (before the val carve-out), known without decoding."""
    if config.dataset == "synthetic":
        return synthetic_split_size(config.num_samples or 0, split)
    return _SPLIT_SIZES[config.dataset][0 if split == "train" else 1]


def _torchvision_class(dataset: str) -> Any:
    """torchvision's dataset class for `dataset`, imported on first use (see _TORCHVISION_CLASS_NAMES)."""
    from torchvision import datasets

    return getattr(datasets, _TORCHVISION_CLASS_NAMES[dataset])


def _is_idx(name: str) -> bool:
    return name in ("mnist", "fashion_mnist", "mnist_sample")


def _raw_dir(config: DataConfig) -> Path:
    """The folder torchvision reads: `MNIST/raw`, `FashionMNIST/raw` or `cifar-10-batches-py`."""
    if _is_idx(config.dataset):
        return dataset_dir(config) / _TORCHVISION_CLASS_NAMES[config.dataset] / "raw"
    return dataset_dir(config) / _CIFAR10_FOLDER


def _source_files(config: DataConfig, split: str) -> list[Path]:
    """The files a split is decoded from; their size and mtime key the cache."""
    raw = _raw_dir(config)
    if _is_idx(config.dataset):
        prefix = IDX_PREFIXES[split]
        return [raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"]
    return [raw / name for name in _CIFAR10_FILES[split] + _CIFAR10_FILES["meta"]]


def _gunzip(source: Path, target: Path, fix: str) -> None:
    """Decompress atomically, so an interrupted run never leaves a half-written IDX file behind."""
    partial = target.with_name(target.name + ".partial")
    try:
        with gzip.open(source, "rb") as compressed, open(partial, "wb") as out:
            shutil.copyfileobj(compressed, out)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        partial.unlink(missing_ok=True)
        raise DataError(f"{source} is corrupt or truncated ({one_line(error)}); {fix}") from None
    os.replace(partial, target)


def _extract_gzipped_idx(config: DataConfig) -> None:
    """Unpack `*.gz` IDX files torchvision would otherwise re-download (it only reads unpacked files).

    For mnist_sample the .gz files come from the package; a .gz newer than its unpacked file wins.
    """
    raw = _raw_dir(config)
    for split in ("train", "test"):
        for target in _source_files(config, split):
            if config.dataset == "mnist_sample":
                source = BUNDLED_MNIST_DIR / f"{target.name}.gz"
                fix = "reinstall trainscope"
            else:
                source = raw / f"{target.name}.gz"
                fix = "delete it and download it again"
            if not source.exists():
                continue
            if not target.exists() or source.stat().st_mtime_ns > target.stat().st_mtime_ns:
                raw.mkdir(parents=True, exist_ok=True)
                _gunzip(source, target, fix)


@contextmanager
def _download_timeout(seconds: float) -> Iterator[None]:
    """Fail fast instead of hanging when a machine has no route to the dataset mirrors."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _permission_denied(path: Path | str, action: str = "read") -> DataError:
    return DataError(f"cannot {action} {path}: permission denied; fix its permissions or set paths.data_dir elsewhere")


def _check_readable(path: Path) -> None:
    if path.exists() and not os.access(path, os.R_OK | os.X_OK):
        raise _permission_denied(path)


def prepare_files(config: DataConfig) -> None:
    """Make sure the dataset's files are on disk: unpack bundled/.gz files, download if allowed."""
    if config.dataset == "synthetic":
        return
    directory = dataset_dir(config)
    try:
        _check_readable(config.root)
        _check_readable(directory)
        _check_readable(_raw_dir(config))
        if _is_idx(config.dataset):
            _extract_gzipped_idx(config)
        missing = [path for split in ("train", "test") for path in _source_files(config, split) if not path.exists()]
        if not missing:
            return
        where = _raw_dir(config)
        if config.dataset == "mnist_sample":
            raise DataError(f"bundled MNIST sample missing from {BUNDLED_MNIST_DIR}; reinstall trainscope")
        if not config.download:
            raise DataError(
                f"{config.dataset} not found in {where} and data.download=false; "
                f"set data.download=true, put the files there, or {OFFLINE_HINT}"
            )
        directory.mkdir(parents=True, exist_ok=True)
        tv_class = _torchvision_class(config.dataset)
        log.info("downloading %s into %s", config.dataset, directory)
        try:
            with _download_timeout(DOWNLOAD_TIMEOUT_SECONDS):
                tv_class(root=str(directory), train=True, download=True)
        except PermissionError:
            raise
        except Exception as error:  # torchvision wraps URLError/timeouts in RuntimeError; any failure means "no data"
            if any(not path.exists() for path in missing):
                raise DataError(
                    f"{config.dataset} not found in {where} and the download failed ({one_line(error)}); "
                    f"check the network or put the files there, or {OFFLINE_HINT}"
                ) from None
    except PermissionError as error:
        raise _permission_denied(error.filename or directory, "access") from None


def _find_corrupt_file(config: DataConfig, split: str) -> tuple[Path, str] | None:
    """Name the file a failed torchvision decode choked on, so the user knows what to replace."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.mnist import read_image_file, read_label_file
    from torchvision.datasets.utils import check_integrity

    files = _source_files(config, split)
    if _is_idx(config.dataset):
        counts = []
        for path, reader in zip(files, (read_image_file, read_label_file), strict=True):
            try:
                counts.append(len(reader(str(path))))
            except Exception as error:  # any parse failure means this file is bad
                return path, one_line(error) if str(error) else "malformed IDX data"
        if counts[0] != counts[1]:
            return files[1], f"{counts[1]} labels for {counts[0]} images in {files[0].name}"
        return None
    checksums = dict(CIFAR10.train_list + CIFAR10.test_list)
    checksums[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    for path in files:
        if not check_integrity(str(path), checksums[path.name]):
            return path, "checksum mismatch"
    return None


def _decode(config: DataConfig, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decode a split with torchvision's own dataset class into uint8 [N, C, H, W] + int64 labels."""
    tv_class = _torchvision_class(config.dataset)
    try:
        dataset: Any = tv_class(root=str(dataset_dir(config)), train=split == "train", download=False)
        images = torch.as_tensor(dataset.data)
        labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
        # IDX gives [N, H, W]; CIFAR gives numpy [N, H, W, C].
        images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
        if len(images) != len(labels):
            raise ValueError("image and label counts differ")
    except PermissionError:
        raise
    except Exception as error:  # torchvision raises assorted types for bad files; find and name the file
        found = _find_corrupt_file(config, split)
        path, reason = found if found else (_raw_dir(config), one_line(error))
        raise DataError(f"{path} is corrupt or truncated ({reason}); delete it and download it again") from None
    return images.contiguous(), labels, list(dataset.classes)


def _fingerprint(files: list[Path]) -> list[list[Any]]:
    fingerprint: list[list[Any]] = []
    for path in files:
        stat = path.stat()
        fingerprint.append([path.name, stat.st_size, stat.st_mtime_ns])
    return fingerprint


def cache_path(config: DataConfig, split: str) -> Path:
    """The decoded-tensor cache of a split."""
    return dataset_dir(config) / f"cache-{split}.pt"


def load_split(config: DataConfig, split: str) -> DecodedSplit:
    """The whole `split` ("train" or "test") as uint8 tensors, from the cache when it is current."""
    if config.dataset == "synthetic":
        images, labels = make_synthetic(config.input_shape, config.num_classes, config.num_samples or 0, split)
        return DecodedSplit(images, labels, synthetic_class_names(config.num_classes), from_cache=False)
    prepare_files(config)
    path = cache_path(config, split)
    try:
        fingerprint = _fingerprint(_source_files(config, split))
        decoded = read_cache(path, fingerprint)
        if decoded is None:
            images, labels, class_names = _decode(config, split)
            decoded = DecodedSplit(images, labels, class_names, from_cache=False)
            write_cache(path, fingerprint, decoded)
    except PermissionError as error:
        raise _permission_denied(error.filename or path.parent) from None
    check_shape(config, tuple(decoded.images.shape[1:]), len(decoded.class_names))
    return decoded


def check_shape(config: DataConfig, image_shape: tuple[int, ...], num_classes: int) -> None:
    """Models are built from data.input_shape/num_classes, so they must describe the real data."""
    if tuple(config.input_shape) != image_shape:
        raise ConfigError(
            f"data.input_shape must be {list(image_shape)} for {config.dataset}, got {list(config.input_shape)}"
        )
    if config.num_classes != num_classes:
        raise ConfigError(f"data.num_classes must be {num_classes} for {config.dataset}, got {config.num_classes}")


def torchvision_dataset(config: DataConfig, split: str, transform: Callable[[Any], Any]) -> Dataset:
    """The per-sample torchvision dataset of the DataLoader path (files must be prepared)."""
    tv_class = _torchvision_class(config.dataset)
    try:
        dataset = tv_class(root=str(dataset_dir(config)), train=split == "train", transform=transform, download=False)
    except Exception:  # same diagnosis as the in-memory path
        _decode(config, split)
        raise
    check_shape(config, _IMAGE_SHAPES[config.dataset], len(dataset.classes))  # type: ignore[attr-defined]
    return dataset
