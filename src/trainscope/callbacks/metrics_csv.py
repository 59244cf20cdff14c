"""Writes `metrics.csv` (`trainscope.core.metrics_csv`): every epoch's scalars as a row, live and across resumes."""

from __future__ import annotations

import time

from trainscope.core.callback import Callback
from trainscope.core.metrics_csv import append_row, cut_rows_after
from trainscope.core.view import TrainerView


class MetricsCsv(Callback):
    """One row per epoch: every scalar TensorBoard got at the epoch's step after its last training batch.

    That is the loop's epoch metrics (`train/loss`, `val/acc`, `epoch`, ...) and what the callbacks log at the epoch's
    end (`lr_epoch`, `health/*`, per-class precision and recall, memory), not the step scalars of the last batch
    (`train/loss_step`, `lr`). Built for every run (rank 0 only) and run after the other callbacks but before the
    checkpoint callbacks: a checkpoint at step N is written only once the row of step N is in the file, so a resumed
    run that cuts the rows after its checkpoint's step loses none it will not write again.
    """

    def on_fit_start(self, trainer: TrainerView) -> None:
        cut_rows_after(trainer.run_dir, trainer.state.global_step)  # what a killed segment wrote after its checkpoint

    def on_train_epoch_start(self, trainer: TrainerView) -> None:
        trainer.tensorboard.record_scalars()

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        trainer.tensorboard.record_scalars()  # what this step logged is a step's, not the epoch's

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        row = {**metrics, **trainer.tensorboard.recorded_scalars()}
        append_row(trainer.run_dir, time.time(), trainer.state.global_step, row)
