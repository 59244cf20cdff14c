"""Where a study is kept and how it is opened: a journal file (the default), or a database server.

Shared by the sweeper (which owns the study and keeps database trials alive with heartbeats) and by a
trial's job (which only reports to its trial, so it opens the storage without a heartbeat). By default the
study is a journal file in the sweep directory (`resolve_storage`): it needs no server and is safe for
several processes on one machine (file locks), so a sweep can be killed and resumed, and several
`python train.py -m ...` can share it. A database URL (`postgresql://...`, `mysql+pymysql://...`,
`sqlite:///...`) is the study for sweeps on many machines:

- the plain `postgresql://` a user types is driven by psycopg 3 (`pip install 'trainscope[postgresql]'`);
- Optuna's tables are created under a database-wide lock, so workers started at once on a fresh
  database do not race to create them;
- every running trial records a heartbeat; a trial whose heartbeat is older than the grace period
  belonged to a dead worker: it is failed and its configuration retried once;
- a lost connection (a server restart, a failover) is waited out for `reconnect_timeout` seconds
  instead of failing the sweep.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shlex
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from trainscope.adapters.optuna_private import CACHE_CALLS_ON_BACKEND, StaleTrialsHook, cache_backend, heartbeat_methods
from trainscope.core.errors import ConfigError, first_line
from trainscope.trial.database import DatabaseSettings
from trainscope.trial.journal import set_aside_torn_tail

JOURNAL_FILE_NAME = "optuna_journal.log"
# Seconds between attempts while the database is unreachable.
RECONNECT_POLL_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 10
# A lock holder silent this long inside its transaction (a dead machine whose TCP connection lingers)
# loses its session, and the lock with it.
LOCK_HOLDER_TIMEOUT = "60s"


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


def dashboard_command(storage: str) -> str:
    """The command that opens the study in optuna-dashboard (a journal file path or an RDB URL).

    The dashboard opens a plain `postgresql://` with psycopg2, so the URL names our driver.
    """
    return f"optuna-dashboard {shlex.quote(with_psycopg(storage) if is_rdb_url(storage) else storage)}"


def driver_url(storage: str) -> str:
    """The URL SQLAlchemy opens: a plain `postgresql://` (or `postgres://`) gets the psycopg 3 driver.

    SQLAlchemy's own default for the plain scheme is psycopg2, a second driver for the same job; an
    explicit `postgresql+<driver>://` is kept as typed.
    """
    url = with_psycopg(storage)
    if url != storage and importlib.util.find_spec("psycopg") is None:
        raise StorageError(
            f"cannot open Optuna storage '{redact(storage)}': the PostgreSQL driver psycopg is not installed; "
            "pip install 'trainscope[postgresql]'"
        )
    return url


def with_psycopg(storage: str) -> str:
    scheme, rest = storage.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else storage


def engine_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options: test pooled connections before use (a restarted server dropped them)."""
    if url.startswith("postgresql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
    return {}


LOCKING_DIALECTS = ("postgresql", "mysql", "mariadb")  # the databases `lock_database` takes a named lock in


def lock_database(connection: Any, name: str) -> None:
    """Block until `connection` holds the database-wide lock `name` (PostgreSQL, MySQL; others: no-op).

    The lock lives as long as the connection's session: closing the connection releases it, and so
    does the server when a worker holding it is killed.
    """
    import sqlalchemy

    if connection.dialect.name == "postgresql":
        connection.execute(sqlalchemy.text(f"SET LOCAL idle_in_transaction_session_timeout = '{LOCK_HOLDER_TIMEOUT}'"))
        key = zlib.crc32(f"trainscope:{name}".encode())
        connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif connection.dialect.name in ("mysql", "mariadb"):
        connection.execute(sqlalchemy.text("SELECT GET_LOCK(:name, 600)"), {"name": f"trainscope:{name}"})


@contextlib.contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold a database-wide lock while Optuna creates (or checks) its tables.

    Workers started at once against a fresh PostgreSQL database otherwise race in `CREATE TABLE`
    (`UniqueViolation ... pg_type_typname_nsp_index`).
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool, **engine_options(url))
    try:
        with engine.connect() as connection:
            lock_database(connection, "optuna-tables")
            yield
    finally:
        engine.dispose()  # closing the connection releases the lock


