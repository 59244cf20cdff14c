"""Checkpoints: written atomically, loaded without running code from the file.

A checkpoint is a plain dict of tensors and Python values (see `Trainer.state_dict`), so it loads with
`torch.load(weights_only=True)`: a checkpoint from somewhere else cannot execute code.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainscope.engine.callbacks import Callback
from trainscope.engine.monitoring import MetricTracker
from trainscope.errors import CheckpointError

if TYPE_CHECKING:
    from trainscope.engine.trainer import Trainer

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def _fsync_replace(tmp_path: Path, path: Path) -> None:
    """Make `tmp_path` durable, then swap it in: readers see the old file or the new one, never half."""
    with open(tmp_path, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp_path, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` to `path` through a temporary file, so a crash or full disk keeps the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp_path)
        _fsync_replace(tmp_path, path)
    except OSError as error:
        tmp_path.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {path}: {error.strerror or error}") from error


def copy_atomic(source: Path, path: Path) -> None:
    """Copy a finished checkpoint (last.pt → best.pt) with the same all-or-nothing guarantee."""
    tmp_path = path.with_name(path.name + ".tmp")
    try:
        shutil.copyfile(source, tmp_path)
        _fsync_replace(tmp_path, path)
    except OSError as error:
        tmp_path.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {path}: {error.strerror or error}") from error


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing or corrupt file is a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file: all mean the same to the user
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__})") from error


class CheckpointCallback(Callback):
    """Writes `checkpoints/last.pt` after every epoch and `checkpoints/best.pt` when `monitor` improves."""

    def __init__(self, monitor: str, mode: str = "max") -> None:
        self.tracker = MetricTracker(monitor, mode)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.status == "failed":
            return  # never overwrite the last good checkpoint with a broken model
        directory = trainer.run_dir / CHECKPOINT_DIR
        improved = self.tracker.update(metrics)
        save_atomic(trainer.state_dict(), directory / LAST)
        if improved:
            copy_atomic(directory / LAST, directory / BEST)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
