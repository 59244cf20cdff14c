"""Study bookkeeping against real Optuna storages: abandoned trials, the n_trials budget, and the storage faults a
sweep meets (unreachable, locked, a torn journal tail), each a clear line or waited out."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tests.helpers.cli import TrainCLI, error_line
from tests.helpers.sweep import error_lines, load_study, run, start, sweep_args, wait_for
from trainscope.adapters.optuna_private import study_storage
from trainscope.sweep.optuna.study import (
    claim_trial,
    count_trials,
    fail_abandoned_trials,
    owner_is_gone,
    process_identity,
    set_trial_system_attr,
)
from trainscope.trial.attributes import FAIL_REASON_ATTR, OWNER_ATTR
from trainscope.trial.storage import StorageError, has_database_lock, open_storage, resolve_storage

SPACE = {"x": FloatDistribution(0.0, 1.0)}


def dead_owner() -> dict[str, object]:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return {"host": socket.gethostname(), "pid": process.pid, "started": None}


def test_an_owner_says_when_it_started_and_a_reused_pid_is_not_it() -> None:
    """`started` (worker.json, a trial's owner) is a time a person reads; the pid's kernel start time tells a
    reused pid from the owner, also in a study written when `started` held those ticks."""
    me = process_identity()
    started = datetime.fromisoformat(me["started"])
    assert started.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - started) < timedelta(minutes=1)
    assert not owner_is_gone(me)
    assert owner_is_gone({**me, "start_ticks": me["start_ticks"] + 1})  # the same pid, another process
    legacy = {"host": me["host"], "pid": me["pid"], "started": me["start_ticks"]}
    assert not owner_is_gone(legacy) and owner_is_gone({**legacy, "started": me["start_ticks"] + 1})
    assert owner_is_gone(dead_owner())


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


def test_a_claim_whose_trial_another_process_finished_asks_again(tmp_path: Path) -> None:
    """SQLite has no claim lock: a second process may end the trial between our ask and our owner's record
    (seen in CI with two workers). The claim is lost, not fatal: the worker asks the next trial."""
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"), direction="maximize")
    storage_spec = f"sqlite:///{tmp_path / 's.db'}"
    real_ask = study.ask
    stolen: list[int] = []

    def ask_then_lose_it(distributions: dict) -> optuna.trial.Trial:
        trial = real_ask(distributions)
        if not stolen:  # the other process runs and ends this one first
            stolen.append(trial.number)
            other = optuna.load_study(study_name=study.study_name, storage=storage_spec)
            other._storage.set_trial_state_values(trial._trial_id, TrialState.PRUNED)
        return trial

    study.ask = ask_then_lose_it  # type: ignore[method-assign]
    claimed = claim_trial(study, storage_spec, SPACE, 3, random_sampler)
    assert claimed is not None and stolen == [0] and claimed.number == 1
    assert study.get_trials()[1].system_attrs[OWNER_ATTR]["pid"] == os.getpid()


def test_a_claim_half_done_elsewhere_on_sqlite_is_left_alone(tmp_path: Path) -> None:
    """SQLite has no claim lock, so a RUNNING trial without owner may be another worker between its ask and
    its owner's record (seen in CI: a worker failed it as a lost record and the study had 7 trials of 5)."""
    storage_spec = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=open_storage(storage_spec), study_name="s", direction="maximize")
    assert not has_database_lock(study_storage(study))  # SQLite's "lock" would be no lock at all
    other = optuna.load_study(study_name="s", storage=storage_spec)
    half_claimed = other.ask(SPACE)  # the other worker has not recorded its owner yet

    claimed = claim_trial(study, storage_spec, SPACE, 3, random_sampler)
    assert claimed is not None and claimed.number == 1
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.RUNNING, TrialState.RUNNING] and half_claimed.number == 0


def test_unreachable_storage_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"cannot open Optuna storage 'postgresql://user:\*\*\*@127.0.0.1:9/db'"):
        open_storage("postgresql://user:secret@127.0.0.1:9/db")


@pytest.mark.slow  # over ~5 s: SQLite's 5 s busy timeout runs out first
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


# ---------------------------------------------------------------- storage faults met by `python train.py -m`


