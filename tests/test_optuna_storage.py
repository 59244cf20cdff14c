"""Study bookkeeping against real Optuna storages: abandoned trials, the n_trials budget, storage errors."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from trainscope.sweep.optuna.study import claim_trial, count_trials, fail_abandoned_trials, set_trial_system_attr
from trainscope.trial.attributes import FAIL_REASON_ATTR, OWNER_ATTR
from trainscope.trial.storage import StorageError, open_storage, resolve_storage

SPACE = {"x": FloatDistribution(0.0, 1.0)}


def dead_owner() -> dict[str, object]:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return {"host": socket.gethostname(), "pid": process.pid, "started": None}


def new_study(tmp_path: Path) -> tuple[optuna.Study, str]:
    storage = resolve_storage(None, tmp_path)
    study = optuna.create_study(storage=open_storage(storage), study_name="s", direction="maximize")
    return study, storage


def random_sampler(index: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=index)


def test_default_storage_is_a_journal_file_in_the_sweep_dir(tmp_path: Path) -> None:
    assert resolve_storage(None, tmp_path) == str(tmp_path.resolve() / "optuna_journal.log")
    assert resolve_storage("sqlite:///rel.db", tmp_path) == f"sqlite:///{Path('rel.db').resolve()}"
    assert resolve_storage("postgresql://u:p@host/db", tmp_path) == "postgresql://u:p@host/db"


def test_trial_of_a_dead_sweep_is_failed_once_and_retried_once(tmp_path: Path) -> None:
    study, _ = new_study(tmp_path)
    trial = study.ask(SPACE)
    set_trial_system_attr(study, trial._trial_id, OWNER_ATTR, dead_owner())
    alive = study.ask(SPACE)
    set_trial_system_attr(study, alive._trial_id, OWNER_ATTR, {"host": socket.gethostname(), "pid": 1})

    assert [t.number for t in fail_abandoned_trials(study)] == [0]
    assert fail_abandoned_trials(study) == []
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert trials[0].user_attrs[FAIL_REASON_ATTR].startswith("interrupted: its sweep process")
    assert trials[2].params == trials[0].params  # the same configuration, queued again
    counts = count_trials(trials)
    assert (counts.interrupted, counts.failed, counts.running, counts.waiting) == (1, 0, 1, 1)

    # The retry is killed as well: it is failed but not queued a second time.
    retry = study.ask(SPACE)
    assert retry.number == 2 and retry.params == trials[0].params
    set_trial_system_attr(study, retry._trial_id, OWNER_ATTR, dead_owner())
    assert [t.number for t in fail_abandoned_trials(study)] == [2]
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_claims_stop_at_n_trials_that_count(tmp_path: Path) -> None:
    study, storage = new_study(tmp_path)
    first = claim_trial(study, storage, SPACE, 2, random_sampler)
    assert first is not None
    study.tell(first, 0.5)
    abandoned = study.ask(SPACE)
    set_trial_system_attr(study, abandoned._trial_id, OWNER_ATTR, dead_owner())

    second = claim_trial(study, storage, SPACE, 2, random_sampler)  # fails #1, pops its retry
    assert second is not None and second.number == 2
    assert second.params == study.get_trials()[1].params
    study.tell(second, 0.7)
    assert claim_trial(study, storage, SPACE, 2, random_sampler) is None
    counts = count_trials(study.get_trials())
    assert (counts.complete, counts.interrupted) == (2, 1)


def test_unreachable_storage_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"cannot open Optuna storage 'postgresql://user:\*\*\*@127.0.0.1:9/db'"):
        open_storage("postgresql://user:secret@127.0.0.1:9/db")


def test_locked_sqlite_storage_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    open_storage(f"sqlite:///{path}")
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError, match=r"'sqlite:///.*study.db': .*database is locked; check hydra.sweeper"):
            open_storage(f"sqlite:///{path}")
    finally:
        holder.rollback()
        holder.close()
