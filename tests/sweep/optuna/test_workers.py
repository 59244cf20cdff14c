"""`hydra.sweeper.n_jobs=2` with the default launcher: worker processes pulling trials, under signals and kills.

Real sweeps (`python train.py -m hparams_search=synthetic`) in the background, signalled or killed the way
a user, a scheduler or the kernel does it; the study, the run directories and the exit codes are checked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState

from tests.helpers.cli import REPO_ROOT, cli_env, run_script
from tests.helpers.sweep import SEARCH, last_line, load_study, sweep_args
from trainscope.sweep.optuna.study import count_trials
from trainscope.trial.attributes import FAIL_REASON_ATTR, OWNER_ATTR, RUN_DIR_ATTR

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s


def sweep_command(sweep_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "-m",
        *SEARCH,
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/pruner=none",
        *args,
    ]


def start(command: list[str], tmp_path: Path, data_dir: Path, log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as handle:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=cli_env(tmp_path / "outputs", data_dir), stdout=handle, stderr=subprocess.STDOUT
        )


def rerun(command: list[str], tmp_path: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`command` (a `sweep_command`: python train.py ...) run to its end."""
    python, script, *args = command
    assert python == sys.executable, command
    return run_script(script, args, tmp_path / "outputs", data_dir, timeout=240)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def worker_pid(sweep_dir: Path, index: int) -> int:
    return int(json.loads((sweep_dir / f"optuna_worker_{index}" / "worker.json").read_text())["pid"])


