"""Checkpoints: written atomically, loaded without running code from the file.

A checkpoint is a plain dict of tensors and Python values (whatever a `Stateful` object's `state_dict`
returns), so it loads with `torch.load(weights_only=True)`: a checkpoint from somewhere else cannot execute code.

`checkpoints/last.pt` is replaced atomically (temporary file, fsync, rename); just before, the good
`last.pt` it replaces becomes `previous.pt` (a hard link: no copy, no extra space), so a `last.pt`
damaged later (a bad disk, a truncated copy) still leaves one good checkpoint to resume from.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import sys
from pathlib import Path
from typing import Any, Protocol

import torch

from trainscope.core.errors import CheckpointError
from trainscope.core.run_dir import BEST, CHECKPOINT_DIR, CORRUPT_SUFFIX, LAST, PREVIOUS, atomic_write

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


class Stateful(Protocol):
    """What checkpoint I/O needs from the object it saves: nothing but its state as plain values."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def save_checkpoint(run_dir: Path, stateful: Stateful, config_hash: str) -> Path:
    """Write `stateful`'s full state to `checkpoints/last.pt`, keeping the replaced one as `previous.pt`.

    The new file is complete and on disk before either name changes: a crash or a full disk at any
    moment leaves a loadable `last.pt` (the old or the new one). `config_hash` lets a resumed run check
    that it learns the same way.
    """
    directory = run_dir / CHECKPOINT_DIR
    last = directory / LAST
    payload = {"format": CHECKPOINT_FORMAT, "config_hash": config_hash, **stateful.state_dict()}
    serialized = io.BytesIO()  # serialize first: a full disk then fails one plain write with ENOSPC
    torch.save(payload, serialized)
    try:
        atomic_write(last, serialized.getvalue(), keep_previous=directory / PREVIOUS)
    except OSError as error:
        reason = error.strerror or str(error)
        raise CheckpointError(
            f"could not write checkpoint {last} ({reason}); the previous checkpoint is kept: "
            "free disk space, then resume the run"
        ) from error
    return last


def keep_as_best(run_dir: Path) -> None:
    """`last.pt` just written is the best so far: make it `best.pt` too (a hard link where possible)."""
    directory = run_dir / CHECKPOINT_DIR
    _write(directory / BEST, directory / LAST)


def _write(path: Path, source: Path) -> None:
    try:
        atomic_write(path, source)
    except OSError as error:
        raise CheckpointError(f"could not write checkpoint {path}: {error.strerror or error}") from error


WeightsFingerprint = tuple[tuple[str, int, int], ...]
_never_equal = itertools.count()  # for state a fingerprint cannot follow: a new number at every call


def weights_fingerprint(model: torch.nn.Module) -> WeightsFingerprint:
    """What changes whenever a tensor of `model`'s state does: each one's name, storage address and version counter.

    torch bumps a tensor's version on every in-place change (an optimizer step, `load_state_dict`, a BatchNorm
    statistics update); a replaced parameter has another address. Equal fingerprints taken at two moments
    mean the weights did not change in between, so a checkpoint written at the first moment holds the weights of
    the second: the test phase then needs no second read of the `best.pt` it has just written. State it cannot
    follow (a module's extra state, a sparse tensor without a storage address) makes every fingerprint differ, so
    the checkpoint is read back as before.
    """
    return tuple((name, *_identity(value)) for name, value in model.state_dict().items())


def _identity(value: object) -> tuple[int, int]:
    if isinstance(value, torch.Tensor):
        try:
            return value.data_ptr(), value._version
        except RuntimeError:  # a sparse tensor has no storage address
            pass
    return -1, next(_never_equal)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing or corrupt file is a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file: all mean the same to the user
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__})") from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"checkpoint {path} is not a trainscope checkpoint (no model state)")
    # A checkpoint may come with a run directory from anywhere: each part the loaders read must have its shape.
    for part in ("trainer", "task", "data", "optimizer"):
        if part in checkpoint and not isinstance(checkpoint[part], dict):
            raise CheckpointError(f"checkpoint {path} is not a trainscope checkpoint ({part} is not a state dict)")
    return checkpoint


def load_model_weights(model: torch.nn.Module, checkpoint: dict[str, Any], path: Path, run_dir: Path) -> None:
    """`model.load_state_dict(checkpoint["model"])`, or one line when the weights do not fit the run's model."""
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model of {run_dir}/.hydra/config.yaml "
            f"({error_detail(error)}); was the config edited after training?"
        ) from None


def error_detail(error: BaseException) -> str:
    """torch's load_state_dict message starts with a header line ending in `:`; the keys come after it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]


EMA_WEIGHTS = "ema_weights"
"""The key of the weights' moving average in a callback's checkpoint state (`trainscope.engine.ema`)."""


def weights_to_test(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The weights a checkpoint is tested with: the moving average of `callbacks.ema` when the run kept one (what
    `val_ema/*` validated), else the model's own."""
    for state in (checkpoint.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get(EMA_WEIGHTS) is not None:
            return state[EMA_WEIGHTS]
    return checkpoint["model"]


def load_latest_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path]:
    """The newest loadable checkpoint of the run: `last.pt`, else `previous.pt` (with a warning).

    A corrupt `last.pt` is set aside as `last.pt.corrupt`, not deleted: the next checkpoint must not rotate
    it into `previous.pt`. Raises a one-line CheckpointError when neither loads.
    """
    directory = run_dir / CHECKPOINT_DIR
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
        corrupt_last = directory / LAST
        if corrupt_last.exists():
            os.replace(corrupt_last, corrupt_last.with_name(LAST + CORRUPT_SUFFIX))
        return checkpoint, previous


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """`best` (falling back to `last`), `last`, or an explicit path."""
    directory = run_dir / CHECKPOINT_DIR
    if which == "best":
        candidates = [directory / BEST, directory / LAST]
    elif which == "last":
        candidates = [directory / LAST]
    else:
        candidates = [Path(which)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = " or ".join(path.name for path in candidates)
    raise CheckpointError(
        f"no checkpoint to evaluate: {names} not found in {candidates[0].parent} "
        "(was the run trained with callbacks.checkpoint=null?)"
    )
