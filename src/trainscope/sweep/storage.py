"""Where a study lives: a journal file in the sweep directory by default, or any Optuna RDB URL.

The journal file needs no server and is safe for several processes on one machine (file locks), so a
sweep can be killed and resumed, and several `python train.py -m ...` can share it. RDB storages
(sqlite, postgresql) get heartbeats so a worker that dies on another machine has its trial failed and
retried once.
"""

from __future__ import annotations

import os
import shlex
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from trainscope.core.errors import ConfigError, first_line

JOURNAL_FILE_NAME = "optuna_journal.log"
HEARTBEAT_INTERVAL_SECONDS = 30
HEARTBEAT_GRACE_SECONDS = 120


class StorageError(ConfigError):
    """The study's storage cannot be opened (unreachable server, locked database, unwritable file)."""


def is_rdb_url(storage: str) -> bool:
    return "://" in storage


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


def open_storage(storage: str) -> BaseStorage:
    """Open (creating if needed) the storage `storage` names; raise StorageError with the fix in one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if is_rdb_url(storage):
                return RDBStorage(
                    storage,
                    heartbeat_interval=HEARTBEAT_INTERVAL_SECONDS,
                    grace_period=HEARTBEAT_GRACE_SECONDS,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
            path = Path(storage)
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
    except Exception as error:  # noqa: BLE001 - any driver error becomes one line for the user
        raise StorageError(
            f"cannot open Optuna storage '{redact(storage)}': {first_line(error)}; "
            "check hydra.sweeper.storage (server running, database not locked, directory writable)"
        ) from error


def dashboard_command(storage: str) -> str:
    """The command that opens the study in optuna-dashboard (a journal file path or an RDB URL)."""
    return f"optuna-dashboard {shlex.quote(storage)}"


def redact(storage: str) -> str:
    """Hide a password in an RDB URL before printing it."""
    if not is_rdb_url(storage) or "@" not in storage:
        return storage
    scheme, rest = storage.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else storage
