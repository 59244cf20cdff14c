"""Every private name of Optuna that trainscope relies on (Optuna offers no public way to do these things).

- `Trial._trial_id`, `FrozenTrial._trial_id`: a trial's storage key (storage calls take it, the trial channel
  carries it);
- `Study._storage`, `Study._study_id`: the storage a study was opened with, and the study's key in it;
- `optuna.storages._heartbeat.is_heartbeat_enabled`: whether a storage records heartbeats;
- `optuna.storages._heartbeat.BaseHeartbeat`: its public methods reach the database (lost connections are waited
  out there);
- `RDBStorage._get_stale_trial_ids`: the RUNNING trials whose heartbeat is older than the grace period;
- `_CachedStorage._backend`: the RDB storage under Optuna's cache (for its database-wide locks), and
  `CACHE_CALLS_ON_BACKEND`, the private RDB methods the cache calls directly (they reach the database too);
- `optuna.storages.journal._file.get_lock_file`: the lock Optuna appends to a journal file under.

`check()` and tests/adapters/test_optuna_private.py say which of them an Optuna upgrade moved.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileSymlinkLock
from optuna.trial import FrozenTrial, Trial

from trainscope.adapters.private_names import PrivateNames

OPTUNA = PrivateNames("optuna", __name__)

_is_heartbeat_enabled = OPTUNA.imported("optuna.storages._heartbeat", "is_heartbeat_enabled")
_BaseHeartbeat = OPTUNA.imported("optuna.storages._heartbeat", "BaseHeartbeat")
_CachedStorage = OPTUNA.imported("optuna.storages._cached_storage", "_CachedStorage")
_get_lock_file = OPTUNA.imported("optuna.storages.journal._file", "get_lock_file")

STALE_TRIAL_IDS = "_get_stale_trial_ids"
CACHE_CALLS_ON_BACKEND = ("_create_new_trial", "_get_best_trial_id", STALE_TRIAL_IDS, "_get_trials", "_set_trial_param")
"""The private `RDBStorage` methods Optuna's `_CachedStorage` (which wraps every RDB storage) calls directly."""


def trial_id(trial: Trial | FrozenTrial) -> int:
    """The trial's key in its storage (`number` is its index in the study)."""
    return int(OPTUNA.attribute(trial, "_trial_id"))


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage `study` was opened with (for an RDB storage: Optuna's cache around it)."""
    return OPTUNA.attribute(study, "_storage")


def study_id(study: optuna.Study) -> int:
    return int(OPTUNA.attribute(study, "_study_id"))


def is_heartbeat_enabled(storage: BaseStorage) -> bool:
    return bool(_is_heartbeat_enabled(storage))


def heartbeat_methods() -> set[str]:
    """The public methods of Optuna's heartbeat interface (an RDB storage's `record_heartbeat`, ...)."""
    return {name for name in vars(_BaseHeartbeat) if not name.startswith("_")}


def stale_trial_ids(storage: BaseStorage, study: int) -> list[int]:
    """The RUNNING trials of study `study` whose last heartbeat is older than the grace period."""
    return list(OPTUNA.attribute(storage, STALE_TRIAL_IDS)(study))


def cache_backend(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's cache (RDB storages come wrapped in one); any other storage itself."""
    return OPTUNA.attribute(storage, "_backend") if isinstance(storage, _CachedStorage) else storage


@contextlib.contextmanager
def journal_lock(journal: Path) -> Iterator[None]:
    """Hold the lock Optuna's `JournalFileBackend` appends to `journal` under."""
    with _get_lock_file(JournalFileSymlinkLock(str(journal))):
        yield


class StaleTrialsHook(RDBStorage):
    """An RDB storage that may hold back its answer to Optuna's stale-trial query (`_get_stale_trial_ids`, which
    `_CachedStorage` forwards): while `stale_trials_trusted()` is False, no trial is stale."""

    def stale_trials_trusted(self) -> bool:
        return True

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale if self.stale_trials_trusted() else []


def check() -> None:
    """Raise PrivateNameMoved for the first private name above that this Optuna no longer has where expected."""
    for name in CACHE_CALLS_ON_BACKEND:
        OPTUNA.attribute(RDBStorage, name)
    called = set(re.findall(r"self\._backend\.(_[a-z]\w*)\(", inspect.getsource(_CachedStorage)))
    if not called:
        raise OPTUNA.moved("optuna.storages._cached_storage._CachedStorage._backend", "is no longer used in")
    for name in sorted(called - set(CACHE_CALLS_ON_BACKEND)):  # a lost connection there would not be waited out
        raise OPTUNA.moved(f"RDBStorage.{name}", "is called by _CachedStorage but not in CACHE_CALLS_ON_BACKEND, in")
