"""Callbacks in-process: the one builder, checkpointing, early stopping and signals on a real Trainer (fast)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from tests.helpers.cli import REPO_ROOT
from tests.helpers.in_process import make_trainer
from trainscope.callbacks.build import build_callbacks
from trainscope.callbacks.checkpoint import CheckpointCallback
from trainscope.callbacks.early_stopping import EarlyStopping
from trainscope.callbacks.stop_on_signal import PhaseCut, StopOnSignal
from trainscope.config.resolvers import register_resolvers
from trainscope.config.schema import validate_config
from trainscope.core.checkpoint_io import load_checkpoint
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import BEST, CHECKPOINT_DIR, LAST, RunStatus


def composed(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.parametrize(
    ("preset", "loggers"),
    [
        ("minimal", ["monitor/memory"]),
        (
            "default",
            [
                "monitor/memory",
                "monitor/text",
                "monitor/histograms",
                "monitor/input_images",
                "monitor/misclassified",
                "monitor/confusion_matrix",
            ],
        ),
    ],
)
def test_one_builder_makes_every_callback_in_hook_order(preset: str, loggers: list[str]) -> None:
    callbacks = build_callbacks(composed(f"logging={preset}"))
    names = list(callbacks.callbacks)
    configured = ["early_stopping", "lr_monitor", "health_nonfinite", "health_gradients"]
    assert names[: len(configured)] == configured
    assert [name for name in names if name.startswith("monitor/")] == loggers
    assert isinstance(callbacks.callbacks["stop_on_signal"], StopOnSignal)
    # a checkpoint comes after everything it claims; metrics_csv: every run writes metrics.csv (issue 26)
    assert names[-3:] == ["metrics_csv", "stop_on_signal", "checkpoint"]

    none = build_callbacks(composed("callbacks=none", "logging=minimal"))
    assert list(none.callbacks) == ["monitor/memory", "metrics_csv", "stop_on_signal"]  # metrics_csv: issue 26


def test_every_validation_rule_names_the_key_in_one_line() -> None:
    for override, message in [
        ("callbacks.checkpoint.every_n_steps=0", "callbacks.checkpoint.every_n_steps must be null or a positive"),
        ("logging.num_images=0", "logging.num_images must be an integer >= 1, got 0"),
        ("logging.images=maybe", "logging.images must be true or false, got 'maybe'"),
        ("scheduler=step", None),
    ]:
        cfg = composed(override)
        if message is None:
            validate_config(cfg)
            continue
        with pytest.raises(ConfigError, match=message):
            validate_config(cfg)


def test_checkpoint_callback_writes_last_and_best_when_the_metric_improves(tmp_path: Path) -> None:
    checkpoint = CheckpointCallback(monitor="val/acc", mode="max", every_n_steps=3)
    trainer = make_trainer(tmp_path, {"checkpoint": checkpoint})
    trainer.fit()
    directory = tmp_path / CHECKPOINT_DIR
    last = load_checkpoint(directory / LAST)
    assert last["trainer"]["global_step"] == 10 and last["config_hash"] == "test"
    assert (directory / BEST).is_file()
    assert (
        last["callbacks"]["checkpoint"]["best"]
        == checkpoint.tracker.best
        == max(epoch["val/acc"] for epoch in trainer.state.history)
    )


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path: Path) -> None:
    stopping = EarlyStopping(monitor="val/loss", mode="min", patience=1, min_delta=1e9)
    trainer = make_trainer(tmp_path, {"early_stopping": stopping}, max_epochs=5)
    trainer.fit()
    assert (trainer.status, trainer.state.epoch) == (RunStatus.STOPPED_EARLY, 2)
    assert trainer.stop_reason.startswith("early stopping: val/loss did not improve for 1 epochs")
    restored = EarlyStopping(monitor="val/loss", mode="min")
    restored.load_state_dict(stopping.state_dict())
    assert restored.tracker.best == stopping.tracker.best and restored.epochs_without_improvement == 1


def test_a_signal_stops_the_run_after_the_current_step(tmp_path: Path) -> None:
    handler = StopOnSignal()
    trainer = make_trainer(tmp_path, {"stop_on_signal": handler})
    handler.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # recorded by the handler; the loop sees it at its next hook
        trainer.fit()
    finally:
        handler.restore()
    # before the first step: the run's start-up (`train.py` installs the handler when the run directory exists)
    assert (trainer.status, trainer.stop_reason) == (RunStatus.INTERRUPTED, "interrupted by SIGTERM during start-up")
    assert trainer.state.global_step == 0 and handler.signal_number == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert torch.is_tensor(trainer.running_sums)


def test_a_signal_in_a_phase_cut_at_once_ends_it_at_once() -> None:
    """The test phase: no step to finish, so the first signal raises PhaseCut where the code is (a real signal,
    the handler installed as the run installs it); one that came before the phase raises on entering it."""
    handler = StopOnSignal().install()
    try:
        with pytest.raises(PhaseCut, match="SIGTERM"), handler.cutting_at_once():
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("the phase went on after the signal")
        with pytest.raises(PhaseCut), handler.cutting_at_once():
            pytest.fail("the phase started after a signal")
    finally:
        handler.restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
