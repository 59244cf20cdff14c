"""A new run never writes into a directory that already holds a run; `resume=` is the one way back in.

README "The run directory": a single run into a taken `hydra.run.dir` stops with one line (exit 2) and a
sweep job whose directory is taken fails without starting, while the other jobs run. Every file of the
first run, `.hydra/` and `train.log` included, stays byte-identical.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, cli_env, resume_cli
from trainscope.trial.attributes import FAIL_REASON_ATTR
from trainscope.trial.storage import open_storage

HELD = "metrics.json, checkpoints, TensorBoard events"


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` by relative path, with its bytes."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def event_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("events.out.tfevents.*"))


def refusal(run_dir: Path, setting: str) -> str:
    return (
        f"error: {run_dir} already holds a run ({HELD}); continue it with resume={run_dir}, or choose another {setting}"
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-3000:] + result.stderr[-3000:]


def test_a_second_run_into_a_run_dir_is_refused_and_loses_nothing(tmp_path: Path, data_dir: Path) -> None:
    train = TrainCLI(tmp_path / "outputs", data_dir)
    run_dir = tmp_path / "exp1"
    first = train(*TINY, f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, output(first)
    before = snapshot(run_dir)
    expected = {"metrics.json", "checkpoints/best.pt", "checkpoints/last.pt", ".hydra/config.yaml", "train.log"}
    assert expected <= set(before)

    second = train(*TINY, "optimizer.lr=0.5", f"hydra.run.dir={run_dir}")

    assert second.returncode == 2, output(second)
    assert second.stderr.strip() == refusal(run_dir, "hydra.run.dir")
    assert snapshot(run_dir) == before  # metrics.json, checkpoints, .hydra/, train.log: byte-identical
    assert len(event_files(run_dir)) == 1
    assert not (tmp_path / "outputs").exists()  # no other directory was created either

    resumed = resume_cli(run_dir, data_dir, "trainer.max_epochs=3")  # the one way to write into it
    assert resumed.returncode == 0, output(resumed)
    assert yaml.safe_load((run_dir / "metrics.json").read_text())["epochs_run"] == 3


def test_a_stray_rank_in_the_environment_is_not_a_torchrun_job(tmp_path: Path, data_dir: Path) -> None:
    train = TrainCLI(tmp_path / "outputs", data_dir)
    run_dir = tmp_path / "exp1"
    assert train(*TINY, f"hydra.run.dir={run_dir}").returncode == 0
    before = snapshot(run_dir)
    env = {**cli_env(tmp_path / "outputs", data_dir), "RANK": "1", "WORLD_SIZE": "2"}  # e.g. left by an MPI wrapper

    second = subprocess.run(
        [sys.executable, "train.py", *TINY, f"hydra.run.dir={run_dir}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert second.returncode == 2, output(second)  # checked like any single run, not skipped as "rank 1"
    assert second.stderr.strip() == refusal(run_dir, "hydra.run.dir")
    assert snapshot(run_dir) == before


def test_a_directory_left_by_a_config_error_is_free(tmp_path: Path, data_dir: Path) -> None:
    train = TrainCLI(tmp_path / "outputs", data_dir)
    run_dir = tmp_path / "exp1"
    rejected = train(*TINY, "optimizer.lr=abc", f"hydra.run.dir={run_dir}")
    assert rejected.returncode == 2, output(rejected)
    assert sorted(path.name for path in run_dir.iterdir()) == [".hydra", "train.log"]

    retried = train(*TINY, f"hydra.run.dir={run_dir}")

    assert retried.returncode == 0, output(retried)
    assert yaml.safe_load((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert len(event_files(run_dir)) == 1


def test_grid_jobs_into_another_grid_s_runs_fail_untouched_and_the_others_run(tmp_path: Path, data_dir: Path) -> None:
    # Run directories named by job number only: the second grid's jobs 0 and 1 land in the first grid's runs,
    # which hold other overrides (a rerun of the same grid would keep them: tests/test_sweeps_survive.py).
    train = TrainCLI(tmp_path / "outputs", data_dir)
    sweep = [f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweep.subdir=${hydra.job.num}"]
    first = train("-m", *TINY, "optimizer.lr=0.01,0.001", *sweep)
    assert first.returncode == 0, output(first)
    taken = sorted(path for path in (tmp_path / "sweep").iterdir() if path.is_dir())
    assert [path.name for path in taken] == ["0", "1"]
    before = {path: snapshot(path) for path in taken}

    second = train("-m", *TINY, "optimizer.lr=0.1,0.01,0.001", *sweep)

    assert second.returncode == 1, output(second)
    for path in taken:
        assert snapshot(path) == before[path]
        assert len(event_files(path)) == 1
        assert refusal(path, "hydra.sweep.dir") in second.stderr.splitlines()
    new = tmp_path / "sweep" / "2"
    assert yaml.safe_load((new / ".hydra" / "overrides.yaml").read_text())[-1] == "optimizer.lr=0.001"
    assert yaml.safe_load((new / "metrics.json").read_text())["status"] == "completed"
    assert second.stdout.strip().splitlines()[-1].startswith("multirun: 1 succeeded, 2 failed (")
    assert "Traceback" not in second.stderr


def test_an_optuna_trial_into_a_taken_dir_fails_without_touching_it(train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    search = [
        "-m",
        "hparams_search=synthetic",
        "optimizer=sgd",
        "data.batch_size=32",
        "model.hidden_sizes=[16]",
        "optimizer.lr=choice(0.3)",
        "hydra/sweeper/sampler=grid",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    first = train(*search)
    assert first.returncode == 0, output(first)
    (run_dir,) = [path for path in sweep_dir.iterdir() if path.is_dir() and path.name.startswith("0_")]
    before = snapshot(run_dir)

    # The study's journal is gone, its runs are not: the study starts afresh and its trial 0 gets the same
    # directory name. (A second study in the directory is refused before any trial: test_sweeps_survive.py.)
    journal = sweep_dir / "optuna_journal.log"
    journal.unlink()
    second = train(*search)

    assert second.returncode == 0, output(second)
    assert snapshot(run_dir) == before  # not even the trial's state is added to the first run's metrics.json
    (study_name,) = optuna.get_all_study_names(storage=open_storage(str(journal)))
    study = optuna.load_study(study_name=study_name, storage=open_storage(str(journal)))
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert "error: " + trial.user_attrs[FAIL_REASON_ATTR] == refusal(run_dir, "hydra.sweep.dir")
