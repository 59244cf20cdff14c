"""The training loop in-process: a real Trainer on synthetic data, no subprocess (fast)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.helpers.events import read_events
from tests.helpers.in_process import make_trainer
from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer, metrics):
        trainer.request_stop("enough", status="stopped_early")


class Recorder(Callback):
    def __init__(self) -> None:
        self.hooks: list[str] = []

    def on_fit_start(self, trainer):
        self.hooks.append("fit_start")

    def on_train_batch_end(self, trainer, step_metrics):
        self.hooks.append("batch" if step_metrics is None else "log_step")

    def on_epoch_end(self, trainer, metrics):
        self.hooks.append("epoch_end")

    def on_fit_end(self, trainer):
        self.hooks.append(f"fit_end:{trainer.status}")


def test_fit_trains_every_epoch_logs_and_completes(tmp_path: Path) -> None:
    recorder = Recorder()
    trainer = make_trainer(tmp_path, {"recorder": recorder})
    trainer.fit()
    trainer.tensorboard.close()

    assert trainer.status == RunStatus.COMPLETED
    assert trainer.state.epoch == 2 and trainer.state.global_step == 10 and trainer.state.batch_in_epoch == 0
    assert [metrics["epoch"] for metrics in trainer.state.history] == [1.0, 2.0]
    assert trainer.state.history[-1]["train/loss"] < trainer.state.history[0]["train/loss"]
    # logging steps every 2nd of 5 steps an epoch, as the hooks saw them
    assert recorder.hooks[0] == "fit_start" and recorder.hooks[-1] == "fit_end:completed"
    assert recorder.hooks.count("log_step") == 5 and recorder.hooks.count("epoch_end") == 2
    events = read_events(tmp_path)
    assert [event.step for event in events.Scalars("val/acc")] == [5, 10]
    assert [event.step for event in events.Scalars("train/loss_step")] == [2, 4, 6, 8, 10]


def test_a_stop_request_ends_the_run_with_its_status_and_the_first_reason_wins(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, {"stop": StopAfterFirstEpoch()}, max_epochs=5)
    trainer.fit()
    assert (trainer.status, trainer.stop_reason, trainer.state.epoch) == (RunStatus.STOPPED_EARLY, "enough", 1)
    trainer.request_stop("too late", status="failed")
    assert (trainer.status, trainer.stop_reason) == (RunStatus.STOPPED_EARLY, "enough")
    with pytest.raises(ValueError):
        trainer.request_stop("not a stop", status="completed")


def test_a_nan_loss_fails_the_run_without_any_callback(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path)
    for group in trainer.optimizer.param_groups:
        group["lr"] = 1e30
    trainer.fit()
    assert trainer.status == RunStatus.FAILED
    assert "train loss is" in trainer.stop_reason and "optimizer.lr" in trainer.stop_reason


def test_state_dict_round_trip_continues_exactly(tmp_path: Path) -> None:
    straight = make_trainer(tmp_path / "straight")
    straight.fit()

    first = make_trainer(tmp_path / "first", max_epochs=1)
    first.fit()
    state = first.state_dict()
    resumed = make_trainer(tmp_path / "resumed")
    resumed.load_state_dict(state)
    assert resumed.state.epoch == 1 and resumed.state.global_step == 5
    resumed.fit()

    assert resumed.state.global_step == straight.state.global_step
    for name, value in straight.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[name], value), name
    last, expected = resumed.state.history[-1], straight.state.history[-1]
    for tag in ("train/loss", "val/loss", "val/acc"):
        assert math.isclose(last[tag], expected[tag], rel_tol=1e-6), tag
