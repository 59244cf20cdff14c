"""Every row of the README's "Bad input" table: one clear line on stderr, a non-zero exit, no traceback,
and nothing already written lost or corrupted."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tensorboard.plugins.hparams import api_pb2, metadata

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, cli_env, error_line, resume_cli, snapshot
from tests.helpers.data import copy_mnist_files
from tests.helpers.events import read_events

# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model=nope", "model=nope is not an option; choose one of: cnn, custom, gpt, hf, lenet, mlp, resnet18, timm"),
        ("optimizer.lr=abc", "optimizer.lr must be a positive number, got 'abc'"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be a positive integer, got 0"),
        ("data.batch_size=-1", "data.batch_size must be a positive integer, got -1"),
        (  # Hydra's own five-line message, folded
            "trainer.nope=3",
            "Could not override 'trainer.nope'; To append to your config use +trainer.nope=3; "
            "Key 'nope' is not in struct",
        ),
        (
            "trainer.max_epochs=[3",
            "cannot parse the override trainer.max_epochs=[3; no viable alternative at input '[3'",
        ),
        ("hydra.job.chdir=maybe", "Error merging override hydra.job.chdir=maybe; Value 'maybe' is not a valid bool"),
        (  # resolved by Hydra only while naming the run directory: a traceback about hydra.run.dir before
            "data.batch_size=${oc.env:TRAINSCOPE_UNSET_IN_TESTS}",
            "cannot resolve data.batch_size=${oc.env:TRAINSCOPE_UNSET_IN_TESTS}: Environment variable "
            "'TRAINSCOPE_UNSET_IN_TESTS' not found; export that variable, or give it a default: "
            "${oc.env:NAME,default}",
        ),
    ],
    ids=[
        "unknown_group_option",
        "wrong_type",
        "out_of_range",
        "out_of_range_data",
        "unknown_key",
        "unparsable",
        "hydra_key",
        "unset_environment_variable",
    ],
)
def test_config_mistakes(train: TrainCLI, override: str, message: str) -> None:
    result = train(*TINY, override)
    assert result.returncode == 2
    assert message in error_line(result)
    assert not list((train.output_root / "runs").glob("*/*/checkpoints")), "nothing trained"


def test_two_hydra_modes_at_once_is_one_line(train: TrainCLI) -> None:
    result = train("-m", "hparams_search=synthetic", "--cfg", "hydra")  # Hydra: a ValueError traceback
    assert result.returncode == 2
    assert error_line(result).startswith("error: --multirun and --cfg cannot be combined: Hydra runs one mode")


def test_help_says_what_trainscope_is_and_lists_the_sweep_choices(train: TrainCLI) -> None:
    result = train("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("trainscope: train, watch and tune PyTorch models")
    lines = [line for line in result.stdout.splitlines() if line.startswith(("hydra/", "model:")) and ": " in line]
    listed = dict(line.split(": ", 1) for line in lines)
    assert {"tpe", "random", "grid"} <= set(listed["hydra/sweeper/sampler"].split(", "))
    assert {"median", "hyperband", "none"} <= set(listed["hydra/sweeper/pruner"].split(", "))
    assert {"basic", "joblib", "slurm"} <= set(listed["hydra/launcher"].split(", "))
    assert "mlp" in listed["model"] and "docs/README.md" in result.stdout
    assert "_target_" not in result.stdout, "the config itself is --cfg job's, not --help's"


# ---------------------------------------------------------------- data


@pytest.mark.slow
def test_dataset_directory_missing(train: TrainCLI, tmp_path: Path) -> None:
    result = train("data=mnist", "data.download=false", f"paths.data_dir={tmp_path / 'nowhere'}")
    assert result.returncode == 2
    line = error_line(result)
    assert "mnist not found in" in line and "data.download=false" in line and "data=mnist_sample" in line


@pytest.mark.slow
def test_dataset_directory_unreadable(train: TrainCLI, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    copy_mnist_files(data_dir)
    (data_dir / "mnist").chmod(0)
    # Root reads through any permission bit; without the two "override file permissions" capabilities it
    # meets the same refusal as any user (a file where the folder should be is a different mistake).
    as_user = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        result = subprocess.run(
            [*as_user, sys.executable, "train.py", "data=mnist", "data.download=false", f"paths.data_dir={data_dir}"],
            cwd=REPO_ROOT, env=cli_env(train.output_root, train.data_dir), capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
    finally:
        (data_dir / "mnist").chmod(0o755)
    assert result.returncode == 2
    line = error_line(result)
    assert "cannot read" in line or "cannot access" in line
    assert "permission denied" in line


def test_truncated_dataset_file(train: TrainCLI, tmp_path: Path) -> None:
    raw = copy_mnist_files(tmp_path / "data")
    broken = raw / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:5000])
    result = train("data=mnist", "data.download=false", f"paths.data_dir={tmp_path / 'data'}")
    assert result.returncode == 2
    line = error_line(result)
    assert str(broken) in line and "corrupt or truncated" in line


# ---------------------------------------------------------------- checkpoints and resume


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A finished two-epoch run: `last.pt` after epoch 2, `previous.pt` after epoch 1. Copy it before use."""
    cli = TrainCLI(tmp_path_factory.mktemp("two_epochs"), data_dir)
    result = cli(*TINY, "trainer.test=false", "logging.progress_bar=false")
    assert result.returncode == 0, result.stderr
    return cli.run_dir()


