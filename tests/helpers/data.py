"""Datasets laid out on disk as a user's `data/` folder would hold them."""

from __future__ import annotations

import shutil
from pathlib import Path

from trainscope.data.files import BUNDLED_MNIST_DIR


def copy_mnist_files(root: Path) -> Path:
    """Lay the bundled .gz files out as a downloaded `data=mnist` would be: <root>/mnist/MNIST/raw."""
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in BUNDLED_MNIST_DIR.glob("*.gz"):
        shutil.copy(path, raw / path.name)
    return raw
