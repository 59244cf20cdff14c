"""Opening an Optuna storage from its spec: a journal file path or an RDB URL (sqlite, postgresql).

Shared by the sweeper (which owns the study and keeps RDB trials alive with heartbeats) and by a
trial's job (which only reports to its trial, so it opens the storage without a heartbeat).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from trainscope.core.errors import ConfigError, first_line

HEARTBEAT_INTERVAL_SECONDS = 30
HEARTBEAT_GRACE_SECONDS = 120


class StorageError(ConfigError):
    """The study's storage cannot be opened (unreachable server, locked database, unwritable file)."""


def is_rdb_url(storage: str) -> bool:
    return "://" in storage


def open_storage(storage: str, *, heartbeat: bool = True) -> BaseStorage:
    """Open (creating if needed) the storage `storage` names; raise StorageError with the fix in one line.

    `heartbeat`: RDB storages record a heartbeat per running trial, so a dead sweep's trials go stale and
    are retried once; a trial's job passes False (its sweep beats for it).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if is_rdb_url(storage):
                if not heartbeat:
                    return RDBStorage(storage)
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


def redact(storage: str) -> str:
    """Hide a password in an RDB URL before printing it."""
    if not is_rdb_url(storage) or "@" not in storage:
        return storage
    scheme, rest = storage.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else storage
