"""The decoded-data cache: one split as uint8 tensors in a `.pt` file, shared by every image dataset kind.

Decoding (torchvision's IDX/CIFAR readers, or Pillow for an image folder) is the slow part of loading a
dataset, so it happens once. The cache header holds a `key` describing the source files (names, sizes,
mtimes and decode settings) and a checksum of the tensor bytes: a changed source file or an altered
cache means a fresh decode, never silently wrong data. A cache that cannot be written (a read-only
data folder) only costs the shortcut: the run trains from the decoded tensors in memory. Tokenized text keeps
the same contract in a file of its own format (`trainscope.data.token_cache`), memory-mapped instead of loaded.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainscope.core.run_dir import atomic_write

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: the header carries a checksum of the tensor bytes


@dataclass(frozen=True)
class DecodedSplit:
    """One split in memory: uint8 images [N, C, H, W] and int64 labels [N], on the CPU."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    from_cache: bool


def one_line(error: BaseException) -> str:
    """An error's message on one line of at most 200 characters, for `error: ...` reports and warnings."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def files_fingerprint(files: list[Path], base: Path | None = None) -> list[list[Any]]:
    """[name, size, mtime_ns] of every file (the name relative to `base` when given): what a cache of data
    decoded from these files is keyed on, so a changed, added or removed file means decoding again."""
    fingerprint: list[list[Any]] = []
    for path in files:
        stat = path.stat()
        name = str(path.relative_to(base)) if base is not None else path.name
        fingerprint.append([name, stat.st_size, stat.st_mtime_ns])
    return fingerprint


def tensor_checksum(images: torch.Tensor, labels: torch.Tensor) -> int:
    """CRC-32 of the image and label bytes: ~1 GB/s, cheap next to reading the file it guards."""
    checksum = 0
    for tensor in (images, labels):
        checksum = zlib.crc32(tensor.contiguous().view(torch.uint8).numpy().data, checksum)
    return checksum


def read_cache(path: Path, key: Any) -> DecodedSplit | None:
    """The cached split at `path` if it was decoded from the sources `key` describes and is intact."""
    if not path.exists():
        return None
    try:
        cached = torch.load(path, weights_only=True)
        if cached.get("version") != CACHE_VERSION or cached.get("key") != key:
            return None
        images, labels = cached["images"], cached["labels"]
        if tensor_checksum(images, labels) != cached.get("checksum"):
            log.warning("cache %s does not match its checksum (altered on disk); decoding again", path)
            return None
        return DecodedSplit(images, labels, list(cached["class_names"]), from_cache=True)
    except Exception as error:  # a broken cache is only a missed shortcut: decode again
        log.warning("ignoring unreadable cache %s (%s)", path, one_line(error))
        return None


def write_cache(path: Path, key: Any, decoded: DecodedSplit) -> None:
    """Write atomically; on failure (read-only or full disk) warn and go on with the data in memory."""
    payload = {
        "version": CACHE_VERSION,
        "key": key,
        "checksum": tensor_checksum(decoded.images, decoded.labels),
        "images": decoded.images,
        "labels": decoded.labels,
        "class_names": decoded.class_names,
    }
    try:
        atomic_write(path, lambda handle: torch.save(payload, handle))
    except (OSError, RuntimeError) as error:  # torch.save reports a failed write as a RuntimeError
        log.warning(
            "could not write cache %s (%s); training from memory, decoding again next run", path, one_line(error)
        )
