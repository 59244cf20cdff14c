"""The private Optuna names trainscope relies on are where `trainscope.adapters.optuna_private` reaches for them.

Run against the installed Optuna with real storages: after an upgrade that moved one, a test here fails with one
`PrivateNameMoved` message naming the private name and the installed version.
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from trainscope.adapters import optuna_private
from trainscope.adapters.private_names import PrivateNameMoved


def stale_soon(storage: optuna.storages.BaseStorage, study_id: int) -> list[int]:
    """The stale trials once there are any (SQLite's clock has whole seconds), or none within 5 s."""
    deadline = time.monotonic() + 5
    while not (stale := optuna_private.stale_trial_ids(storage, study_id)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return stale


def rdb_study(tmp_path: Path, storage_class: type[RDBStorage] = RDBStorage) -> tuple[optuna.Study, RDBStorage]:
    storage = storage_class(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=storage, study_name="s"), storage


def test_every_private_name_is_where_the_adapter_reaches_for_it(tmp_path: Path) -> None:
    optuna_private.check()  # the names reached for on classes and modules

    study, storage = rdb_study(tmp_path)
    trial = study.ask()
    (frozen,) = study.get_trials()
    cached = optuna_private.study_storage(study)
    assert optuna_private.trial_id(trial) == optuna_private.trial_id(frozen)
    assert cached.get_trial(optuna_private.trial_id(trial)).number == trial.number
    assert optuna_private.cache_backend(cached) is storage  # RDB storages come wrapped in Optuna's cache
    assert optuna_private.is_heartbeat_enabled(cached)
    assert {"record_heartbeat", "get_heartbeat_interval"} <= optuna_private.heartbeat_methods()

    study_id = optuna_private.study_id(study)
    cached.record_heartbeat(optuna_private.trial_id(trial))
    assert optuna_private.stale_trial_ids(cached, study_id) == []
    assert stale_soon(cached, study_id) == [optuna_private.trial_id(trial)]  # silent past the grace period

    journal = tmp_path / "journal.log"
    journal_storage = JournalStorage(JournalFileBackend(str(journal)))
    assert not optuna_private.is_heartbeat_enabled(journal_storage)
    assert optuna_private.cache_backend(journal_storage) is journal_storage
    with optuna_private.journal_lock(journal):
        assert Path(f"{journal}.lock").is_symlink()  # the lock Optuna's own appends wait for
    assert not Path(f"{journal}.lock").exists()


def test_the_stale_trials_hook_is_what_optunas_cache_asks(tmp_path: Path) -> None:
    class Distrusting(optuna_private.StaleTrialsHook):
        trusted = False

        def stale_trials_trusted(self) -> bool:
            return self.trusted

    study, storage = rdb_study(tmp_path, Distrusting)
    trial = study.ask()
    cached = optuna_private.study_storage(study)
    cached.record_heartbeat(optuna_private.trial_id(trial))
    time.sleep(2.5)  # past the grace period, in SQLite's whole seconds
    assert optuna_private.stale_trial_ids(cached, optuna_private.study_id(study)) == []
    storage.trusted = True
    assert stale_soon(cached, optuna_private.study_id(study)) == [optuna_private.trial_id(trial)]


def test_a_moved_private_name_is_one_error_naming_it_and_the_installed_version() -> None:
    with pytest.raises(PrivateNameMoved) as raised:
        optuna_private.trial_id(object())  # type: ignore[arg-type]  # stands for a Trial without `_trial_id`
    message = str(raised.value)
    assert message.startswith(f"builtins.object._trial_id is gone from optuna {optuna.__version__}: ")
    assert "trainscope.adapters.optuna_private" in message
