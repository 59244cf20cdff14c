"""Live monitoring, health checks and callbacks, checked the way a user looks at them: event files read back
with TensorBoard's own readers, exit codes, metrics.json and checkpoints of real `python train.py` runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers.cli import TINY
from tests.helpers.events import read_events
from trainscope.callbacks.health import GradientExplosionCheck, LossTrendCheck, OverfittingCheck
from trainscope.core.callback import Callback
from trainscope.tensorboard.classification import confusion_counts, precision_recall, render_confusion_matrix

# 231 train samples in batches of 32 → 8 steps per epoch; TINY logs every 2 steps for 2 epochs.
EPOCH_STEPS = [8, 16]
LOGGING_STEPS = list(range(2, 17, 2))
HEALTH_CHECKS = ["nonfinite", "exploding_gradients", "loss_rising", "overfitting", "lr_too_high"]


def steps(events: EventAccumulator, kind: str, tag: str) -> list[int]:
    getter = {"scalars": events.Scalars, "images": events.Images, "histograms": events.Histograms}[kind]
    return [event.step for event in getter(tag)]


def text_of(events: EventAccumulator, tag: str) -> str:
    return events.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_full_logging_writes_scalars_histograms_images_text_and_graph(train) -> None:
    # A tiny learning rate keeps the model wrong often enough to show misclassified examples.
    result = train(*TINY, "logging=full", "logging.log_every_n_steps=2", "optimizer.lr=1e-5")
    assert result.returncode == 0, result.stderr
    events = read_events(train.run_dir())
    tags = events.Tags()

    for tag in ["train/loss_step", "train/grad_norm", "train/samples_per_sec", "lr", "momentum"]:
        assert steps(events, "scalars", tag) == LOGGING_STEPS, tag
    epoch_tags = ["val/loss", "val/acc", "lr_epoch", "val/precision_macro", "val/recall_macro"]
    epoch_tags += [f"val_precision/class_{index}" for index in range(10)]
    epoch_tags += [f"val_recall/class_{index}" for index in range(10)]
    for tag in epoch_tags:
        assert steps(events, "scalars", tag) == EPOCH_STEPS, tag
    # a healthy run has no health/* chart (issue 29: the Scalars tab opens on the run's own curves)
    assert not [tag for tag in tags["scalars"] if tag.startswith("health/")]
    assert not [tag for tag in tags["scalars"] if tag.startswith("memory/")]  # CUDA only

    # full: histograms of every layer's weights and gradients after every epoch
    weight_tags = [tag for tag in tags["histograms"] if tag.startswith("weights/")]
    assert "weights/net.1.weight" in weight_tags and len(weight_tags) == 4  # two Linear layers
    for tag in weight_tags:
        assert steps(events, "histograms", tag) == EPOCH_STEPS
        assert steps(events, "histograms", tag.replace("weights/", "gradients/", 1)) == EPOCH_STEPS

    assert steps(events, "images", "images/train_inputs") == [0]
    assert steps(events, "images", "val/confusion_matrix") == EPOCH_STEPS
    assert steps(events, "images", "images/val_misclassified") == EPOCH_STEPS
    confusion = events.Images("val/confusion_matrix")[-1]
    assert confusion.width > 300 and confusion.height > 300

    config_text = text_of(events, "config/resolved")
    assert config_text.startswith("```yaml") and "lr: 1.0e-05" in config_text
    assert "parameters" in text_of(events, "model/summary")
    assert tags["graph"]


@pytest.mark.slow
def test_minimal_logging_with_no_callbacks_writes_scalars_only(train) -> None:
    result = train(*TINY, "logging=minimal", "logging.log_every_n_steps=2", "callbacks=none")
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()
    events = read_events(run_dir)
    tags = events.Tags()
    assert not tags["images"] and not tags["histograms"] and not tags["graph"]
    assert [tag for tag in tags["tensors"] if not tag.startswith("_hparams_/")] == []
    assert steps(events, "scalars", "val/acc") == EPOCH_STEPS
    assert steps(events, "scalars", "train/loss_step") == LOGGING_STEPS
    assert not [tag for tag in tags["scalars"] if tag.startswith(("health/", "val_precision/", "lr_epoch"))]
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_huge_learning_rate_fails_the_run_with_advice(train) -> None:
    result = train(*TINY, "optimizer.lr=1e6")
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith("error: training failed: training diverged") and "optimizer.lr" in line
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "failed" and "learning rate" in summary["reason"]
    assert summary["global_step"] < 8, "stopped within the first epoch"
    events = read_events(run_dir)
    assert [event.value for event in events.Scalars("health/lr_too_high")] == [1.0]
    assert "optimizer.lr" in text_of(events, "health/lr_too_high")
    assert "health/lr_too_high" in (run_dir / "train.log").read_text()


class PoisonGradients(Callback):
    """Test helper: from optimizer step `at_step` on, every gradient is NaN (the loss itself stays finite)."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_fit_start(self, trainer: Any) -> None:
        def poison(grad: torch.Tensor) -> torch.Tensor:
            return grad * math.nan if trainer.state.global_step + 1 >= self.at_step else grad

        for parameter in trainer.model.parameters():
            parameter.register_hook(poison)