@pytest.mark.slow
def test_corrupt_checkpoint_falls_back_to_the_previous_one(two_epoch_run: Path, tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / two_epoch_run.name
    shutil.copytree(two_epoch_run, run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # truncated, as by a bad copy

    result = resume_cli(run_dir, data_dir, "trainer.max_epochs=3")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "last.pt is corrupt" in warnings[0] and "previous.pt" in warnings[0]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 3 and summary["global_step"] == 24
    assert [event.step for event in read_events(run_dir).Scalars("val/acc")] == [8, 16, 24]
    assert (run_dir / "checkpoints" / "last.pt.corrupt").is_file(), "the damaged file is set aside, not deleted"
    assert torch.load(run_dir / "checkpoints" / "previous.pt", weights_only=True)["trainer"]["epoch"] == 2


@pytest.mark.slow
def test_corrupt_checkpoint_without_a_good_previous_one(two_epoch_run: Path, tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / two_epoch_run.name
    shutil.copytree(two_epoch_run, run_dir)
    for name in ("last.pt", "previous.pt"):
        (run_dir / "checkpoints" / name).write_bytes(b"not a checkpoint")
    result = resume_cli(run_dir, data_dir, "trainer.max_epochs=3")
    assert result.returncode == 2
    line = error_line(result)
    assert "last.pt is corrupt or unreadable" in line and "previous.pt is unreadable too" in line


def test_resume_a_directory_that_is_not_a_run(tmp_path: Path, data_dir: Path) -> None:
    missing = resume_cli(tmp_path / "nowhere", data_dir)
    assert "no such directory" in error_line(missing)
    not_a_run = resume_cli(tmp_path, data_dir)
    assert "is not a run directory (no .hydra/config.yaml)" in error_line(not_a_run)


@pytest.mark.slow
def test_resume_a_run_without_a_checkpoint(two_epoch_run: Path, tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / two_epoch_run.name
    shutil.copytree(two_epoch_run, run_dir)
    shutil.rmtree(run_dir / "checkpoints")
    before = snapshot(run_dir)
    result = resume_cli(run_dir, data_dir)
    assert result.returncode == 2
    assert "has no checkpoint (checkpoints/last.pt)" in error_line(result)
    assert snapshot(run_dir) == before


# ---------------------------------------------------------------- where the run writes


def test_output_directory_not_writable(tmp_path: Path, data_dir: Path) -> None:
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the output folder should be")  # stops root too, unlike chmod
    result = TrainCLI(blocker / "inside", data_dir)(*TINY)
    assert result.returncode == 2
    line = error_line(result)
    assert "cannot create the run directory" in line and "TRAINSCOPE_OUTPUT_DIR" in line
    assert blocker.read_text() == "a file where the output folder should be"


@contextlib.contextmanager
def small_disk(directory: Path, size_bytes: int) -> Iterator[bool]:
    """A tmpfs of `size_bytes` at `directory` when this process may mount one (root); yields whether it did."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(directory)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.mark.slow
def test_disk_full_while_writing_a_checkpoint(two_epoch_run: Path, tmp_path: Path, data_dir: Path) -> None:
    """Epoch 3's checkpoint does not fit: the run fails in one line and epoch 2's checkpoint stays good.

    On a real small filesystem (a tmpfs sized to hold the run plus half a checkpoint) when it can be
    mounted; otherwise a per-process file size limit makes the same write fail.
    """
    checkpoint_size = (two_epoch_run / "checkpoints" / "last.pt").stat().st_size
    used = sum(path.stat().st_size for path in two_epoch_run.rglob("*") if path.is_file())
    with small_disk(tmp_path / "disk", used + checkpoint_size // 2 + 256 * 1024) as mounted:
        run_dir = tmp_path / "disk" / two_epoch_run.name
        shutil.copytree(two_epoch_run, run_dir)
        last = run_dir / "checkpoints" / "last.pt"
        good = last.read_bytes()

        def limit_file_size() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
            resource.setrlimit(resource.RLIMIT_FSIZE, (checkpoint_size // 2, checkpoint_size // 2))

        result = resume_cli(run_dir, data_dir, "trainer.max_epochs=3", preexec_fn=None if mounted else limit_file_size)
        assert result.returncode == 2
        line = error_line(result)
        assert f"could not write checkpoint {last}" in line and "the previous checkpoint is kept" in line
        if mounted:
            assert "No space left on device" in line
        assert last.read_bytes() == good
        assert torch.load(last, weights_only=True)["trainer"]["epoch"] == 2
        assert not list(last.parent.glob("*.tmp")), "no half-written file left behind"
        summary = json.loads((run_dir / "metrics.json").read_text())
        assert summary["status"] == "failed" and "could not write checkpoint" in summary["reason"]


# ---------------------------------------------------------------- training and sweeps


@pytest.mark.slow
def test_nan_loss(train: TrainCLI) -> None:
    result = train(*TINY, "optimizer=sgd", "optimizer.lr=1e30", "trainer.max_epochs=1")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: training failed: ") and "nan" in line.lower() and "optimizer.lr" in line
    summary = json.loads((train.run_dir() / "metrics.json").read_text())
    assert summary["status"] == "failed"


# ---------------------------------------------------------------- bad values


def test_infinite_learning_rate_is_rejected_up_front(train: TrainCLI) -> None:
    for value in ("inf", "nan"):
        result = train(*TINY, f"optimizer.lr={value}")
        assert result.returncode == 2
        assert f"optimizer.lr must be a positive number, got {value}" in error_line(result)
    assert not list(train.output_root.glob("runs/*/*/checkpoints")), "nothing trained"


@pytest.mark.slow
def test_no_validation_split_refuses_val_metrics(train: TrainCLI) -> None:
    result = train(*TINY, "data.val_fraction=0")
    assert result.returncode == 2
    line = error_line(result)
    assert "data.val_fraction=0 leaves no validation split" in line and "monitor.metric is val/acc" in line

    result = train(*TINY, "data.val_fraction=0", "monitor.metric=train/acc")  # the sweepers' value still val/
    assert result.returncode == 2
    assert "optimized_metric is val/acc_best" in error_line(result)

    result = train(*TINY, "data.val_fraction=0.001")  # rounds to no validation sample: said, not hidden
    assert result.returncode == 2
    assert "data.val_fraction=0.001 leaves no validation samples" in error_line(result)


@pytest.mark.slow
def test_no_validation_split_trains_on_train_metrics_and_logs_no_val_metric(train: TrainCLI) -> None:
    result = train(*TINY, "data.val_fraction=0", "monitor.metric=train/acc", "optimized_metric=train/acc")
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert not [tag for tag in summary["final"] if tag.startswith("val/")]
    assert not [tag for tag in summary["best"] if tag.startswith("val/")]
    tags = read_events(run_dir).Tags()["scalars"]
    assert "train/acc" in tags and not [tag for tag in tags if tag.startswith("val")]
    assert (run_dir / "checkpoints" / "best.pt").is_file(), "best.pt follows train/acc"


@pytest.mark.slow
def test_a_diverged_run_without_logging_steps_fails(train: TrainCLI) -> None:
    # 4 steps an epoch, a logging step every 20: only the epoch's mean train loss shows the divergence.
    result = train("data=synthetic", "model=mlp", "optimizer.lr=1e9", "trainer.max_epochs=2")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: training failed: training diverged: epoch 1's mean train loss")
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "failed" and summary["global_step"] == 4
    events = read_events(run_dir)
    assert "train/loss_step" not in events.Tags()["scalars"], "no logging step happened"
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_END_INFO_TAG]
    assert metadata.parse_session_end_info_plugin_data(content).status == api_pb2.STATUS_FAILURE
    assert [point.value for point in events.Scalars("trial_state")] == [5.0, 3.0]  # running, then failed
    assert [point.value for point in events.Scalars("health/lr_too_high")] == [1.0]
