"""Writes `metrics.csv` (`trainscope.core.metrics_csv`): every epoch's scalars as a row, live and across resumes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from trainscope.core.callback import Callback
from trainscope.core.metrics_csv import append_row, cut_rows_after
from trainscope.tensorboard.writer import per_group_tags

if TYPE_CHECKING:
    from trainscope.engine.trainer import Trainer


class MetricsCsv(Callback):
    """One row per epoch with the tags the loop logged at its end, plus `lr_epoch` (the rates the next epoch uses).

    Built for every run (rank 0 only) and run before the checkpoint callbacks, like the TensorBoard loggers: a
    checkpoint at step N is written only once the row of step N is in the file, so a resumed run that cuts the
    rows after its checkpoint's step loses none it will not write again.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        cut_rows_after(trainer.run_dir, trainer.state.global_step)  # what a killed segment wrote after its checkpoint

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        rates = [float(group["lr"]) for group in trainer.optimizer.param_groups]
        row = {**metrics, **per_group_tags("lr_epoch", rates)}
        append_row(trainer.run_dir, time.time(), trainer.state.global_step, row)