@pytest.mark.slow
def test_nan_gradients_stop_the_run_and_keep_the_last_good_checkpoint(train) -> None:
    result = train(
        *TINY,
        "+callbacks.poison._target_=tests.callbacks.test_monitoring.PoisonGradients",
        "+callbacks.poison.at_step=12",
    )
    assert result.returncode == 1
    assert "gradient norm is nan at step 12" in one_error_line(result.stderr)
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "failed" and "trainer.grad_clip" in summary["reason"]
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["trainer"]["global_step"] == 8, "the epoch-1 checkpoint stays; the broken model is not saved"
    assert all(torch.isfinite(value).all() for value in last["model"].values())
    events = read_events(run_dir)
    assert [(event.step, event.value) for event in events.Scalars("health/nonfinite")] == [(12, 1.0)]


class RecordHooks(Callback):
    """Test helper: appends each hook it sees (with what it was given) to a JSON-lines file in the run dir."""

    def __init__(self, filename: str = "hooks.jsonl") -> None:
        self.filename = filename
        self.path: Path | None = None

    def _record(self, hook: str, **facts: Any) -> None:
        assert self.path is not None
        with self.path.open("a") as handle:
            handle.write(json.dumps({"hook": hook, **facts}) + "\n")

    def on_fit_start(self, trainer: Any) -> None:
        self.path = trainer.run_dir / self.filename
        self._record("on_fit_start")

    def on_train_epoch_start(self, trainer: Any) -> None:
        self._record("on_train_epoch_start", epoch=trainer.state.epoch)

    def on_train_batch_end(self, trainer: Any, step_metrics: dict[str, float] | None) -> None:
        self._record("on_train_batch_end", step=trainer.state.global_step, logged=step_metrics is not None)

    def on_validation_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        self._record("on_validation_end", keys=sorted(metrics))

    def on_epoch_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        self._record("on_epoch_end", epoch=trainer.state.epoch, val_acc=metrics["val/acc"])

    def on_fit_end(self, trainer: Any) -> None:
        self._record("on_fit_end", status=trainer.status)


