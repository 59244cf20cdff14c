"""Checkpointing as a callback: when to write `last.pt` and `best.pt` (how is `trainscope.core.checkpoint_io`).

It runs on every rank, so every rank's tracker agrees on "best"; `Trainer.save_checkpoint` writes on rank 0 only.
"""

from __future__ import annotations

from typing import Any

from trainscope.callbacks.metric_tracker import MetricTracker
from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView


class CheckpointCallback(Callback):
    """Writes `checkpoints/last.pt` after every epoch and `checkpoints/best.pt` when `monitor` improves.

    With `every_n_steps`, `last.pt` is also written every that many optimizer steps (mid-epoch), so a
    crash or kill loses at most that many steps. `every_n_steps` is checked with the rest of the config
    (`trainscope.config.schema`).

    `build_callbacks` runs it after every other callback, and `Trainer.save_checkpoint` flushes TensorBoard
    first: a checkpoint at step N promises that every point logged at step N is on disk, since a run resumed
    from it logs again only from step N + 1 (`trainscope.session.resume.purge_step`).
    """

    def __init__(self, monitor: str, mode: str = "max", every_n_steps: int | None = None) -> None:
        self.tracker = MetricTracker(monitor, mode)
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        if self.every_n_steps is None or trainer.state.global_step % self.every_n_steps != 0:
            return
        if trainer.stopping:
            return  # a failed step must not replace a good checkpoint; an interruption writes its own
        if trainer.state.batch_in_epoch >= trainer.batches_per_epoch:
            return  # the epoch-end checkpoint claims this step, once its epoch metrics are logged too
        trainer.save_checkpoint()

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        if trainer.status == RunStatus.FAILED:
            return  # never overwrite the last good checkpoint with a broken model
        trainer.save_checkpoint(best=self.tracker.update(metrics))

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