def lost_connection(error: BaseException) -> BaseException | None:
    """The driver's error when `error` is a lost or refused database connection (worth waiting out).

    None for anything else, e.g. a bad statement. Optuna wraps driver errors in `StorageInternalError`
    with a misleading message, so the chain of causes is searched and the driver's own error returned.
    """
    import sqlalchemy.exc

    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and (
            seen.connection_invalidated
            or isinstance(seen, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
        ):
            return seen.orig if isinstance(seen.orig, BaseException) else seen
        seen = seen.__cause__ or seen.__context__
    return None


Method = TypeVar("Method", bound=Callable[..., Any])


def _waits_out_lost_connections(method: Method) -> Method:
    @functools.wraps(method)
    def call(self: ReconnectingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        lost_at: float | None = None
        while True:
            try:
                result = method(self, *args, **kwargs)
            except StorageError:
                raise  # a nested storage call already waited out its reconnect_timeout
            except Exception as error:
                cause = lost_connection(error)
                if cause is None:
                    raise
                lost_at = self.connection_lost(cause, lost_at)
                time.sleep(RECONNECT_POLL_SECONDS)
                continue
            if lost_at is not None:
                self.connection_back(lost_at)
            return result

    return call  # type: ignore[return-value]


class ReconnectingRDBStorage(StaleTrialsHook):
    """Optuna's RDB storage, waiting out a lost database connection instead of failing the sweep.

    Every storage call that loses its connection is retried each second until the database answers
    again or `reconnect_timeout` runs out (then: `StorageError`, one line). While the database was
    away no heartbeat could be recorded, so this process does not fail other workers' trials as stale
    until one grace period after the connection came back.

    Known gap: a write whose commit reached the server in the instant the connection dropped is sent
    again. For attributes and states that is harmless; for `create_new_trial` it leaves an extra
    RUNNING trial without owner or heartbeat, which Optuna never marks stale.
    """

    def __init__(self, url: str, display_url: str, settings: DatabaseSettings, *, heartbeat: bool = True) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(
                url,
                engine_kwargs=engine_options(url),
                heartbeat_interval=settings.heartbeat_interval if heartbeat else None,
                grace_period=settings.heartbeat_grace_period if heartbeat else None,
            )
        self.display_url = display_url
        self.reconnect_timeout = settings.reconnect_timeout
        self._last_failure_at: float | None = None  # the latest call that found the database unreachable

    def connection_lost(self, error: BaseException, lost_at: float | None) -> float:
        """Say once per outage that the connection is gone; raise once `reconnect_timeout` has passed."""
        now = time.monotonic()
        self._last_failure_at = now
        if lost_at is None:
            print(
                f"warning: lost the connection to Optuna storage '{self.display_url}' ({first_line(error)}); "
                f"retrying for up to {self.reconnect_timeout:g} s",
                file=sys.stderr,
                flush=True,
            )
            return now
        if now - lost_at > self.reconnect_timeout:
            raise StorageError(
                f"lost the connection to Optuna storage '{self.display_url}' for {now - lost_at:.0f} s: "
                f"{first_line(error)}; check the database server, then rerun the same command to continue the study"
            ) from error
        return lost_at

    def connection_back(self, lost_at: float) -> None:
        seconds = time.monotonic() - lost_at
        print(f"[optuna] storage '{self.display_url}' reachable again after {seconds:.1f} s", flush=True)

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the database-wide lock `name` for the block (waiting out an outage to take it)."""
        connection = self.locked_connection(name)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a connection lost meanwhile took the lock with it
                connection.invalidate()  # closed, not pooled: the server releases the lock

    def locked_connection(self, name: str) -> Any:
        connection = self.engine.connect()
        try:
            lock_database(connection, name)
        except BaseException:
            connection.invalidate()
            raise
        return connection

    def stale_trials_trusted(self) -> bool:
        """Not within one grace period after an outage: heartbeats could not be recorded, their silence is no
        evidence yet."""
        last_failure = self._last_failure_at
        return last_failure is None or time.monotonic() - last_failure >= float(self.grace_period or 0)


def _retried_method_names() -> list[str]:
    """Every storage call that reaches the database: BaseStorage's and the heartbeat's public methods, and
    the private ones Optuna's `_CachedStorage` (which wraps every RDB storage) calls on it directly."""
    names = {name for name in vars(BaseStorage) if not name.startswith("_")} | heartbeat_methods()
    names.update(("locked_connection", *CACHE_CALLS_ON_BACKEND))
    return sorted(name for name in names if callable(getattr(ReconnectingRDBStorage, name, None)))


for _name in _retried_method_names():
    setattr(
        ReconnectingRDBStorage,
        _name,
        _waits_out_lost_connections(getattr(ReconnectingRDBStorage, _name)),
    )


def has_database_lock(storage: BaseStorage) -> bool:
    """Whether `exclusive` takes a real lock on this storage (PostgreSQL or MySQL; SQLite has none)."""
    backend = cache_backend(storage)
    return isinstance(backend, ReconnectingRDBStorage) and backend.engine.dialect.name in LOCKING_DIALECTS


def exclusive(storage: BaseStorage, name: str) -> contextlib.AbstractContextManager[None]:
    """The database-wide lock `name` of a PostgreSQL or MySQL storage; elsewhere no lock at all."""
    backend = cache_backend(storage)  # Optuna wraps RDB storages in a cache
    return backend.exclusive(name) if has_database_lock(storage) else contextlib.nullcontext()  # type: ignore[attr-defined]


def open_storage(
    storage: str, settings: DatabaseSettings | None = None, *, heartbeat: bool = True, wait_for_server: bool = False
) -> BaseStorage:
    """Open (creating if needed) the storage `storage` names; raise StorageError with the fix in one line.

    `heartbeat`: database storages record a heartbeat per running trial, so a dead sweep's trials go stale
    and are retried once; a trial's job passes False (its sweep beats for it). A sweep starting against an
    unreachable database stops at once (`wait_for_server=False`); a trial's job, started by a sweep that
    did reach it, waits out an outage like every later storage call.
    """
    settings = settings or DatabaseSettings()
    waiting_since: float | None = None
    while True:
        try:
            if is_rdb_url(storage):
                url = driver_url(storage)
                with schema_lock(url):
                    return ReconnectingRDBStorage(url, redact(storage), settings, heartbeat=heartbeat)
            path = Path(storage)
            path.parent.mkdir(parents=True, exist_ok=True)
            set_aside_torn_tail(path)  # a crash mid-write would otherwise corrupt the journal for good
            return JournalStorage(JournalFileBackend(str(path)))
        except StorageError:
            raise
        except Exception as error:  # noqa: BLE001 - any driver error becomes one line for the user
            now = time.monotonic()
            waiting_since = waiting_since or now
            if wait_for_server and lost_connection(error) and now - waiting_since < settings.reconnect_timeout:
                time.sleep(RECONNECT_POLL_SECONDS)
                continue
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
