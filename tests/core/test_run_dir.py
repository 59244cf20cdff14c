"""The run-directory contract: atomic writes, metrics.json, run checks and checkpoint fallback (in-process, fast),
and a new run never writes into a directory that already holds a run (real `train.py` runs and sweeps)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, cli_env, resume_cli
from tests.helpers.disk import fill, small_disk
from trainscope.core.checkpoint_io import (
    keep_as_best,
    load_checkpoint,
    load_latest_checkpoint,
    load_model_weights,
    save_checkpoint,
)
from trainscope.core.errors import CheckpointError
from trainscope.core.run_dir import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    METRICS_FILE,
    PREVIOUS,
    SAVED_CONFIG,
    RunStatus,
    atomic_write,
    atomic_write_all,
    check_run_dir,
    read_metrics,
    write_metrics,
)
from trainscope.trial.attributes import FAIL_REASON_ATTR
from trainscope.trial.storage import open_storage


class Counter:
    """The smallest `Stateful`: checkpoint I/O needs nothing else."""

    def __init__(self, value: int) -> None:
        self.value = value

    def state_dict(self) -> dict:
        return {"model": {"weight": torch.tensor([float(self.value)])}, "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


def test_atomic_write_takes_bytes_a_writer_or_a_file_to_link(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    atomic_write(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write(target, lambda handle: handle.write(b"two"))
    assert target.read_bytes() == b"two"
    copy = tmp_path / "copy.bin"
    atomic_write(copy, target)
    assert copy.read_bytes() == b"two"
    assert sorted(path.name for path in tmp_path.rglob("*.tmp")) == []


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    atomic_write(target, b"good")

    def fails(handle) -> None:
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, fails)
    assert target.read_bytes() == b"good"
    assert list(tmp_path.glob("*.tmp")) == []


def test_metrics_json_round_trip_writes_nan_as_null_and_status_as_its_string(tmp_path: Path) -> None:
    write_metrics(tmp_path, {"status": RunStatus.STOPPED_EARLY, "final": {"val/loss": math.nan, "val/acc": 0.5}})
    assert json.loads((tmp_path / METRICS_FILE).read_text())["status"] == "stopped_early"
    assert read_metrics(tmp_path) == {"status": "stopped_early", "final": {"val/loss": None, "val/acc": 0.5}}
    assert f"{RunStatus.PRUNED}" == "pruned" and RunStatus("failed") is RunStatus.FAILED


def test_check_run_dir_names_the_argument_and_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"^run=.* is not a run directory \(no \.hydra/config\.yaml in it\)"):
        check_run_dir(tmp_path)
    with pytest.raises(CheckpointError, match=r"^resume=.*: no such directory"):
        check_run_dir(tmp_path / "missing", "resume", need_checkpoint=True)
    with pytest.raises(CheckpointError, match=r"^resume=.* is not a run directory \(no \.hydra/config\.yaml\);"):
        check_run_dir(tmp_path, "resume", need_checkpoint=True)
    (tmp_path / SAVED_CONFIG).parent.mkdir()
    (tmp_path / SAVED_CONFIG).write_text("{}")
    assert check_run_dir(tmp_path) == tmp_path
    with pytest.raises(CheckpointError, match=r"has no checkpoint \(checkpoints/last\.pt\)"):
        check_run_dir(tmp_path, "resume", need_checkpoint=True)


def test_checkpoints_rotate_and_a_corrupt_last_falls_back_to_previous(tmp_path: Path, capsys) -> None:
    save_checkpoint(tmp_path, Counter(1), config_hash="abc")
    keep_as_best(tmp_path)
    save_checkpoint(tmp_path, Counter(2), config_hash="abc")
    directory = tmp_path / CHECKPOINT_DIR
    assert sorted(path.name for path in directory.iterdir()) == [BEST, LAST, PREVIOUS]

    checkpoint, path = load_latest_checkpoint(tmp_path)
    assert (path.name, checkpoint["value"], checkpoint["config_hash"]) == (LAST, 2, "abc")

    (directory / LAST).write_bytes(b"truncated")
    restored = Counter(0)
    checkpoint, path = load_latest_checkpoint(tmp_path)
    restored.load_state_dict(checkpoint)
    assert (path.name, restored.value) == (PREVIOUS, 1)
    assert (directory / (LAST + ".corrupt")).is_file() and not (directory / LAST).exists()
    assert "falling back to the previous good checkpoint" in capsys.readouterr().err

    (directory / PREVIOUS).write_bytes(b"broken too")
    (directory / LAST).write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="is unreadable too: start the run again"):
        load_latest_checkpoint(tmp_path)


# ---------------------------------------------------------------- a taken run directory is never written into


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_grid_jobs_into_another_grid_s_runs_fail_untouched_and_the_others_run(tmp_path: Path, data_dir: Path) -> None:
    # Run directories named by job number only: the second grid's jobs 0 and 1 land in the first grid's runs,
    # which hold other overrides (a rerun of the same grid would keep them: tests/sweep/grid/test_grid_rerun.py).
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


@pytest.mark.slow
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
    # directory name. (A second study in the directory is refused before any trial:
    # tests/sweep/optuna/test_optuna_sweep.py.)
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


def test_files_written_together_change_all_or_none_on_a_full_disk(tmp_path: Path) -> None:
    """Room for the first file, not the second (a real tmpfs): neither changes, no temporary file is left."""
    with small_disk(tmp_path / "disk", 2**20) as disk:
        first, second = disk / ".hydra" / "config.yaml", disk / ".hydra" / "hydra.yaml"
        atomic_write_all({first: b"old 1", second: b"old 2"})
        filler = fill(disk, leave=4096)
        with pytest.raises(OSError, match="No space left"):
            atomic_write_all({first: b"n" * 3000, second: b"n" * 6000})
        assert (first.read_bytes(), second.read_bytes()) == (b"old 1", b"old 2")
        assert sorted(path.name for path in first.parent.iterdir()) == ["config.yaml", "hydra.yaml"]
        filler.unlink()
        atomic_write_all({first: b"new 1", second: b"new 2"})
        assert (first.read_bytes(), second.read_bytes()) == (b"new 1", b"new 2")


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ({"model": 3}, "no model state"),
        ({"model": {}, "trainer": 3}, "trainer is not a state dict"),
        ({"model": {}, "task": [1]}, "task is not a state dict"),
    ],
    ids=["model", "trainer", "task"],
)
def test_a_checkpoint_of_the_wrong_shape_is_one_error(state: dict, problem: str, tmp_path: Path) -> None:
    """A checkpoint that comes with a run directory from anywhere loads safely (weights_only) and is checked for
    the shape its readers need: before, `{"model": 3}` or `{"trainer": 3}` ended in a TypeError traceback."""
    path = tmp_path / "last.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="is not a trainscope checkpoint") as error:
        load_checkpoint(path)
    assert problem in str(error.value)


def test_weights_that_do_not_fit_the_model_are_one_error(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    with pytest.raises(CheckpointError, match="does not fit the model") as error:
        load_model_weights(model, {"model": {"x": torch.zeros(1)}}, tmp_path / "best.pt", tmp_path)
    assert 'Missing key(s) in state_dict: "weight", "bias"' in str(error.value)
