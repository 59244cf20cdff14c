"""Checkpointing as a callback: when to write `last.pt` and `best.pt` (how is `trainscope.core.checkpoint_io`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainscope.callbacks.metric_tracker import MetricTracker
from trainscope.core.callback import Callback
from trainscope.core.checkpoint_io import keep_as_best, save_checkpoint
from trainscope.core.run_dir import RunStatus

if TYPE_CHECKING:
    from trainscope.engine.trainer import Trainer


class CheckpointCallback(Callback):
    """Writes `checkpoints/last.pt` after every epoch and `checkpoints/best.pt` when `monitor` improves.

    With `every_n_steps`, `last.pt` is also written every that many optimizer steps (mid-epoch), so a
    crash or kill loses at most that many steps. `every_n_steps` is checked with the rest of the config
    (`trainscope.config.schema`).
    """

    def __init__(self, monitor: str, mode: str = "max", every_n_steps: int | None = None) -> None:
        self.tracker = MetricTracker(monitor, mode)
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer: Trainer, step_metrics: dict[str, float] | None) -> None:
        if self.every_n_steps is None or trainer.state.global_step % self.every_n_steps != 0:
            return
        if trainer.stopping:
            return  # a failed step must not replace a good checkpoint; an interruption writes its own
        save_checkpoint(trainer.run_dir, trainer, trainer.config_hash)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.status == RunStatus.FAILED:
            return  # never overwrite the last good checkpoint with a broken model
        improved = self.tracker.update(metrics)
        save_checkpoint(trainer.run_dir, trainer, trainer.config_hash)
        if improved:
            keep_as_best(trainer.run_dir)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