def training_trials(sweep_dir: Path) -> list[FrozenTrial]:
    """The RUNNING trials whose run has written its first checkpoint (a worker may still be starting up)."""
    if not (sweep_dir / "optuna_journal.log").is_file():
        return []
    try:
        trials = load_study(sweep_dir).trials
    except KeyError:  # the sweep has not created its study yet
        return []
    running = [t for t in trials if t.state == TrialState.RUNNING and RUN_DIR_ATTR in t.user_attrs]
    return [t for t in running if (Path(t.user_attrs[RUN_DIR_ATTR]) / "checkpoints" / "last.pt").is_file()]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_stops_every_worker_saves_their_trials_and_the_rerun_finishes(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    # 2048 samples: an epoch lasts long enough that neither trial ends between the check below and the signal
    command = sweep_command(sweep_dir, "hydra.sweeper.n_trials=3", "trainer.max_epochs=12", "data.num_samples=2048")
    process = start(command, tmp_path, data_dir, log)
    wait_until(lambda: len(training_trials(sweep_dir)) == 2, process, log)  # a trial of each worker is training
    workers = [worker_pid(sweep_dir, index) for index in (0, 1)]
    process.send_signal(signal.SIGTERM)  # to the sweep only, as `kill <pid>` does
    assert process.wait(timeout=60) == 143, log.read_text()[-3000:]
    assert not any(is_alive(pid) for pid in workers)

    trials = load_study(sweep_dir).trials
    counts = count_trials(trials)
    assert (counts.interrupted, counts.running) == (2, 0), [t.state for t in trials]
    for trial in trials:
        if trial.state != TrialState.FAIL:
            continue
        assert trial.user_attrs[FAIL_REASON_ATTR].startswith("interrupted")
        run_dir = Path(trial.user_attrs[RUN_DIR_ATTR])
        metrics = yaml.safe_load((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "interrupted" and metrics["epochs_run"] < 12  # stopped, not finished
        assert metrics["optuna"]["state"] == "FAIL"
        assert (run_dir / "checkpoints" / "last.pt").is_file()

    interrupted = {t.number: Path(t.user_attrs[RUN_DIR_ATTR]) for t in trials if t.state == TrialState.FAIL}

    resumed = rerun(command, tmp_path, data_dir)  # the same command again
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = load_study(sweep_dir).trials
    counts = count_trials(trials)
    assert (counts.complete, counts.interrupted, counts.running, counts.waiting) == (3, 2, 0, 0)
    for number, run_dir in interrupted.items():  # each retry continued its run from the checkpoint
        retry = next(t for t in trials if t.system_attrs.get("failed_trial") == number)
        assert retry.state == TrialState.COMPLETE and retry.user_attrs[RUN_DIR_ATTR] == str(run_dir)
        assert f"resuming {run_dir} from last.pt" in (run_dir / "train.log").read_text()
        metrics = yaml.safe_load((run_dir / "metrics.json").read_text())
        assert (metrics["status"], metrics["epochs_run"]) == ("completed", 12)
        assert metrics["optuna"] == {"trial": retry.number, "state": "COMPLETE", "reason": ""}
    assert "optuna: 3 trials: 3 complete, 0 pruned, 0 failed (2 interrupted and retried)" in last_line(resumed)


def test_sigterm_while_workers_set_up_leaves_a_consistent_study(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    command = sweep_command(sweep_dir, "hydra.sweeper.n_trials=2", "trainer.max_epochs=1")
    process = start(command, tmp_path, data_dir, log)
    wait_until(lambda: "worker processes started" in log.read_text(), process, log)
    process.send_signal(signal.SIGTERM)  # the workers are importing, claiming or building their first trial
    assert process.wait(timeout=60) == 143, log.read_text()[-3000:]
    assert count_trials(load_study(sweep_dir).trials).running == 0

    resumed = rerun(command, tmp_path, data_dir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    counts = count_trials(load_study(sweep_dir).trials)
    assert (counts.complete, counts.running, counts.waiting) == (2, 0, 0)


def test_a_killed_worker_is_reported_at_once_and_replaced(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    command = sweep_command(sweep_dir, "hydra.sweeper.n_trials=3", "trainer.max_epochs=6")
    process = start(command, tmp_path, data_dir, log)
    wait_until(lambda: len(list(sweep_dir.glob("*/checkpoints/last.pt"))) >= 1, process, log)
    victim = worker_pid(sweep_dir, 0)
    running = [t for t in load_study(sweep_dir).trials if t.state == TrialState.RUNNING]
    killed = next(t for t in running if t.system_attrs[OWNER_ATTR]["pid"] == victim)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "worker 2 started in place of worker 0" in log.read_text(), process, log, timeout=30)
    assert "[optuna] worker 0 was killed by SIGKILL" in log.read_text()  # said while the sweep still runs
    assert f"trial {killed.number} of worker 0 marked FAIL (interrupted) and retried once" in log.read_text()

    assert process.wait(timeout=240) == 0, log.read_text()[-3000:]
    trials = load_study(sweep_dir).trials
    counts = count_trials(trials)
    assert (counts.complete, counts.interrupted, counts.running) == (3, 1, 0)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert "optuna: 3 trials: 3 complete, 0 pruned, 0 failed (1 interrupted and retried)" in log.read_text()


def test_no_more_workers_than_trials_and_n_jobs_below_one_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    command = sweep_command(sweep_dir, "hydra.sweeper.n_trials=2", "trainer.max_epochs=1", "hydra.sweeper.n_jobs=5")
    result = rerun(command, tmp_path, data_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[optuna] 2 worker processes started" in result.stdout  # 5 asked, 2 trials to run
    assert sorted(path.name for path in sweep_dir.glob("optuna_worker_*")) == ["optuna_worker_0", "optuna_worker_1"]
    assert count_trials(load_study(sweep_dir).trials).complete == 2

    for below_one in ("-1", "0"):  # joblib's "every core", and "no worker" (which ran one trial at a time)
        refused = rerun(sweep_command(tmp_path / "other", f"hydra.sweeper.n_jobs={below_one}"), tmp_path, data_dir)
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            f"error: hydra.sweeper.n_jobs (trials at once) must be a positive integer, got {below_one}"
        )
        assert not (tmp_path / "other").exists(), "refused before the sweep directory is made"


def test_n_jobs_runs_trials_in_worker_processes(train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = train(*sweep_args(sweep_dir, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = load_study(sweep_dir).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({t.system_attrs[OWNER_ATTR]["pid"] for t in trials}) == 2
    assert (sweep_dir / "optuna_worker_1" / "worker.log").is_file()
    assert "optuna: 4 trials: 4 complete" in last_line(result)
