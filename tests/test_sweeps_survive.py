"""Sweeps survive preemption, reruns, torn journals, locked databases and each other (issue 12).

Real `python train.py -m ...` processes, real signals sent by pid, real journal files and SQLite databases,
TensorBoard event files read with TensorBoard's own reader. Each test checks the end state a user sees: trial
counts by state in the storage, run directories and their event files, exit codes and the one-line messages.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from tests.helpers.cli import REPO_ROOT, cli_env
from tests.helpers.events import read_events
from trainscope.sweep.optuna.study import count_trials
from trainscope.trial.attributes import FAIL_REASON_ATTR, RUN_DIR_ATTR
from trainscope.trial.storage import open_storage

SMALL = [
    "data=synthetic",
    "data.num_samples=256",
    "model=mlp",
    "logging=minimal",
    "logging.progress_bar=false",
    "callbacks=[checkpoint]",
]
# SGD on the synthetic data: 0.3 and 0.2 learn in one epoch, 1e-6..3e-6 stay at chance level. The grid
# sampler with seed 4 runs 0.3, then 2e-6 (pruned after one epoch by the median of 0.3), then 0.2.
OPTUNA_GRID = [
    "hparams_search=synthetic",
    "optimizer=sgd",
    "data.batch_size=32",
    "model.hidden_sizes=[16]",
    "optimizer.lr=choice(0.3,0.2,1e-6,2e-6,3e-6)",
    "hydra/sweeper/sampler=grid",
    "hydra.sweeper.seed=4",
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "logging=minimal",
    "callbacks=[checkpoint]",
]


def start(args: list[str], output_root: Path, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO_ROOT,
        env=cli_env(output_root, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(args: list[str], output_root: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    process = start(args, output_root, data_dir)
    stdout, stderr = process.communicate(timeout=240)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_for(condition: Callable[[], object], process: subprocess.Popen[str], what: str) -> None:
    """Poll often: the signal must land soon after the condition, well before the run ends."""
    deadline = time.monotonic() + 180
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            stdout, stderr = process.communicate()
            raise AssertionError(f"{what} never happened:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        time.sleep(0.02)


def one_dir(sweep_dir: Path, pattern: str) -> Path:
    (found,) = sweep_dir.glob(pattern)
    return found


def event_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("events.out.tfevents.*"), key=lambda path: path.stat().st_mtime)


def scalar_steps(event_file: Path, tag: str) -> list[int]:
    """The steps at which one event file holds `tag`, read with TensorBoard's own loader."""
    return [
        event.step
        for event in EventFileLoader(str(event_file)).Load()
        for value in event.summary.value
        if value.tag == tag
    ]


def metrics(run_dir: Path) -> dict[str, object]:
    return json.loads((run_dir / "metrics.json").read_text())


def snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file of a run directory with its size and modification time: proof it was not written again."""
    return {str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run_dir.rglob("*")}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def load_study(storage: str, name: str = "synthetic") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


# ------------------------------------------------------------------------------------------------ grid


def test_sigterm_stops_a_grid_with_143_and_the_same_command_continues_it(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir = tmp_path / "grid"
    args = ["-m", *SMALL, "optimizer.lr=0.01,1e30,0.02", "trainer.max_epochs=6", f"hydra.sweep.dir={sweep_dir}"]
    first = start(args, tmp_path / "outputs", data_dir)
    wait_for(lambda: list(sweep_dir.glob("2_*/checkpoints/last.pt")), first, "job 2's first checkpoint")
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stdout[-2000:] + stderr[-2000:]
    assert "multirun: interrupted after 2 finished runs" in stderr  # job 0 completed, job 1 failed (NaN)
    assert "Traceback" not in stderr
    completed, failed, interrupted = (one_dir(sweep_dir, f"{job}_*") for job in range(3))
    assert [metrics(d)["status"] for d in (completed, failed, interrupted)] == ["completed", "failed", "interrupted"]
    assert (interrupted / "checkpoints" / "last.pt").is_file()
    kept = {d: snapshot(d) for d in (completed, failed)}

    rerun = run(args, tmp_path / "outputs", data_dir)  # the same command
    assert rerun.returncode == 1, rerun.stdout[-3000:] + rerun.stderr[-3000:]  # job 1 fails again
    retry = failed.with_name(failed.name + "_2")
    last = rerun.stdout.strip().splitlines()[-1]
    assert last.startswith("multirun: 2 succeeded, 1 failed (") and retry.name in last
    assert last.endswith("; 1 kept from before, 1 resumed")
    for run_dir, files in kept.items():  # a finished run directory is never written again
        assert snapshot(run_dir) == files
    assert len(event_files(completed)) == 1
    assert metrics(retry)["status"] == "failed"  # the failed job ran again, from scratch, next to the first try
    assert metrics(interrupted)["status"] == "completed" and metrics(interrupted)["epochs_run"] == 6
    before, after = event_files(interrupted)  # resumed: the second segment starts after the checkpoint
    epochs = read_events(interrupted).Scalars("train/loss")
    assert len(epochs) == 6 and len({e.step for e in epochs}) == 6
    assert min(scalar_steps(after, "train/loss")) > max(scalar_steps(before, "train/loss"))

    keep_failed = run([*args, "hydra.sweeper.rerun_failed=false"], tmp_path / "outputs", data_dir)
    assert keep_failed.returncode == 1
    assert keep_failed.stdout.strip().splitlines()[-1].endswith("; 3 kept from before, 0 resumed")
    assert not failed.with_name(failed.name + "_3").exists()


# ---------------------------------------------------------------------------------------------- optuna


def test_preempted_optuna_sweep_resumes_its_trial_from_the_checkpoint_and_trial_runs_resume_alone(
    tmp_path: Path, data_dir: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    storage = str(sweep_dir / "optuna_journal.log")
    args = ["-m", *OPTUNA_GRID, "hydra.sweeper.n_trials=3", "trainer.max_epochs=5", f"hydra.sweep.dir={sweep_dir}"]
    first = start(args, tmp_path / "outputs", data_dir)
    wait_for(lambda: list(sweep_dir.glob("2_*/checkpoints/last.pt")), first, "trial 2's first checkpoint")
    first.send_signal(signal.SIGTERM)  # a scheduler preempting the job
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stdout[-2000:] + stderr[-2000:]
    assert "interrupted: rerun the same command to continue the study" in stderr and "Traceback" not in stderr
    trials = load_study(storage).trials
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING]  # the retry, queued
    assert [t.state for t in trials] == states
    assert trials[2].user_attrs[FAIL_REASON_ATTR].startswith("interrupted")
    completed, pruned, interrupted = (Path(t.user_attrs[RUN_DIR_ATTR]) for t in trials[:3])
    assert metrics(interrupted)["status"] == "interrupted" and (interrupted / "checkpoints" / "last.pt").is_file()
    interrupted_copy = tmp_path / "interrupted_copy"  # for resume= below: the sweep's rerun finishes the original
    shutil.copytree(interrupted, interrupted_copy)
    checkpointed_step = max(scalar_steps(event_files(interrupted)[0], "train/loss"))  # its last epoch

    rerun = run(args, tmp_path / "outputs", data_dir)  # the same command, later
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"trial 3 continues the interrupted run {interrupted} from its checkpoint" in rerun.stdout
    trials = load_study(storage).trials
    counts = count_trials(trials)
    assert (counts.complete, counts.pruned, counts.failed, counts.interrupted, counts.running) == (2, 1, 0, 1, 0)
    assert counts.finished == 3  # exactly n_trials
    assert Path(trials[3].user_attrs[RUN_DIR_ATTR]) == interrupted and trials[3].params == trials[2].params
    assert not list(sweep_dir.glob("3_*"))  # continued in place, not started again elsewhere
    assert metrics(interrupted)["status"] == "completed" and metrics(interrupted)["epochs_run"] == 5
    _, second_segment = event_files(interrupted)
    assert min(scalar_steps(second_segment, "train/loss")) > checkpointed_step  # not from the first epoch
    assert "optuna: 3 trials: 2 complete, 1 pruned, 0 failed (1 interrupted and retried)" in rerun.stdout

    # resume= a trial's run directory: it continues like any run, outside the study, and says so.
    reports_before = {t.number: dict(t.intermediate_values) for t in trials}
    cases = {completed: ["trainer.max_epochs=6"], pruned: [], interrupted_copy: []}
    processes = {
        run_dir: start([f"resume={run_dir}", *extra], tmp_path / "unused", data_dir) for run_dir, extra in cases.items()
    }
    for process in processes.values():
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
        assert "outside the study: this run reports nothing to it" in stderr
        assert "Traceback" not in stderr
    assert metrics(completed)["epochs_run"] == 6
    assert metrics(pruned)["epochs_run"] == 5 and metrics(pruned)["status"] == "completed"
    assert metrics(interrupted_copy)["epochs_run"] == 5 and metrics(interrupted_copy)["status"] == "completed"
    after = load_study(storage).trials
    assert len(after) == 4 and {t.number: dict(t.intermediate_values) for t in after} == reports_before


def test_other_sweeps_in_a_study_s_directory_are_refused_and_a_cooperating_one_counts_the_study(
    tmp_path: Path, data_dir: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        "hparams_search=synthetic",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    first = start([*args, "trainer.max_epochs=80"], tmp_path / "outputs", data_dir)  # trial 0 trains a while
    wait_for(lambda: list(sweep_dir.glob("0_*")), first, "trial 0's run directory")
    other_study = start([*args, "hydra.sweeper.study_name=other"], tmp_path / "outputs", data_dir)
    other_space = start([*args, "optimizer.lr=interval(0.0001,0.1)"], tmp_path / "outputs", data_dir)
    helper = start([*args, "trainer.max_epochs=1"], tmp_path / "outputs", data_dir)  # same study: trial 1
    refused = {"study": other_study.communicate(timeout=240), "space": other_space.communicate(timeout=240)}
    helper_out, helper_err = helper.communicate(timeout=240)
    first_still_running = first.poll() is None
    stdout, stderr = first.communicate(timeout=240)
    assert first.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert helper.returncode == 0, helper_out[-2000:] + helper_err[-2000:]

    assert other_study.returncode == 2 and other_space.returncode == 2
    for _, err in refused.values():
        assert len(error_lines(err)) == 1 and "Traceback" not in err
    (study_error,) = error_lines(refused["study"][1])
    assert study_error.startswith(f"error: hydra.sweep.dir={sweep_dir} holds the runs of Optuna study 'synthetic'")
    assert "choose another hydra.sweep.dir for study 'other'" in study_error
    (space_error,) = error_lines(refused["space"][1])
    expected = "samples optimizer.lr from float in [0.0001, 0.1], log, this sweep from float in [0.0001, 0.1];"
    assert expected in space_error

    # The helper ran trial 1 and ended while trial 0 still trained in the first process: its line says so.
    assert first_still_running
    assert "optuna: 1 trials: 1 complete, 0 pruned, 0 failed, 1 still running in another process" in helper_out
    assert "optuna: 2 trials: 2 complete, 0 pruned, 0 failed;" in stdout

    storage = str(sweep_dir / "optuna_journal.log")
    assert optuna.study.get_all_study_names(open_storage(storage)) == ["synthetic"]
    trials = load_study(storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]  # reached n_trials, none RUNNING
    run_dirs = [path for path in sweep_dir.iterdir() if (path / ".hydra").is_dir()]  # not report/ (issue 26)
    assert len(run_dirs) == 2 and all(len(event_files(path)) == 1 for path in run_dirs)  # never two writers
    outputs = [stdout, stderr, helper_out, helper_err, *(text for pair in refused.values() for text in pair)]
    assert not any("free disk space" in text for text in outputs)


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
