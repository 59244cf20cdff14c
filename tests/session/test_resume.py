"""Resume as a user does it: kill a run, `python train.py resume=<run_dir>`, get the run that was never killed."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, cli_env, resume_cli, start_training, wait_for_checkpoint
from tests.helpers.events import read_events, session_infos

# A CNN on small images, deterministic, with a checkpoint every 5 steps: 576 train images → 18 batches an epoch.
DETERMINISTIC = [
    "data=synthetic",
    "data.num_samples=640",
    "data.batch_size=32",
    "data.input_shape=[1,12,12]",
    "model=cnn",
    "trainer.deterministic=true",
    "trainer.max_epochs=3",
    "logging.log_every_n_steps=2",
    "logging.progress_bar=false",
    "callbacks.checkpoint.every_n_steps=5",
]
TIMING_TAGS = ("time/", "train/samples_per_sec", "system/")


def comparable(metrics: dict[str, float | None]) -> dict[str, float | None]:
    return {key: value for key, value in metrics.items() if not key.startswith(TIMING_TAGS)}


def test_sigkill_mid_epoch_then_resume_equals_the_uninterrupted_run(tmp_path: Path, data_dir: Path) -> None:
    straight_root, killed_root = tmp_path / "straight", tmp_path / "killed"
    straight = start_training(DETERMINISTIC, straight_root, data_dir)
    killed = start_training(DETERMINISTIC, killed_root, data_dir)
    run_dir = wait_for_checkpoint(killed_root, killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["trainer"]["batch_in_epoch"] > 0, "the kill should land mid-epoch"
    assert not (run_dir / "metrics.json").exists()

    resumed = subprocess.run(
        [sys.executable, "train.py", f"resume={run_dir}"],
        cwd=REPO_ROOT,
        env=cli_env(killed_root, data_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    straight_output, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, straight_output
    straight_dir = next((straight_root / "runs").glob("*/*"))
    assert [path.parent.name for path in (killed_root / "runs").glob("*/*")] == [run_dir.parent.name]

    expected = json.loads((straight_dir / "metrics.json").read_text())
    actual = json.loads((run_dir / "metrics.json").read_text())
    assert actual["status"] == "completed"
    assert actual["global_step"] == expected["global_step"] == 54
    assert comparable(actual["final"]) == comparable(expected["final"])
    assert comparable(actual["best"]) == comparable(expected["best"])

    expected_weights = torch.load(straight_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    actual_weights = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    for name, value in expected_weights.items():
        difference = (actual_weights[name].double() - value.double()).abs().max().item() if value.numel() else 0.0
        assert difference < 1e-6, f"{name} differs by {difference}"

    # TensorBoard: the killed segment's events after its checkpoint are purged, so every tag has the
    # same steps as the uninterrupted run, each once, with the same values.
    expected_events, actual_events = read_events(straight_dir), read_events(run_dir)
    assert sorted(actual_events.Tags()["scalars"]) == sorted(expected_events.Tags()["scalars"])
    for tag in expected_events.Tags()["scalars"]:
        expected_points = [(e.step, e.value) for e in expected_events.Scalars(tag)]
        actual_points = [(e.step, e.value) for e in actual_events.Scalars(tag)]
        assert [step for step, _ in actual_points] == [step for step, _ in expected_points], tag
        if not tag.startswith(TIMING_TAGS):
            for (_, want), (_, got) in zip(expected_points, actual_points, strict=True):
                assert got == pytest.approx(want, abs=1e-6) or (math.isnan(want) and math.isnan(got)), tag
    assert session_infos(run_dir, "_hparams_/session_start_info") == 1
    assert session_infos(run_dir, "_hparams_/session_end_info") == 1


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A completed one-epoch run, shared by the tests that only read it (copy it before resuming)."""
    cli = TrainCLI(tmp_path_factory.mktemp("finished"), data_dir)
    result = cli(*TINY, "trainer.max_epochs=1", "logging.progress_bar=false")
    assert result.returncode == 0, result.stderr
    return cli.run_dir()


def test_max_epochs_extends_a_finished_run_in_place(finished_run: Path, tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / finished_run.name
    shutil.copytree(finished_run, run_dir)
    result = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "unused-output-root").exists(), "resume must not create a new run directory"

    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2 and summary["global_step"] == 16
    events = read_events(run_dir)
    assert [event.step for event in events.Scalars("val/acc")] == [8, 16]
    assert [event.step for event in events.Scalars("train/loss_step")] == list(range(2, 17, 2))
    assert session_infos(run_dir, "_hparams_/session_start_info") == 1
    assert "trainer.max_epochs=2" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert (run_dir / "train.log").read_text().count("epoch 1/1") == 1, "the log is appended to, not replaced"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["optimizer.lr=0.5"], "optimizer.lr"),
        (["model=cnn"], "model is 'mlp'"),
        (["data.batch_size=64"], "data.batch_size"),
        ([], "already trained 1 epochs"),
    ],
)
def test_resume_rejects_a_conflicting_override(
    finished_run: Path, data_dir: Path, overrides: list[str], named: str
) -> None:
    before = {path: path.stat().st_mtime_ns for path in finished_run.rglob("*") if path.is_file()}
    result = resume_cli(finished_run, data_dir, *overrides)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    if overrides:
        assert {path: path.stat().st_mtime_ns for path in finished_run.rglob("*") if path.is_file()} == before


def test_checkpoints_load_with_weights_only(finished_run: Path) -> None:
    checkpoint = torch.load(finished_run / "checkpoints" / "last.pt", weights_only=True)
    expected_keys = {"model", "optimizer", "scheduler", "scaler", "trainer", "callbacks", "rng", "config_hash"}
    assert expected_keys <= set(checkpoint)
    assert {"torch", "cuda", "numpy", "python"} <= set(checkpoint["rng"])
    assert {"epoch", "global_step", "batch_in_epoch", "best_val_acc", "running_sums"} <= set(checkpoint["trainer"])
    assert "early_stopping" in checkpoint["callbacks"]
    assert os.path.getsize(finished_run / "checkpoints" / "best.pt") > 0


def test_every_tensorboard_reader_drops_what_a_killed_segment_logged_after_its_checkpoint(tmp_path: Path) -> None:
    """The Python loader behind `tensorboard --load_fast=false` purges only from a run's second start marker on."""
    from tensorboard.backend.event_processing import plugin_event_accumulator

    from trainscope.session.resume import purge_step
    from trainscope.tensorboard.writer import RunWriter

    first = RunWriter(tmp_path, purge_step=purge_step(None))
    for step in range(1, 11):  # killed at step 10, last checkpoint at step 5
        first.scalar("x", float(step), step)
    first.close()
    time.sleep(1.1)  # event files are ordered by their creation second
    resumed = RunWriter(tmp_path, purge_step=purge_step({"trainer": {"global_step": 5}}))
    for step in range(6, 9):
        resumed.scalar("x", 100.0 + step, step)
    resumed.close()

    expected = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 106.0), (7, 107.0), (8, 108.0)]
    assert [(event.step, event.value) for event in read_events(tmp_path).Scalars("x")] == expected
    legacy = plugin_event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    legacy.Reload()
    assert [(event.step, event.tensor_proto.float_val[0]) for event in legacy.Tensors("x")] == expected
