"""A single run survives what users and machines do to it (issue 13): a full disk, a broken YAML file, two
`resume=` at once, a hand-edited saved config, and a SIGKILL a few milliseconds after a checkpoint. Each case
is one `error:` line (or a clean continuation), and TensorBoard's own reader shows every tag exactly once at
every step. Real processes, real files, real signals, a real full file system (a tmpfs)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import (
    REPO_ROOT,
    TINY,
    cli_env,
    error_line,
    resume_cli,
    run_script,
    single_run_dir,
    start_training,
)
from tests.helpers.disk import fill, small_disk
from tests.helpers.events import read_events

FULL = [*TINY, "logging=full", "trainer.max_epochs=3"]  # histograms, images and text at every epoch end


def points_per_tag(run_dir: Path) -> dict[str, list[int]]:
    """Every tag TensorBoard shows for the run, with the steps of its points (a step twice = a duplicate)."""
    events = read_events(run_dir)
    tags = events.Tags()
    readers = {
        "scalars": events.Scalars,
        "histograms": events.Histograms,
        "images": events.Images,
        "tensors": events.Tensors,
    }
    return {
        f"{kind}:{tag}": sorted(point.step for point in read(tag))
        for kind, read in readers.items()
        for tag in tags[kind]
        if tag != "trial_state"  # written when a segment ends, interrupted or not
    }


@pytest.fixture(scope="module")
def reference_points(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, list[int]]:
    """The tags and steps of the `FULL` run never interrupted."""
    output_root = tmp_path_factory.mktemp("reference")
    result = run_script("train.py", FULL, output_root, data_dir)
    assert result.returncode == 0, result.stderr
    return points_per_tag(single_run_dir(output_root))


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


# ---------------------------------------------------------------- broken or edited YAML


def copy_config_tree(tmp_path: Path) -> Path:
    """A copy of the project's `conf/` (and `experiments/`, which `conf/experiment` links to) to break."""
    shutil.copytree(REPO_ROOT / "experiments", tmp_path / "experiments")
    shutil.copytree(REPO_ROOT / "conf", tmp_path / "conf", symlinks=True)
    return tmp_path / "conf"


@pytest.mark.parametrize(
    ("relative_path", "broken", "line_column"),
    [
        ("experiment/mnist_cnn_tune.yaml", "trainer:\n  max_epochs: [8\n", "3:1"),
        ("model/mlp.yaml", "_target_: trainscope.models.MLP\nhidden: {a: 1\n", "3:1"),
    ],
    ids=["experiments", "conf_group"],
)
def test_malformed_yaml_is_one_line_with_file_line_and_column(
    relative_path: str, broken: str, line_column: str, tmp_path: Path, data_dir: Path
) -> None:
    conf = copy_config_tree(tmp_path)
    broken_file = (conf / relative_path).resolve()
    broken_file.write_text(broken)
    env = {**cli_env(tmp_path / "outputs", data_dir), "TRAINSCOPE_CONFIG_DIR": str(conf)}
    result = subprocess.run(
        [sys.executable, "train.py", *TINY], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    line = error_line(result)
    assert f"{conf / relative_path}:{line_column}: malformed YAML" in line, line
    assert not (tmp_path / "outputs").exists(), "nothing started"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    output_root = tmp_path_factory.mktemp("finished")
    result = run_script("train.py", [*TINY, "trainer.max_epochs=1"], output_root, data_dir)
    assert result.returncode == 0, result.stderr
    return single_run_dir(output_root)


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


# ---------------------------------------------------------------- a disk that fills up


def test_disk_full_while_tensorboard_writes(
    tmp_path: Path, data_dir: Path, reference_points: dict[str, list[int]]
) -> None:
    with small_disk(tmp_path / "disk", 32 * 2**20) as disk:
        output_root = disk / "outputs"
        process = start_training(FULL, output_root, data_dir, stdout=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not list((output_root / "runs").glob("*/*/checkpoints/last.pt")):
            assert time.monotonic() < deadline and process.poll() is None, "no first checkpoint"
            time.sleep(0.001)
        filler = fill(disk)  # epoch 1 is checkpointed; epoch 2's TensorBoard points find no space
        output, _ = process.communicate(timeout=120)
        run_dir = single_run_dir(output_root)
        lines = [line for line in output.splitlines() if line.startswith(("error:", "Traceback"))]
        assert process.returncode == 2, output
        assert len(lines) == 1 and lines[0].startswith("error: disk full: could not write to"), output
        assert "Traceback" not in output and "Logging error" not in output, output
        assert f"resume with: python train.py resume={run_dir}" in lines[0]
        assert "metrics.json records the run as failed" in lines[0]  # the run's space reserve made room
        metrics_file = run_dir / "metrics.json"
        summary = json.loads(metrics_file.read_text())
        assert summary["status"] == "failed" and summary["reason"].startswith("disk full: could not write"), summary
        assert not list(run_dir.rglob("*.tmp")), "no half-written file left behind"
        checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
        assert checkpoint["trainer"]["epoch"] == 1

        filler.unlink()
        resumed = resume_cli(run_dir, data_dir)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(metrics_file.read_text())["status"] == "completed"
        assert points_per_tag(run_dir) == reference_points
        assert not (run_dir / ".space_reserve").exists()


def test_disk_full_before_the_run_writes_its_saved_config(tmp_path: Path, data_dir: Path) -> None:
    with small_disk(tmp_path / "disk", 4 * 2**20) as disk:
        fill(disk)
        result = run_script("train.py", TINY, disk / "outputs", data_dir)
        assert result.returncode == 2
        line = error_line(result)
        assert "could not write" in line and ".hydra/config.yaml (No space left on device)" in line, line


def test_disk_full_when_resuming_keeps_the_saved_config(finished_run: Path, tmp_path: Path, data_dir: Path) -> None:
    with small_disk(tmp_path / "disk", 16 * 2**20) as disk:
        run_dir = disk / finished_run.name
        shutil.copytree(finished_run, run_dir)
        before = {path: path.read_bytes() for path in (run_dir / ".hydra").iterdir()}
        last = (run_dir / "checkpoints" / "last.pt").read_bytes()
        filler = fill(disk)
        result = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
        assert result.returncode == 2
        assert "(No space left on device)" in error_line(result)
        assert {path: path.read_bytes() for path in (run_dir / ".hydra").iterdir()} == before
        assert (run_dir / "checkpoints" / "last.pt").read_bytes() == last

        filler.unlink()
        resumed = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2
