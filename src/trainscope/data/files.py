"""Find, download, decode and cache the built-in datasets as uint8 tensors.

The files are found where users keep them (the first of these that holds any of them):

    <root>/<dataset>/<TorchvisionName>/raw/   what `data.download=true` leaves (torchvision's own layout)
    <root>/<TorchvisionName>/raw/             a torchvision root, e.g. `FashionMNIST/raw` (cifar-10-batches-py)
    <root>/<dataset>/  or  <root>/            a plain folder holding the files (IDX files may stay .gz)

IDX and CIFAR files are read directly (no unpacking, no writes next to them: a read-only copy trains),
and the decoded split is cached as `<root>/<dataset>/cache-<split>.pt` keyed on the size and mtime of the
files it came from; a changed source file means a fresh decode.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainscope.config.groups.data import ImageDataConfig, SyntheticDataConfig
from trainscope.core.errors import ConfigError, DataError
from trainscope.data.cache import DecodedSplit, files_fingerprint, one_line, read_cache, write_cache
from trainscope.data.synthetic import make_synthetic, synthetic_class_names, synthetic_split_size

log = logging.getLogger(__name__)

BUNDLED_MNIST_DIR = Path(__file__).resolve().parent.parent / "resources" / "mnist-5k"
"""The 5,000-image MNIST subset shipped in the package: `data=mnist_sample` trains with no network."""

DOWNLOAD_TIMEOUT_SECONDS = 30.0
OFFLINE_HINT = "use data=mnist_sample to train offline"
IDX_PREFIXES = {"train": "train", "test": "t10k"}

# torchvision is imported only to download: importing it costs seconds (it pulls in torch._dynamo).
# Its folder names, file names and class names are spelled out here instead.
_TORCHVISION_CLASS_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}
_CIFAR10_FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder
_CIFAR10_FILES = {  # torchvision's CIFAR10.train_list / test_list names, and meta["filename"]
    "train": [f"data_batch_{index}" for index in range(1, 6)],
    "test": ["test_batch"],
    "meta": ["batches.meta"],
}
_MNIST_CLASSES = [
    f"{digit} - {name}"
    for digit, name in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
]
_CLASS_NAMES = {  # torchvision's MNIST.classes / FashionMNIST.classes (CIFAR-10 reads batches.meta)
    "mnist": _MNIST_CLASSES,
    "mnist_sample": _MNIST_CLASSES,
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}  # fmt: skip
_SPLIT_SIZES = {  # (train, test), to choose a loader before decoding anything
    "mnist": (60_000, 10_000),
    "fashion_mnist": (60_000, 10_000),
    "mnist_sample": (4_000, 1_000),
    "cifar10": (50_000, 10_000),
}


def dataset_dir(config: ImageDataConfig) -> Path:
    """Where this dataset's caches live, and where `data.download=true` puts its files."""
    return config.root / config.dataset


def split_size(config: ImageDataConfig, split: str) -> int:
    """Number of images in a split (before the val carve-out), known without decoding."""
    if isinstance(config, SyntheticDataConfig):
        return synthetic_split_size(config.num_samples, split)
    return _SPLIT_SIZES[config.dataset][0 if split == "train" else 1]


def _is_idx(name: str) -> bool:
    return name in ("mnist", "fashion_mnist", "mnist_sample")


def _file_names(dataset: str, split: str) -> list[str]:
    if _is_idx(dataset):
        prefix = IDX_PREFIXES[split]
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    return _CIFAR10_FILES[split] + _CIFAR10_FILES["meta"]


def _all_file_names(dataset: str) -> list[str]:
    return list(dict.fromkeys(_file_names(dataset, "train") + _file_names(dataset, "test")))


def _located(directory: Path, name: str) -> Path | None:
    """`name` in `directory`, unpacked or as `name.gz` (IDX files are read either way)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _candidate_dirs(config: ImageDataConfig) -> list[Path]:
    """Where the files may be, most specific first; the first one is where a download puts them."""
    if config.dataset == "mnist_sample":
        return [BUNDLED_MNIST_DIR]
    nested = (_TORCHVISION_CLASS_NAMES[config.dataset], "raw") if _is_idx(config.dataset) else (_CIFAR10_FOLDER,)
    return [dataset_dir(config).joinpath(*nested), config.root.joinpath(*nested), dataset_dir(config), config.root]


def files_dir(config: ImageDataConfig) -> Path:
    """The first candidate folder holding any of the dataset's files (the download folder if none does)."""
    candidates = _candidate_dirs(config)
    for directory in candidates:
        if any(_located(directory, name) for name in _all_file_names(config.dataset)):
            return directory
    return candidates[0]


def _source_files(config: ImageDataConfig, split: str) -> list[Path]:
    """The files a split is decoded from; their size and mtime key the cache."""
    directory = files_dir(config)
    return [_located(directory, name) or directory / name for name in _file_names(config.dataset, split)]


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


