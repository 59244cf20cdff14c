"""Resume as a user does it: kill a run (mid-epoch, or milliseconds around a checkpoint write), `python train.py
resume=<run_dir>`, get the run that was never killed; a second `resume=` or an eval while one trains, a conflicting
override and a hand-edited saved config are one `error:` line each."""

from __future__ import annotations

import contextlib
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
from omegaconf import OmegaConf

from tests.helpers.cli import (
    FULL,
    REPO_ROOT,
    TINY,
    cli_env,
    error_line,
    resume_cli,
    run_script,
    single_run_dir,
    start_training,
    wait_for_checkpoint,
)
from tests.helpers.events import points_per_tag, read_events, session_infos
from trainscope.core.errors import CheckpointError
from trainscope.session.resume import load_resume_checkpoint

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# ---------------------------------------------------------------- SIGKILL around the checkpoint write


def kill_when(process: subprocess.Popen[str], output_root: Path, moment: str, writes_before: int) -> Path:
    """SIGKILL `process` at `moment`, after `writes_before` checkpoint writes; the run directory.

    `after_replace`: polled, within milliseconds of `last.pt` being replaced by write `writes_before + 1` (the new
    file claims its step); `during_write`: while that write's `last.pt.tmp` is being written (the old `last.pt`
    still claims the step before).
    """
    deadline = time.monotonic() + 120
    seen: list[int] = []  # the distinct mtimes of last.pt: one per completed write
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before the moment to kill it"
        found = list((output_root / "runs").glob("*/*/checkpoints/last.pt"))
        with contextlib.suppress(FileNotFoundError):  # between the rename and the next stat
            if found:
                last = found[0]
                mtime = last.stat().st_mtime_ns
                if not seen or seen[-1] != mtime:
                    seen.append(mtime)
                writing = last.with_name("last.pt.tmp").exists() and len(seen) >= writes_before
                if len(seen) > writes_before if moment == "after_replace" else writing:
                    break
        time.sleep(0.0005)
    else:
        pytest.fail(f"no {moment} moment within the timeout")
    process.send_signal(signal.SIGKILL)
    process.wait()
    return last.parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "writes_before", "checkpointing"),
    [
        ("after_replace", 1, []),
        ("during_write", 1, []),
        # mid-epoch checkpoints every 4 of the 8 steps of an epoch: write 3 is the one at the end of epoch 1's
        # validation (or, with a mid-epoch checkpoint at the epoch's last step, the epoch-end one after it)
        ("during_write", 2, ["callbacks.checkpoint.every_n_steps=4"]),
        ("after_replace", 2, ["callbacks.checkpoint.every_n_steps=4"]),
    ],
    ids=["just_after_the_replace", "while_writing", "while_writing_every_4_steps", "just_after_every_4_steps"],
)
def test_sigkill_around_the_checkpoint_write_loses_no_point(
    moment: str,
    writes_before: int,
    checkpointing: list[str],
    tmp_path: Path,
    data_dir: Path,
    reference_points: dict[str, list[int]],
) -> None:
    output_root = tmp_path / "outputs"
    process = start_training([*FULL, *checkpointing], output_root, data_dir, stdout=subprocess.DEVNULL)
    run_dir = kill_when(process, output_root, moment, writes_before)
    resumed = resume_cli(run_dir, data_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert points_per_tag(run_dir) == reference_points


# ---------------------------------------------------------------- two resume= at once


@pytest.mark.slow
def test_a_second_resume_or_an_eval_is_refused_while_the_first_trains_and_a_killed_ones_lock_does_not_block(
    tmp_path: Path, data_dir: Path
) -> None:
    output_root = tmp_path / "outputs"
    no_early_stop = "callbacks.early_stopping=null"  # the resumed run must still train when eval.py comes
    first = run_script("train.py", [*TINY, "trainer.max_epochs=1", no_early_stop], output_root, data_dir)
    assert first.returncode == 0, first.stderr
    run_dir = single_run_dir(output_root)
    lock = run_dir / "run.lock"

    long_resume = ["trainer.max_epochs=500"]
    training = subprocess.Popen(
        [sys.executable, "train.py", f"resume={run_dir}", *long_resume],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "unused", data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (lock.is_file() and lock.read_text().strip() == str(training.pid)):
            assert time.monotonic() < deadline and training.poll() is None, "the first resume never took the lock"
            time.sleep(0.01)
        started = time.monotonic()
        second = resume_cli(run_dir, data_dir, *long_resume)
        assert second.returncode == 2
        line = error_line(second)
        assert f"is locked by pid {training.pid}" in line, line
        assert time.monotonic() - started < 30  # refused at once, not after training
        metrics_before = (run_dir / "metrics.json").read_bytes()
        evaluated = run_script("eval.py", [f"run={run_dir}"], tmp_path / "unused", data_dir)
        assert evaluated.returncode == 2  # eval writes metrics.json too: not while a run trains there
        assert f"is locked by pid {training.pid}" in error_line(evaluated), evaluated.stderr
        assert (run_dir / "metrics.json").read_bytes() == metrics_before
        assert training.poll() is None, "the refused resume must not disturb the one training"
    finally:
        training.send_signal(signal.SIGKILL)
        training.wait()

    epochs_done = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["trainer"]["epoch"]
    after_kill = resume_cli(run_dir, data_dir, f"trainer.max_epochs={epochs_done + 1}")
    assert after_kill.returncode == 0, after_kill.stderr  # the killed process's lock file is still there
    assert lock.read_text().strip() != str(training.pid)


# ---------------------------------------------------------------- an edited saved config


@pytest.mark.slow
def test_resume_after_the_saved_config_was_edited_says_so(finished_run: Path, tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / finished_run.name
    shutil.copytree(finished_run, run_dir)
    saved = run_dir / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text().replace("lr: 0.001", "lr: 0.5", 1))
    result = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
    assert result.returncode == 2
    line = error_line(result)
    assert "the saved config changed since the checkpoint: optimizer.lr is 0.5 in" in line, line
    assert "drop that override" not in line


@pytest.mark.slow
def test_resume_with_broken_yaml_in_the_saved_config_is_one_line(
    finished_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    run_dir = tmp_path / finished_run.name
    shutil.copytree(finished_run, run_dir)
    saved = run_dir / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text() + "broken: [\n")
    result = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
    assert result.returncode == 2
    assert f"{saved}:" in error_line(result) and "malformed YAML" in error_line(result)


@pytest.mark.parametrize(
    "trainer_state",
    [{"epochs": 0}, {"epoch": "0", "batch_in_epoch": 0, "global_step": 0}, {"epoch": 0, "global_step": 0}],
    ids=["no_epoch", "epoch_a_string", "no_batch"],
)
def test_resume_of_a_checkpoint_without_trainer_state_is_one_error(trainer_state: dict, tmp_path: Path) -> None:
    """A crafted or foreign checkpoint (loaded with weights_only) is checked before the run reads its state:
    before, a KeyError traceback."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("trainer: {max_epochs: 2}\n")
    (run_dir / "checkpoints").mkdir()
    torch.save({"model": {}, "trainer": trainer_state}, run_dir / "checkpoints" / "last.pt")
    cfg = OmegaConf.create({"resume": str(run_dir), "trainer": {"max_epochs": 2}})
    with pytest.raises(CheckpointError, match="holds no trainer state to continue from"):
        load_resume_checkpoint(cfg)
