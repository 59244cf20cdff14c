"""Checkpoints: written atomically, loaded without running code from the file.

A checkpoint is a plain dict of tensors and Python values (see `Trainer.state_dict`), so it loads with
`torch.load(weights_only=True)`: a checkpoint from somewhere else cannot execute code.

`checkpoints/last.pt` is replaced atomically (temporary file, fsync, rename); just before, the good
`last.pt` it replaces becomes `previous.pt` (a hard link: no copy, no extra space), so a `last.pt`
damaged later (a bad disk, a truncated copy) still leaves one good checkpoint to resume from.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainscope.engine.callbacks import Callback
from trainscope.engine.monitoring import MetricTracker
from trainscope.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from trainscope.engine.trainer import Trainer

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
PREVIOUS = "previous.pt"
BEST = "best.pt"
CHECKPOINT_FORMAT = 1


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


def save_atomic(payload: dict[str, Any], path: Path, keep_previous: Path | None = None) -> None:
    """Write `payload` to `path` through a temporary file, so a crash or full disk keeps the old file.

    With `keep_previous`, the file being replaced stays available under that name.
    """
    tmp_path = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        serialized = io.BytesIO()  # serialize first: a full disk then fails one plain write with ENOSPC
        torch.save(payload, serialized)
        with open(tmp_path, "wb") as handle:
            handle.write(serialized.getbuffer())
        if keep_previous is not None and path.is_file():
            copy_atomic(path, keep_previous)
        _fsync_replace(tmp_path, path)
    except (OSError, CheckpointError) as error:
        tmp_path.unlink(missing_ok=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CheckpointError(
            f"could not write checkpoint {path} ({reason}); the previous checkpoint is kept: "
            "free disk space, then resume the run"
        ) from error


def copy_atomic(source: Path, path: Path) -> None:
    """Copy a finished checkpoint (last.pt → best.pt) with the same all-or-nothing guarantee.

    A hard link when the filesystem allows: checkpoints are never modified in place (only replaced by
    rename), so a link is as good as a copy and needs no space on a nearly full disk.
    """
    tmp_path = path.with_name(path.name + ".tmp")
    try:
        tmp_path.unlink(missing_ok=True)
        try:
            os.link(source, tmp_path)
        except OSError:
            shutil.copyfile(source, tmp_path)
        _fsync_replace(tmp_path, path)
    except OSError as error:
        tmp_path.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {path}: {error.strerror or error}") from error


def save_checkpoint(trainer: Trainer) -> Path:
    """Write the trainer's full state to `checkpoints/last.pt`, keeping the replaced one as `previous.pt`.

    The new file is complete and on disk before either name changes: a crash or a full disk at any
    moment leaves a loadable `last.pt` (the old or the new one).
    """
    directory = trainer.run_dir / CHECKPOINT_DIR
    payload = {"format": CHECKPOINT_FORMAT, "config_hash": trainer.config_hash, **trainer.state_dict()}
    last = directory / LAST
    save_atomic(payload, last, keep_previous=directory / PREVIOUS)
    return last


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing or corrupt file is a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file: all mean the same to the user
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__})") from error
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} is not a trainscope checkpoint (no model state)")
    return checkpoint


def load_latest_checkpoint(directory: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path]:
    """The newest loadable checkpoint in `directory`: `last.pt`, else `previous.pt` (with a warning).

    Raises a one-line CheckpointError when neither loads.
    """
    try:
        return load_checkpoint(directory / LAST, map_location), directory / LAST
    except CheckpointError as last_error:
        previous = directory / PREVIOUS
        if not previous.is_file():
            raise
        try:
            checkpoint = load_checkpoint(previous, map_location)
        except CheckpointError:
            raise CheckpointError(f"{last_error}; {previous} is unreadable too: start the run again") from None
        message = f"{last_error}; falling back to the previous good checkpoint {previous}"
        log.warning("%s", message)
        print(f"warning: {message}", file=sys.stderr, flush=True)
        return checkpoint, previous


class CheckpointCallback(Callback):
    """Writes `checkpoints/last.pt` after every epoch and `checkpoints/best.pt` when `monitor` improves.

    With `every_n_steps`, `last.pt` is also written every that many optimizer steps (mid-epoch), so a
    crash or kill loses at most that many steps.
    """

    def __init__(self, monitor: str, mode: str = "max", every_n_steps: int | None = None) -> None:
        if every_n_steps is not None and (
            isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps <= 0
        ):
            raise ConfigError(
                f"callbacks.checkpoint.every_n_steps must be null or a positive integer, got {every_n_steps!r}"
            )
        self.tracker = MetricTracker(monitor, mode)
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer: Trainer, step_metrics: dict[str, float] | None) -> None:
        if self.every_n_steps is None or trainer.state.global_step % self.every_n_steps != 0:
            return
        if trainer.stopping:
            return  # a failed step must not replace a good checkpoint; an interruption writes its own
        save_checkpoint(trainer)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.status == "failed":
            return  # never overwrite the last good checkpoint with a broken model
        directory = trainer.run_dir / CHECKPOINT_DIR
        improved = self.tracker.update(metrics)
        save_checkpoint(trainer)
        if improved:
            copy_atomic(directory / LAST, directory / BEST)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