@pytest.mark.slow
def test_custom_callback_from_the_command_line_sees_early_stopping(train) -> None:
    # (override names become the run directory's name: kept short, under the file system's 255 bytes)
    result = train(
        *[arg for arg in TINY if not arg.startswith("trainer.max_epochs")],
        "trainer.max_epochs=6",
        "optimizer.lr=1e-12",  # the model cannot improve, so val/acc never gets better
        "callbacks.early_stopping.patience=2",
        "+callbacks.recorder._target_=tests.callbacks.test_monitoring.RecordHooks",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((train.run_dir() / "metrics.json").read_text())
    assert summary["status"] == "stopped_early" and summary["epochs_run"] == 3
    assert "did not improve for 2 epochs" in summary["reason"]

    calls = [json.loads(line) for line in (train.run_dir() / "hooks.jsonl").read_text().splitlines()]
    hooks = [call["hook"] for call in calls]
    assert hooks[0] == "on_fit_start" and hooks[-1] == "on_fit_end" and calls[-1]["status"] == "stopped_early"
    assert [call["epoch"] for call in calls if call["hook"] == "on_epoch_end"] == [1, 2, 3]
    batches = [call for call in calls if call["hook"] == "on_train_batch_end"]
    assert [call["step"] for call in batches] == list(range(1, 25))
    assert [call["step"] for call in batches if call["logged"]] == list(range(2, 25, 2))
    assert all(call["keys"] == ["val/acc", "val/loss"] for call in calls if call["hook"] == "on_validation_end")


# --------------------------------------------------------------------------------------------------------
# the pieces, without a training run


def test_confusion_matrix_precision_and_recall() -> None:
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    matrix = confusion_counts(targets, predicted, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    precision, recall = precision_recall(matrix)
    assert precision.tolist() == [0.5, 2 / 3, 1.0]
    assert recall.tolist() == [0.5, 1.0, 0.5]
    image = render_confusion_matrix(matrix, ["cat", "dog", "bird"])
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == "uint8"


class FakeWriter:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.scalars: list[tuple[str, float, int]] = []

    def add_text(self, tag: str, text: str, step: int) -> None:
        self.texts.append(text)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))


def fake_trainer(history: list[dict[str, float]]) -> SimpleNamespace:
    writer = FakeWriter()
    return SimpleNamespace(
        state=SimpleNamespace(epoch=len(history), global_step=10 * len(history), history=history),
        tensorboard=SimpleNamespace(writer=writer, flush=lambda: None),
        stops=[],
    )


def test_overfitting_and_rising_loss_checks_warn_once_with_advice(caplog) -> None:
    overfitting = [{"train/loss": 1.0 - 0.1 * i, "val/loss": 0.5 + 0.1 * i} for i in range(4)]
    trainer = fake_trainer(overfitting)
    check = OverfittingCheck(patience=3)
    check.on_epoch_end(trainer, overfitting[-1])
    overfitting.append({"train/loss": 0.5, "val/loss": 1.0})  # still overfitting: no second warning
    trainer.state.epoch, trainer.state.global_step = 5, 50
    check.on_epoch_end(trainer, overfitting[-1])
    assert len(trainer.tensorboard.writer.texts) == 1 and "weight_decay" in trainer.tensorboard.writer.texts[0]
    assert trainer.tensorboard.writer.scalars == [("health/overfitting", 1.0, 40), ("health/overfitting", 1.0, 50)]
    assert "health/overfitting" in caplog.text

    healthy = [{"train/loss": 1.0 - 0.1 * i, "val/loss": 0.9 - 0.1 * i} for i in range(4)]
    trainer = fake_trainer(healthy)
    OverfittingCheck(patience=3).on_epoch_end(trainer, healthy[-1])
    LossTrendCheck(patience=3).on_epoch_end(trainer, healthy[-1])
    assert trainer.tensorboard.writer.texts == []

    rising = [{"train/loss": 1.0 + 0.1 * i} for i in range(4)]
    trainer = fake_trainer(rising)
    LossTrendCheck(patience=3).on_epoch_end(trainer, rising[-1])
    assert "rose for 3 epochs" in trainer.tensorboard.writer.texts[0]


def test_gradient_explosion_check_compares_with_the_running_median() -> None:
    trainer = fake_trainer([])
    check = GradientExplosionCheck(factor=10, min_history=5)
    for norm in [1.0, 1.2, 0.9, 1.1, 1.0, 5.0]:
        check.on_train_batch_end(trainer, {"train/grad_norm": norm})
    assert trainer.tensorboard.writer.texts == []
    check.on_train_batch_end(trainer, {"train/grad_norm": 50.0})
    assert "running median" in trainer.tensorboard.writer.texts[0]
