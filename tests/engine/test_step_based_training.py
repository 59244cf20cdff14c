"""Step-based training: `trainer.max_steps`, `trainer.val_check_interval` and `trainer.accumulate_grad_batches`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.in_process import make_trainer
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.engine.steps import epochs_to_train, total_steps


def test_accumulating_4_batches_of_8_equals_one_batch_of_32(tmp_path: Path) -> None:
    """144 training images: 5 steps of 32 (the last 16), or 5 steps of 4 batches of 8 (the last 2)."""
    whole = make_trainer(tmp_path / "whole", max_epochs=1)
    whole.fit()
    accumulated = make_trainer(tmp_path / "accumulated", batch_size=8, max_epochs=1, accumulate_grad_batches=4)
    accumulated.fit()
    assert whole.state.global_step == accumulated.state.global_step == 5
    for name, weight in whole.model.state_dict().items():
        torch.testing.assert_close(accumulated.model.state_dict()[name], weight, rtol=1e-5, atol=1e-6, msg=name)
    assert accumulated.state.history[0]["train/loss"] == pytest.approx(whole.state.history[0]["train/loss"], rel=1e-5)
    assert accumulated.state.history[0]["val/loss"] == pytest.approx(whole.state.history[0]["val/loss"], rel=1e-5)


def test_max_steps_validates_every_val_check_interval_steps(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, batch_size=8, max_steps=7, val_check_interval=3, accumulate_grad_batches=2)
    trainer.fit()
    assert trainer.state.global_step == 7 and trainer.status == "completed"
    assert [round(epoch["epoch"]) for epoch in trainer.state.history] == [1, 2, 3]  # after steps 3, 6 and 7
    assert all("val/loss" in epoch for epoch in trainer.state.history)


def test_the_run_length_in_steps_follows_the_trainer_keys() -> None:
    by_steps = TrainerConfig(max_steps=2000, val_check_interval=250, max_epochs=3)
    assert epochs_to_train(by_steps, source_length=1307) == 8 and total_steps(by_steps, 1307) == 2000
    by_epochs = TrainerConfig(max_epochs=3, accumulate_grad_batches=4, limit_train_batches=10)
    assert epochs_to_train(by_epochs, 100) == 3 and total_steps(by_epochs, 100) == 9  # ceil(10 / 4) a epoch
