"""`data=image_folder`: the user's own images in torchvision's ImageFolder layout.

    <root>/train/<class>/*.png     (or <root>/<class>/*.png: the whole folder is the training set)
    <root>/val/<class>/*.png       optional; otherwise carved from train with data.split_seed
    <root>/test/<class>/*.png      optional; otherwise carved from train when data.test_fraction > 0

Every image is decoded once with Pillow at data.input_shape (resize to cover, then center crop; grayscale,
RGB, RGBA and palette images converted to data.channels) and kept as uint8 tensors in the same cache as the
built-in datasets, keyed on the files' names, sizes and mtimes. A folder too large for memory is decoded
per sample instead, by the same function, in DataLoader workers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from trainscope.core.errors import DataError
from trainscope.data.cache import DecodedSplit, one_line, read_cache, write_cache

log = logging.getLogger(__name__)

# torchvision's IMG_EXTENSIONS, the files ImageFolder reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS = ("train", "val", "test")
LAYOUT_HINT = "expected <root>/train/<class>/<image> (torchvision's ImageFolder layout)"


@dataclass(frozen=True)
class FolderSplit:
    """The image files of one split folder and their class indices (sorted, so the order is stable)."""

    directory: Path
    files: list[Path]
    labels: list[int]


def _class_folders(directory: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith("."))


def _image_files(directory: Path) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(directory, followlinks=True):
        subfolders.sort()
        found += [Path(folder) / name for name in sorted(names) if name.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def _list_split(directory: Path, class_names: list[str]) -> FolderSplit:
    files: list[Path] = []
    labels: list[int] = []
    index = {name: position for position, name in enumerate(class_names)}
    for name in _class_folders(directory):
        if name not in index:
            raise DataError(
                f"{directory / name} is a class that {directory.parent / 'train'} does not have; "
                f"val/ and test/ may only use the training classes ({', '.join(class_names)})"
            )
        images = _image_files(directory / name)
        files += images
        labels += [index[name]] * len(images)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {directory}; {LAYOUT_HINT}")
    return FolderSplit(directory, files, labels)


def list_image_folder(root: Path) -> tuple[list[str], dict[str, FolderSplit]]:
    """The class names (train's subfolders) and the splits present under `root`."""
    if not root.exists():
        raise DataError(f"data.root={root} does not exist; {LAYOUT_HINT}")
    if not root.is_dir():
        raise DataError(f"data.root={root} is a file, not a directory; {LAYOUT_HINT}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"cannot read {root}: permission denied; fix its permissions")
    train_dir = root / "train" if (root / "train").is_dir() else root
    class_names = [name for name in _class_folders(train_dir) if train_dir != root or name not in SPLIT_FOLDERS]
    if len(class_names) < 2:
        raise DataError(f"{train_dir} has {len(class_names)} class folder(s), at least 2 are needed; {LAYOUT_HINT}")
    splits = {"train": _list_split(train_dir, class_names)}
    for split in ("val", "test"):
        if train_dir != root and (root / split).is_dir():
            splits[split] = _list_split(root / split, class_names)
    present = set(splits["train"].labels)
    for index, name in enumerate(class_names):
        if index not in present:
            raise DataError(f"class folder {train_dir / name} has no images; {LAYOUT_HINT}")
    return class_names, splits


def load_image(path: Path, channels: int, height: int, width: int) -> np.ndarray:
    """Decode `path` to uint8 [channels, height, width]: scale to cover, center crop, convert the mode.

    RGBA drops its alpha and grayscale is repeated into RGB, as torchvision's ImageFolder loader does.
    """
    from PIL import Image  # Pillow comes with torchvision; only image folders need it

    with Image.open(path) as image:
        mode = "L" if channels == 1 else "RGB"
        image.draft(mode, (width, height))  # JPEG: let the decoder downscale by 2-8x for free
        image = image.convert(mode)
        scale = max(height / image.height, width / image.width)
        size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        if size != image.size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        array = np.array(image.crop((left, top, left + width, top + height)), dtype=np.uint8)  # a writable copy
    return array[None] if channels == 1 else np.ascontiguousarray(array.transpose(2, 0, 1))


def _decode_error(path: Path, error: BaseException) -> DataError:
    return DataError(
        f"cannot decode image {path} ({one_line(error)}); replace or delete it, or set data.skip_bad_files=true"
    )


def decode_folder(split: FolderSplit, shape: Sequence[int], skip_bad_files: bool) -> DecodedSplit:
    """Decode every image of `split` with a thread per core (Pillow releases the GIL while decoding)."""
    channels, height, width = shape
    images = np.empty((len(split.files), channels, height, width), dtype=np.uint8)

    def decode(position: int) -> BaseException | None:
        try:
            images[position] = load_image(split.files[position], channels, height, width)
        except Exception as error:  # Pillow raises assorted types for bad files; each one is reported
            return error
        return None

    log.info(
        "decoding %d images from %s at %dx%d (once: later runs read the cache)",
        len(images),
        split.directory,
        height,
        width,
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        errors = list(pool.map(decode, range(len(images))))
    bad = [position for position, error in enumerate(errors) if error is not None]
    if bad and not skip_bad_files:
        raise _decode_error(split.files[bad[0]], errors[bad[0]])  # type: ignore[arg-type]
    for position in bad:
        log.warning("skipping unreadable image %s (%s)", split.files[position], one_line(errors[position]))  # type: ignore[arg-type]
    images_tensor, labels = torch.from_numpy(images), torch.tensor(split.labels, dtype=torch.int64)
    if bad:
        skipped = set(bad)
        keep = torch.tensor([position for position in range(len(labels)) if position not in skipped], dtype=torch.int64)
        images_tensor, labels = images_tensor[keep], labels[keep]
    return DecodedSplit(images_tensor, labels, [], from_cache=False)


def _cache_key(split: FolderSplit, shape: Sequence[int], skip_bad_files: bool) -> str:
    """Digest of every file's relative name, size and mtime plus the decode settings."""
    digest = hashlib.sha256(json.dumps([list(shape), skip_bad_files]).encode())
    for path, label in zip(split.files, split.labels, strict=True):
        stat = path.stat()
        digest.update(f"{path.relative_to(split.directory)}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def folder_cache_path(cache_dir: Path, split: FolderSplit) -> Path:
    """One cache file per split folder, named after the folder so two image folders never collide."""
    folder_id = hashlib.sha256(str(split.directory.resolve()).encode()).hexdigest()[:16]
    return cache_dir / "image_folder" / f"{split.directory.name}-{folder_id}.pt"


def load_folder(
    split: FolderSplit, class_names: list[str], shape: Sequence[int], skip_bad_files: bool, cache_dir: Path | None
) -> DecodedSplit:
    """The decoded split from the cache when every file is unchanged, else decoded (and cached)."""
    key = _cache_key(split, shape, skip_bad_files)
    path = folder_cache_path(cache_dir, split) if cache_dir is not None else None
    cached = read_cache(path, key) if path is not None else None
    if cached is not None:
        return cached
    decoded = decode_folder(split, shape, skip_bad_files)
    decoded = DecodedSplit(decoded.images, decoded.labels, class_names, from_cache=False)
    if path is not None:
        write_cache(path, key, decoded)
    return decoded


class ImageFileDataset(Dataset):
    """Per-sample decoding for folders larger than data.max_memory_gb: `load_image` in DataLoader workers."""

    def __init__(self, split: FolderSplit, shape: Sequence[int], transform: object) -> None:
        self.files = split.files
        self.labels = split.labels
        self.shape = tuple(shape)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            image = load_image(self.files[index], *self.shape)
        except Exception as error:  # one line naming the file, also when raised in a worker
            raise _decode_error(self.files[index], error) from None
        return self.transform(torch.from_numpy(image)), self.labels[index]  # type: ignore[operator]
