"""The speed options as a user meets them: reading metrics less often changes nothing but the step curves,
channels_last / torch.compile / bf16 runs train on CPU and save checkpoints a plain model loads, and config
commands answer without importing torch. (Timings live in benchmarks/, never in tests.)"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, cli_env
from tests.helpers.events import read_events
from trainscope.models import MLP, SmallCNN

EPOCH_TAGS = ["train/loss", "train/acc", "val/loss", "val/acc"]
TINY_CNN = ["model=cnn", "model.channels=[4,8]", "model.hidden_size=16"]


def epoch_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = read_events(run_dir)
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.slow
def test_epoch_means_do_not_depend_on_how_often_metrics_are_read(tmp_path: Path, data_dir: Path) -> None:
    runs = {}
    for every in (1, 4):
        cli = TrainCLI(tmp_path / f"every_{every}", data_dir)
        args = [*TINY, "trainer.deterministic=true", f"logging.log_every_n_steps={every}", "logging=minimal"]
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        runs[every] = (epoch_curves(cli.run_dir()), json.loads((cli.run_dir() / "metrics.json").read_text()))

    (every_step, every_step_summary), (every_fourth, every_fourth_summary) = runs[1], runs[4]
    # 8 steps per epoch, 2 epochs: the step curves differ in length...
    assert len(every_step["train/loss_step"]) == 16
    assert len(every_fourth["train/loss_step"]) == 4
    # ...the epoch means do not: the device-side sums are the same whenever they are read.
    for tag in EPOCH_TAGS:
        assert every_step[tag] == every_fourth[tag], tag
        assert len(every_step[tag]) == 2
    for tag in EPOCH_TAGS:
        assert every_step_summary["final"][tag] == every_fourth_summary["final"][tag]
    # A window of 4 steps is the mean of those 4 per-step values (each batch holds 32 samples but the last).
    first_window = [value for _, value in every_step["train/loss_step"][:4]]
    assert every_fourth["train/loss_step"][0][1] == pytest.approx(sum(first_window) / 4, rel=1e-5)


def load_last_checkpoint(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return checkpoint["model"]


@pytest.mark.slow
def test_channels_last_run_trains_and_saves_a_plain_state_dict(train: TrainCLI) -> None:
    result = train(*TINY, *TINY_CNN, "trainer.channels_last=true")
    assert result.returncode == 0, result.stderr
    summary = json.loads((train.run_dir() / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert math.isfinite(summary["final"]["train/loss"])

    model = SmallCNN(input_shape=(1, 28, 28), num_classes=10, channels=(4, 8), hidden_size=16)
    model.load_state_dict(load_last_checkpoint(train.run_dir()))  # strict: same keys, same shapes


@pytest.mark.slow
def test_compiled_run_saves_a_state_dict_an_uncompiled_model_loads(train: TrainCLI) -> None:
    # The eager backend: dynamo's capture and the OptimizedModule wrapper whose `_orig_mod.` keys must not reach the
    # checkpoint; the backend itself is torch's (inductor builds C++ kernels for about a minute on 2 cores, which
    # benchmarks/gpu.py times on a GPU with trainer.compile=true).
    result = train(*TINY, "trainer.compile=eager", timeout=600)
    assert result.returncode == 0, result.stderr
    state = load_last_checkpoint(train.run_dir())
    assert not [key for key in state if key.startswith("_orig_mod.")]
    MLP(input_shape=(1, 28, 28), num_classes=10).load_state_dict(state)


@pytest.mark.slow
def test_unknown_compile_backend_is_a_one_line_error(train: TrainCLI) -> None:
    result = train(*TINY, "trainer.compile=warp_speed")
    assert result.returncode == 2
    assert "trainer.compile" in result.stderr and "warp_speed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bf16_runs_on_cpu(train: TrainCLI) -> None:
    result = train(*TINY, "trainer.precision=bf16", "trainer.device=cpu")
    assert result.returncode == 0, result.stderr
    summary = json.loads((train.run_dir() / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert 0.0 < summary["final"]["train/loss"] < 10.0


def imported_top_level_packages(args: list[str], tmp_path: Path, data_dir: Path) -> set[str]:
    """Top-level packages a `python -X importtime train.py <args>` run imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "train.py", *args],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "outputs", data_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "no -X importtime output"
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["model=resnet18", "data=cifar10", "--cfg", "job"]])
def test_config_commands_do_not_import_torch(tmp_path: Path, data_dir: Path, args: list[str]) -> None:
    imported = imported_top_level_packages(args, tmp_path, data_dir)
    assert "hydra" in imported
    assert "torch" not in imported
    assert "torchvision" not in imported


@pytest.mark.slow
def test_scalar_only_run_does_not_import_torchvision(tmp_path: Path, data_dir: Path) -> None:
    """torchvision is needed only to download, to decode a split the first time, for the DataLoader path,
    resnet18 and image grids; a scalars-only run on synthetic data never pays for importing it."""
    imported = imported_top_level_packages([*TINY, "trainer.max_epochs=1", "logging=minimal"], tmp_path, data_dir)
    assert "torch" in imported
    assert "torchvision" not in imported