@pytest.mark.slow
def test_optuna_storage_unreachable(train: TrainCLI, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/missing/dir/study.db"
    result = train("-m", "hparams_search=synthetic", f"hydra.sweeper.storage={storage}")
    assert result.returncode == 2
    line = error_line(result)
    assert "cannot open Optuna storage" in line and "hydra.sweeper.storage" in line


@pytest.mark.slow
def test_optuna_storage_locked(train: TrainCLI, tmp_path: Path) -> None:
    database = tmp_path / "study.db"
    holder = sqlite3.connect(database)
    holder.execute("CREATE TABLE lock_holder (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the database, as a stuck writer would
    try:
        result = train("-m", "hparams_search=synthetic", f"hydra.sweeper.storage=sqlite:///{database}", timeout=120)
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 2
    line = error_line(result)
    assert "cannot open Optuna storage" in line and "locked" in line


@pytest.mark.slow
def test_locked_storage_is_one_clear_line(train: Any, tmp_path: Path) -> None:
    database = tmp_path / "study.db"
    sqlite3.connect(database).execute("CREATE TABLE holder (x)").connection.commit()
    holder = sqlite3.connect(database)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = train(*sweep_args(tmp_path / "sweep", f"hydra.sweeper.storage=sqlite:///{database}"))
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"error: cannot open Optuna storage 'sqlite:///{database}'")
    )
    assert "database is locked" in result.stderr and "Traceback" not in result.stderr
    assert os.path.exists(database)


@pytest.mark.slow
def test_a_torn_journal_tail_is_set_aside_and_the_study_continues(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    journal = sweep_dir / "optuna_journal.log"
    args = ["-m", "hparams_search=synthetic", "hydra/sweeper/pruner=none", "trainer.max_epochs=1"]
    args += [f"hydra.sweep.dir={sweep_dir}"]
    first = run([*args, "hydra.sweeper.n_trials=1"], tmp_path / "outputs", data_dir)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    (before,) = load_study(str(journal)).trials
    complete = journal.read_bytes()
    last_record = complete.splitlines(keepends=True)[-1]
    torn = complete + last_record[: len(last_record) // 2]  # a crash in the middle of the next append
    journal.write_bytes(torn)

    rerun = run([*args, "hydra.sweeper.n_trials=2"], tmp_path / "outputs", data_dir)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    warnings = [line for line in rerun.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "ended in a torn record" in warnings[0], rerun.stderr[-3000:]
    backup = journal.with_name("optuna_journal.log.torn-1")
    assert backup.read_bytes() == torn and str(backup) in warnings[0]
    assert "Traceback" not in rerun.stderr and "error:" not in rerun.stderr
    trials = load_study(str(journal)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert (trials[0].params, trials[0].values) == (before.params, before.values)  # every complete record kept
    lines = journal.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") and json.loads(line) for line in lines)


@pytest.mark.slow
def test_a_locked_sqlite_study_is_waited_out_and_past_the_limit_rerun_recovers(tmp_path: Path, data_dir: Path) -> None:
    database = tmp_path / "study.db"
    storage = f"sqlite:///{database}"
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        "hparams_search=synthetic",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.n_trials=1",
        "trainer.max_epochs=4",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweep.dir={sweep_dir}",
    ]

    def lock_during_a_trial(extra: list[str], seconds: float | None) -> subprocess.Popen[str]:
        """Start the sweep, lock the database once a trial trains, for `seconds` or until the sweep ends."""
        existing = set(sweep_dir.glob("*/events.out.tfevents.*"))
        process = start([*args, *extra], tmp_path / "outputs", data_dir)
        wait_for(lambda: set(sweep_dir.glob("*/events.out.tfevents.*")) - existing, process, "a training trial")
        holder = sqlite3.connect(database, timeout=60)
        holder.execute("BEGIN IMMEDIATE")  # write-locked: every other writer waits, readers go on
        try:
            deadline = time.monotonic() + (seconds if seconds is not None else 120)
            while time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.2)
        finally:
            holder.rollback()
            holder.close()
        return process

    # Past reconnect_timeout: one error line, exit 2; the trial stays RUNNING for the rerun to recover.
    gave_up = lock_during_a_trial(["hydra.sweeper.reconnect_timeout=3"], seconds=None)
    stdout, stderr = gave_up.communicate(timeout=120)
    assert gave_up.returncode == 2, stdout[-2000:] + stderr[-2000:]
    (error,) = error_lines(stderr)
    assert error.startswith(f"error: lost the connection to Optuna storage '{storage}'") and "locked" in error
    assert "Traceback" not in stderr and "StorageInternalError" not in stderr

    # The same command again, the database locked for 12 s mid-trial (SQLite itself gives up after 5 s).
    survived = lock_during_a_trial([], seconds=12)
    stdout, stderr = survived.communicate(timeout=240)
    assert survived.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "warning: lost the connection to Optuna storage" in stderr and "reachable again after" in stdout
    assert "Traceback" not in stderr and "StorageInternalError" not in stderr
    assert "was left RUNNING by a killed sweep: marked FAIL, retried once" in stdout
    counts = count_trials(load_study(storage).trials)
    assert (counts.finished, counts.running, counts.interrupted) == (1, 0, 1)