def _check_directory(path: Path) -> None:
    """A data folder that is a file, or unreadable, is named as such (not as a missing dataset).

    A folder below a file (`data.root=notes.txt/data`) can never exist either: that file is named.
    """
    existing = next((folder for folder in (path, *path.parents) if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise DataError(f"{existing} is a file, not a directory; set paths.data_dir (or data.root) to a folder")
    if path.exists() and not os.access(path, os.R_OK | os.X_OK):
        raise _permission_denied(path)


def _missing_message(config: ImageDataConfig, missing: list[str], where: Path) -> str:
    wanted = ", ".join(f"{name}(.gz)" if _is_idx(config.dataset) else name for name in missing)
    if len(missing) == len(_all_file_names(config.dataset)):
        return f"{config.dataset} not found in {where} (wanted {wanted})"
    return f"{config.dataset} in {where} is missing {wanted}"


def prepare_files(config: ImageDataConfig) -> None:
    """Make sure the dataset's files are on disk: found in any accepted layout, or downloaded if allowed."""
    if config.dataset == "synthetic":
        return
    try:
        _check_directory(config.root)
        if config.dataset == "mnist_sample":
            if not all(_located(BUNDLED_MNIST_DIR, name) for name in _all_file_names("mnist_sample")):
                raise DataError(f"bundled MNIST sample missing from {BUNDLED_MNIST_DIR}; reinstall trainscope")
            return
        _check_directory(dataset_dir(config))
        where = files_dir(config)
        _check_directory(where)
        missing = [name for name in _all_file_names(config.dataset) if not _located(where, name)]
        if not missing:
            return
        found_some = len(missing) < len(_all_file_names(config.dataset))
        if found_some or not config.download:
            fix = (
                "put the missing files there"
                if found_some
                else f"set data.download=true, put the files there, or {OFFLINE_HINT}"
            )
            reason = "" if found_some else " and data.download=false"
            raise DataError(f"{_missing_message(config, missing, where)}{reason}; {fix}")
        directory = dataset_dir(config)
        directory.mkdir(parents=True, exist_ok=True)
        from torchvision import datasets

        log.info("downloading %s into %s", config.dataset, directory)
        try:
            with _download_timeout(DOWNLOAD_TIMEOUT_SECONDS):
                getattr(datasets, _TORCHVISION_CLASS_NAMES[config.dataset])(
                    root=str(directory), train=True, download=True
                )
        except PermissionError:
            raise
        except Exception as error:  # torchvision wraps URLError/timeouts in RuntimeError; any failure means "no data"
            if any(not _located(files_dir(config), name) for name in missing):
                raise DataError(
                    f"{_missing_message(config, missing, where)} and the download failed ({one_line(error)}); "
                    f"check the network or put the files there, or {OFFLINE_HINT}"
                ) from None
    except PermissionError as error:
        raise _permission_denied(error.filename or config.root, "access") from None


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as compressed:
            return compressed.read()
    return path.read_bytes()


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (`.gz` or unpacked) of unsigned bytes as a uint8 tensor of its declared shape."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(ndim)]
    payload = memoryview(data)[4 + 4 * ndim :]
    if len(payload) != prod(shape):
        raise ValueError(f"{len(payload)} bytes of data where its header declares {shape}")
    return torch.frombuffer(bytearray(payload), dtype=torch.uint8).view(shape)


def _read_cifar(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return pickle.load(file, encoding="latin1")  # the CIFAR-10 python format, as torchvision reads it


def _decode_files(config: ImageDataConfig, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read one split's files into uint8 [N, C, H, W] + int64 labels; a bad file names itself."""
    current = files[0]
    try:
        if _is_idx(config.dataset):
            images = read_idx(files[0])
            current = files[1]
            labels = read_idx(files[1]).to(torch.int64)
            if images.ndim != 3 or labels.ndim != 1:
                raise ValueError("unexpected dimensions")
            if len(images) != len(labels):
                raise ValueError(f"{len(labels)} labels for {len(images)} images in {files[0].name}")
            return images.unsqueeze(1).contiguous(), labels, _CLASS_NAMES[config.dataset]
        batches = []
        for current in files[:-1]:
            batch = _read_cifar(current)
            batches.append((np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), batch["labels"]))
        current = files[-1]
        class_names = list(_read_cifar(current)["label_names"])
        images = torch.from_numpy(np.concatenate([data for data, _ in batches]))
        labels = torch.tensor([label for _, batch_labels in batches for label in batch_labels], dtype=torch.int64)
        return images.contiguous(), labels, class_names
    except (OSError, EOFError, ValueError, KeyError, TypeError, zlib.error, pickle.UnpicklingError) as error:
        if isinstance(error, PermissionError):
            raise
        fix = "reinstall trainscope" if config.dataset == "mnist_sample" else "delete it and download it again"
        raise DataError(f"{current} is corrupt or truncated ({one_line(error)}); {fix}") from None


def cache_path(config: ImageDataConfig, split: str) -> Path:
    """The decoded-tensor cache of a split."""
    return dataset_dir(config) / f"cache-{split}.pt"


def load_split(config: ImageDataConfig, split: str) -> DecodedSplit:
    """The whole `split` ("train" or "test") as uint8 tensors, from the cache when it is current."""
    if isinstance(config, SyntheticDataConfig):
        images, labels = make_synthetic(config.input_shape, config.num_classes, config.num_samples, split)
        return DecodedSplit(images, labels, synthetic_class_names(config.num_classes), from_cache=False)
    prepare_files(config)
    path = cache_path(config, split)
    try:
        fingerprint = files_fingerprint(_source_files(config, split))
        decoded = read_cache(path, fingerprint)
        if decoded is None:
            images, labels, class_names = _decode_files(config, _source_files(config, split))
            decoded = DecodedSplit(images, labels, class_names, from_cache=False)
            write_cache(path, fingerprint, decoded)
    except PermissionError as error:
        raise _permission_denied(error.filename or path.parent) from None
    check_shape(config, tuple(decoded.images.shape[1:]), len(decoded.class_names))
    return decoded


def check_shape(config: ImageDataConfig, image_shape: tuple[int, ...], num_classes: int) -> None:
    """Models are built from data.input_shape/num_classes, so they must describe the real data."""
    if tuple(config.input_shape) != image_shape:
        raise ConfigError(
            f"data.input_shape must be {list(image_shape)} for {config.dataset}, got {list(config.input_shape)}"
        )
    if config.num_classes != num_classes:
        raise ConfigError(f"data.num_classes must be {num_classes} for {config.dataset}, got {config.num_classes}")
