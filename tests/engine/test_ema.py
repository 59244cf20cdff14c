"""`callbacks.ema`: the weights' moving average is validated as `val_ema/*` beside `val/*`, kept in the checkpoint
(a resumed run continues it exactly) and is what a checkpoint is tested with."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from tests.helpers.in_process import make_trainer
from trainscope.core.callback import CallbackList
from trainscope.core.checkpoint_io import weights_to_test
from trainscope.core.errors import ConfigError
from trainscope.engine.ema import ExponentialMovingAverage


def ema_trainer(run_dir: Path, max_epochs: int):
    trainer = make_trainer(run_dir, max_epochs=max_epochs)
    trainer.callbacks = CallbackList({"ema": ExponentialMovingAverage(decay=0.8, every_n_steps=2, start_step=3)})
    return trainer


def test_resuming_after_an_epoch_continues_the_average_exactly(tmp_path: Path) -> None:
    straight = ema_trainer(tmp_path / "straight", max_epochs=2)
    straight.fit()
    straight.tensorboard.close()

    first = ema_trainer(tmp_path / "first", max_epochs=1)
    first.fit()
    first.tensorboard.close()
    saved = copy.deepcopy(first.state_dict())  # what last.pt holds after epoch 1
    resumed = ema_trainer(tmp_path / "resumed", max_epochs=2)
    resumed.load_state_dict(saved)
    resumed.fit()
    resumed.tensorboard.close()

    history = straight.state.history
    assert {"val_ema/loss", "val_ema/acc", "val/loss", "val/acc"} <= set(history[-1])
    assert history[-1]["val_ema/loss"] != history[-1]["val/loss"], "the average is not the weights"
    assert [epoch["val_ema/loss"] for epoch in resumed.state.history] == [epoch["val_ema/loss"] for epoch in history]
    expected = straight.callbacks.callbacks["ema"].average
    actual = resumed.callbacks.callbacks["ema"].average
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name
    state = straight.state_dict()
    assert weights_to_test(state) is state["callbacks"]["ema"]["ema_weights"]  # test and eval.py use the average
    for name, value in straight.model.state_dict().items():  # validation put the weights back
        assert torch.equal(value, state["model"][name])


def test_a_decay_outside_0_1_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"callbacks.ema.decay must be a number in \(0, 1\), e.g. 0.999, got 1.5"):
        ExponentialMovingAverage(decay=1.5)
