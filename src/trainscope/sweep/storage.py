"""Where a sweep keeps its study: a journal file in the sweep directory by default, or a database server.

The journal file needs no server and is safe for several processes on one machine (file locks), so a
sweep can be killed and resumed, and several `python train.py -m ...` can share it. A database URL
(`postgresql://...`) is the study for sweeps on many machines. Opening a storage (drivers, table-creation
lock, heartbeats, waiting out lost connections) lives in `trainscope.trial.storage`, which a trial's job
uses too; this module only says where the sweep's study is.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from trainscope.trial.storage import is_rdb_url, with_psycopg

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
    """The command that opens the study in optuna-dashboard (a journal file path or an RDB URL).

    The dashboard opens a plain `postgresql://` with psycopg2, so the URL names our driver.
    """
    return f"optuna-dashboard {shlex.quote(with_psycopg(storage) if is_rdb_url(storage) else storage)}"
