"""Where a study lives: a journal file in the sweep directory by default, or any Optuna RDB URL.

The journal file needs no server and is safe for several processes on one machine (file locks), so a
sweep can be killed and resumed, and several `python train.py -m ...` can share it. RDB storages
(sqlite, postgresql) get heartbeats so a worker that dies on another machine has its trial failed and
retried once.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from trainscope.trial.storage import (
    HEARTBEAT_INTERVAL_SECONDS,
    StorageError,
    is_rdb_url,
    open_storage,
    redact,
)

__all__ = [
    "HEARTBEAT_INTERVAL_SECONDS",
    "JOURNAL_FILE_NAME",
    "StorageError",
    "dashboard_command",
    "is_rdb_url",
    "open_storage",
    "redact",
    "resolve_storage",
]

JOURNAL_FILE_NAME = "optuna_journal.log"


def resolve_storage(storage: str | None, sweep_dir: str | os.PathLike[str]) -> str:
    """The storage as jobs in any working directory can reach it: an absolute journal path or RDB URL."""
    if storage is None or str(storage).strip() == "":
        return str((Path(sweep_dir) / JOURNAL_FILE_NAME).resolve())
    storage = str(storage)
    if storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        relative = storage[len("sqlite:///") :]
        if relative and relative != ":memory:":
            return "sqlite:///" + str(Path(relative).resolve())
    if is_rdb_url(storage):
        return storage
    return str(Path(storage).expanduser().resolve())


def dashboard_command(storage: str) -> str:
    """The command that opens the study in optuna-dashboard (a journal file path or an RDB URL)."""
    return f"optuna-dashboard {shlex.quote(storage)}"
