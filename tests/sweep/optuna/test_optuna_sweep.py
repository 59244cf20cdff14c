"""`python train.py -m hparams_search=synthetic`: real Optuna sweeps on tiny synthetic data.

Each test runs what a user runs and checks what a user looks at: the study in its storage, the run
directories, `metrics.json`, `optimization_results.yaml`, the terminal's last line and the exit code.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from tensorboard.plugins.hparams import metadata

from tests.helpers.cli import REPO_ROOT, cli_env, run_script
from tests.helpers.events import read_events
from tests.helpers.sweep import (
    error_lines,
    event_files,
    last_line,
    load_study,
    metrics,
    run,
    run_dirs,
    scalar_steps,
    start,
    sweep_args,
    wait_for,
)
from trainscope.core.run_dir import SPACE_RESERVE, TMP_SUFFIX
from trainscope.sweep.optuna.study import count_trials
from trainscope.trial.attributes import FAIL_REASON_ATTR, OWNER_ATTR, RUN_DIR_ATTR
from trainscope.trial.storage import open_storage

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s

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

# SGD on the synthetic data: 0.3 and 0.2 learn in one epoch, 1e-6..3e-6 stay at chance level,
# 1e30 turns the loss into NaN and -1.0 is rejected by the config checks.
LEARNS = ["optimizer=sgd", "data.batch_size=32", "model.hidden_sizes=[16]"]


def start_sweep(tmp_path: Path, data_dir: Path, args: list[str], log_name: str) -> subprocess.Popen[str]:
    log = open(tmp_path / log_name, "w")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "outputs", data_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_results_file_summary_line_and_experiment_summary(train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = train(*sweep_args(sweep_dir, "hydra.sweeper.n_trials=3", "hydra/sweeper/sampler=random"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    journal = sweep_dir / "optuna_journal.log"
    assert f"[optuna] dashboard: optuna-dashboard {journal}" in result.stdout
    study = load_study(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    dirs = run_dirs(sweep_dir)
    assert [d.name.split("_", 1)[0] for d in dirs] == ["0", "1", "2"]
    job_lines = [line.split("[HYDRA] \t", 1)[1] for line in result.stdout.splitlines() if "[HYDRA] \t#" in line]
    assert len(job_lines) == 3 and all(
        line.endswith(f"model.hidden_sizes={t.params['model.hidden_sizes']}")
        for line, t in zip(job_lines, study.trials, strict=True)
    ), job_lines
    assert "env_set" not in result.stdout + result.stderr  # a trial's address (its storage URL) is not printed

    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = study.best_trial
    assert results["best_value"] == best.value
    assert results["best_params"] == best.params
    assert results["best_trial"] == best.number
    assert results["best_run_dir"] == str(dirs[best.number])
    assert results["counts"] == {"complete": 3, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0, "waiting": 0}
    assert results["direction"] == "maximize" and results["optimized_metric"] == "val/acc_best"
    assert results["epochs_trained"] == 3 * 4
    assert last_line(result).startswith(
        f"optuna: 3 trials: 3 complete, 0 pruned, 0 failed; best val/acc_best={best.value:.6g} "
        f"(trial {best.number}, {dirs[best.number]}); results: {sweep_dir / 'optimization_results.yaml'}"
    )
    for number, run_dir in enumerate(dirs):
        summary = yaml.safe_load((run_dir / "metrics.json").read_text())
        assert summary["optuna"] == {"trial": number, "state": "COMPLETE", "reason": ""}
        assert study.trials[number].user_attrs[RUN_DIR_ATTR] == str(run_dir)
        assert len(study.trials[number].intermediate_values) == 4  # one report per epoch

    # Each trial declares the experiment itself (issue 29: none at the sweep root, no `.` run): all its
    # hyperparameters, the sampled ones marked as differing, the same metrics for every trial.
    assert not list(sweep_dir.glob("*tfevents*"))
    declarations = [
        metadata.parse_experiment_plugin_data(
            read_events(run_dir).PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
        )
        for run_dir in dirs
    ]
    for experiment in declarations:
        differing = {info.name for info in experiment.hparam_infos if info.differs}
        assert differing == {"optimizer.lr", "data.batch_size", "model.hidden_sizes"}
        assert experiment.metric_infos == declarations[0].metric_infos
        assert experiment.metric_infos[0].name.tag == "trial_state"


def test_pruning_stops_bad_trials_early(train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = train(
        *sweep_args(sweep_dir, *LEARNS, "optimizer.lr=choice(0.3,0.2,1e-6,2e-6,3e-6)"),
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.seed=4",  # grid order: 0.3 first, so the median starts high
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = load_study(sweep_dir)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert {t.params["optimizer.lr"] for t in pruned} == {1e-6, 2e-6, 3e-6}
    for trial in pruned:
        assert max(trial.intermediate_values) < 4  # max_epochs
        run_dir = Path(trial.user_attrs[RUN_DIR_ATTR])
        summary = yaml.safe_load((run_dir / "metrics.json").read_text())
        assert summary["status"] == "pruned" and summary["reason"].startswith("pruned by MedianPruner at epoch")
        assert summary["epochs_run"] == max(trial.intermediate_values)
        assert (run_dir / "checkpoints" / "last.pt").is_file()
        assert list(run_dir.glob("events.out.tfevents.*"))
    assert "optuna: 5 trials: 2 complete, 3 pruned, 0 failed" in last_line(result)


def test_failing_trials_are_recorded_and_the_sweep_goes_on(train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = train(
        *sweep_args(sweep_dir, *LEARNS, "optimizer.lr=choice(0.3,1e30,-1.0)"),
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.max_failures=3",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = load_study(sweep_dir)
    by_lr = {t.params["optimizer.lr"]: t for t in study.trials}
    assert by_lr[0.3].state == TrialState.COMPLETE
    nan_trial, invalid_trial = by_lr[1e30], by_lr[-1.0]
    assert nan_trial.state == invalid_trial.state == TrialState.FAIL
    assert nan_trial.user_attrs[FAIL_REASON_ATTR].startswith("train loss is nan")
    assert invalid_trial.user_attrs[FAIL_REASON_ATTR] == "ConfigError: optimizer.lr must be a positive number, got -1.0"
    assert study.user_attrs[f"fail_reason/trial_{nan_trial.number}"] == nan_trial.user_attrs[FAIL_REASON_ATTR]
    nan_summary = yaml.safe_load((Path(nan_trial.user_attrs[RUN_DIR_ATTR]) / "metrics.json").read_text())
    assert nan_summary["optuna"]["state"] == "FAIL"
    assert nan_summary["optuna"]["reason"] == nan_trial.user_attrs[FAIL_REASON_ATTR]
    assert "optuna: 3 trials: 1 complete, 0 pruned, 2 failed" in last_line(result)
    assert "Traceback" not in result.stderr


def test_max_failures_stops_the_sweep_with_one_line(train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = train(
        *sweep_args(sweep_dir, *LEARNS, "optimizer.lr=choice(-1.0,-2.0)"),
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.max_failures=1",
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "hydra.sweeper.max_failures=1" in errors[0]
    assert "Traceback" not in result.stderr
    assert count_trials(load_study(sweep_dir).trials).failed == 1
    assert "optuna: 1 trials: 0 complete, 0 pruned, 1 failed" in result.stdout


def test_resume_after_sigkill_reaches_exactly_n_trials(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    args = sweep_args(sweep_dir, "hydra.sweeper.n_trials=4", "hydra/sweeper/pruner=none", "trainer.max_epochs=6")
    process = start_sweep(tmp_path, data_dir, args, "first.log")
    deadline = time.time() + 120
    while not any(path.name.startswith("1_") for path in (sweep_dir.glob("*") if sweep_dir.exists() else [])):
        assert process.poll() is None and time.time() < deadline, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.2)
    killed_dir = next(sweep_dir.glob("1_*"))
    while not (killed_dir / "checkpoints" / "last.pt").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # in the middle of trial 1, after its first checkpoint
    process.wait()
    before = {path: sorted(p.name for p in path.rglob("*")) for path in run_dirs(sweep_dir)}
    killed = load_study(sweep_dir).trials[1]
    assert killed.state == TrialState.RUNNING

    resumed = run_script("train.py", args, tmp_path / "outputs", data_dir, timeout=180)  # the same command again
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "trial 1 was left RUNNING by a killed sweep: marked FAIL, retried once" in resumed.stdout
    trials = load_study(sweep_dir).trials
    counts = count_trials(trials)
    assert (counts.complete, counts.interrupted, counts.failed, counts.running) == (4, 1, 0, 0)
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs[FAIL_REASON_ATTR].startswith("interrupted")
    retry = trials[2]
    assert retry.params == killed.params and retry.system_attrs["failed_trial"] == 1
    assert [t.number for t in trials if t.state == TrialState.COMPLETE] == [0, 2, 3, 4]
    # The retry continued the killed run from its checkpoint, in its directory (README "Sweeps: interruption").
    assert f"trial 2 continues the interrupted run {killed_dir} from its checkpoint" in resumed.stdout
    assert retry.user_attrs[RUN_DIR_ATTR] == str(killed_dir)
    dirs = run_dirs(sweep_dir)
    assert [d.name.split("_", 1)[0] for d in dirs] == ["0", "1", "3", "4"]
    for path, names in before.items():  # nothing of the killed sweep was lost (but the space held while training,
        # and a file the kill tore mid atomic write, which the rerun rightly discards)
        kept = {name for name in names if not name.endswith(TMP_SUFFIX)} - {SPACE_RESERVE}
        assert kept <= {p.name for p in path.rglob("*")}
    assert [yaml.safe_load((d / "metrics.json").read_text())["epochs_run"] for d in dirs[:2]] == [6, 6]
    assert "optuna: 4 trials: 4 complete, 0 pruned, 0 failed (1 interrupted and retried)" in last_line(resumed)


def test_two_processes_share_one_study(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    args = sweep_args(sweep_dir, "hydra.sweeper.n_trials=5", "hydra.sweeper.study_name=shared")
    processes = [start_sweep(tmp_path, data_dir, args, f"process{i}.log") for i in range(2)]
    for index, process in enumerate(processes):
        assert process.wait(timeout=180) == 0, (tmp_path / f"process{index}.log").read_text()[-3000:]
    trials = load_study(sweep_dir, "shared").trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    owners = {t.system_attrs[OWNER_ATTR]["pid"] for t in trials}
    assert owners == {p.pid for p in processes}  # both did part of the work
    dirs = run_dirs(sweep_dir)
    assert [d.name.split("_", 1)[0] for d in dirs] == ["0", "1", "2", "3", "4"]
    assert {t.user_attrs[RUN_DIR_ATTR] for t in trials} == {str(d) for d in dirs}


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
    release = tmp_path / "release-trial-0"
    hold = ["+callbacks.hold._target_=tests.helpers.faults.HoldAfterFirstEpoch", f"+callbacks.hold.release={release}"]
    first = start([*args, *hold], tmp_path / "outputs", data_dir)  # trial 0 trains until the helper has ended
    wait_for(lambda: list(sweep_dir.glob("0_*")), first, "trial 0's run directory")
    other_study = start([*args, "hydra.sweeper.study_name=other"], tmp_path / "outputs", data_dir)
    other_space = start([*args, "optimizer.lr=interval(0.0001,0.1)"], tmp_path / "outputs", data_dir)
    helper = start([*args, "trainer.max_epochs=1"], tmp_path / "outputs", data_dir)  # same study: trial 1
    refused = {"study": other_study.communicate(timeout=240), "space": other_space.communicate(timeout=240)}
    helper_out, helper_err = helper.communicate(timeout=240)
    first_still_running = first.poll() is None
    release.touch()
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
