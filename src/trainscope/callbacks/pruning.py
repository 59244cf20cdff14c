"""Pruning inside trainscope's loop: report the pruning metric each epoch, stop when the pruner says.

Added by `build_callbacks` whenever `trainscope.trial.current_trial()` finds a trial (key `optuna_pruning`),
so no config of the app names it. A pruned run ends like any stopped run (checkpoints, TensorBoard data
and `metrics.json` stay) with status "pruned"; the sweeper then records the trial PRUNED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView

if TYPE_CHECKING:
    from trainscope.trial.handle import Trial


class OptunaPruningCallback(Callback):
    """Reports `metrics[trial.pruning_metric]` after every epoch and requests a stop when pruned.

    With several objectives (no pruning in Optuna, so no pruning metric) it only watches.
    """

    def __init__(self, trial: Trial) -> None:
        self.trial = trial

    def on_epoch_end(self, trainer: TrainerView, metrics: Mapping[str, float]) -> None:
        metric = self.trial.pruning_metric
        if not metric:
            return
        if metric not in metrics:
            raise ConfigError(
                f"hydra.sweeper.pruning_metric {metric!r} is not an epoch metric; "
                f"choose one of: {', '.join(sorted(metrics))}"
            )
        epoch = int(trainer.state.epoch)
        self.trial.report(float(metrics[metric]), epoch)
        if self.trial.should_prune():
            trainer.request_stop(f"pruned by {self.trial.pruner_name} at epoch {epoch}", status=RunStatus.PRUNED)
