"""Which directories under the folders the user names are runs: the ones `python train.py` trained in.

A run directory holds its saved config (`.hydra/config.yaml`) and something only training writes (metrics.json,
metrics.csv, checkpoints/, a TensorBoard event file) or a process holding its lock (a run still starting). A
directory with only `.hydra/` and `train.log` is a run that stopped at a config error before it trained, and is
left out, as are sweep roots, `report/` folders and anything else. The walk never follows links (no loops
through a hostile tree) and does not descend into a run directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import (
    CHECKPOINT_DIR,
    EVENT_FILE_PREFIX,
    HYDRA_DIR,
    METRICS_CSV,
    METRICS_FILE,
    RUN_LOCK,
    SAVED_CONFIG,
    display_path,
)
from trainscope.core.run_lock import lock_holder

_TRAINING_FILES = (METRICS_FILE, METRICS_CSV, CHECKPOINT_DIR)


def find_run_dirs(folders: Iterable[Path]) -> list[Path]:
    """Every run directory under `folders` (a folder may be a run directory itself), in natural order.

    Raises a one-line ConfigError for a folder that does not exist; an empty result is the caller's to report.
    """
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"{folder}: no such folder; pass folders that hold run directories, e.g. outputs/")
        found += _walk(folder)
    return sorted(dict.fromkeys(found), key=natural_key)


def _walk(folder: Path) -> list[Path]:
    runs: list[Path] = []
    pending = [folder]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError:
            continue  # unreadable: nothing to list in it
        names = {entry.name for entry in entries}
        if HYDRA_DIR in names and _is_run(directory, names):
            runs.append(directory)
            continue
        pending += [
            Path(entry.path)
            for entry in entries
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
        ]
    return runs


def _is_run(directory: Path, names: set[str]) -> bool:
    if not (directory / SAVED_CONFIG).is_file():
        return False
    if any(name in names for name in _TRAINING_FILES) or any(name.startswith(EVENT_FILE_PREFIX) for name in names):
        return True
    return RUN_LOCK in names and lock_holder(directory) is not None


def natural_key(path: Path) -> list[object]:
    """`2_lr=0.1` before `10_lr=0.1`: a sweep's job numbers sort as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def no_runs_message(folders: Iterable[Path]) -> str:
    shown = ", ".join(display_path(folder) for folder in folders)
    return (
        f"{shown} holds no run directories (a folder with .hydra/config.yaml and metrics.json, metrics.csv, "
        "checkpoints or TensorBoard events); pass the folder python train.py printed, e.g. outputs/ or a sweep's "
        "outputs/multirun/<date>/<time>"
    )
