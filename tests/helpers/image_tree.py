"""Real PNG/JPEG image folders (torchvision's ImageFolder layout) written from the bundled MNIST sample."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

from trainscope.data.files import BUNDLED_MNIST_DIR

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def mnist_sample(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample's uint8 images [N, 28, 28] and labels [N] of `split` ("train" or "t10k")."""
    with gzip.open(BUNDLED_MNIST_DIR / f"{split}-images-idx3-ubyte.gz") as images_file:
        images = np.frombuffer(images_file.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(BUNDLED_MNIST_DIR / f"{split}-labels-idx1-ubyte.gz") as labels_file:
        labels = np.frombuffer(labels_file.read(), np.uint8, offset=8)
    return images, labels


def write_digits(folder: Path, count: int, source: str = "train", suffix: str = ".png") -> list[Path]:
    """`count` MNIST digits as `<folder>/<digit name>/<index><suffix>` grayscale files."""
    images, labels = mnist_sample(source)
    written = []
    for index in range(count):
        path = folder / DIGIT_NAMES[labels[index]] / f"{index:05d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(path)
        written.append(path)
    return written
