"""Pruning inside the training loop: report the monitored metric each epoch, stop when the pruner says.

The Optuna sweeper adds it to every trial's callbacks (`callbacks.optuna_pruning`, next to
`optuna_trial`), so any search space gets pruning without touching the engine. A pruned run ends like any stopped run
(checkpoints, TensorBoard data and `metrics.json` stay) with status "pruned"; the sweeper then records
the trial PRUNED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import RunStatus
from trainscope.sweep.trial_link import TrialLink, connect_trial

if TYPE_CHECKING:
    from trainscope.engine.trainer import Trainer


class OptunaPruningCallback(Callback):
    """Reports `metrics[monitor]` to the trial after every epoch and requests a stop when pruned.

    With several objectives (no pruning in Optuna) or no monitor it only watches.
    """

    def __init__(self, optuna_trial: Any = None) -> None:
        """`optuna_trial`: the run's `cfg.optuna_trial` (null outside an Optuna sweep: the callback idles)."""
        self.link: TrialLink | None = connect_trial(optuna_trial)

    def on_epoch_end(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        monitor = self.link.monitor if self.link is not None else None
        if self.link is None or not monitor:
            return
        if monitor not in metrics:
            raise ConfigError(
                f"hydra.sweeper.pruning_metric {monitor!r} is not an epoch metric; "
                f"choose one of: {', '.join(sorted(metrics))}"
            )
        epoch = int(trainer.state.epoch)
        self.link.report(float(metrics[monitor]), epoch)
        if self.link.should_prune():
            trainer.request_stop(f"pruned by {self.link.pruner_name} at epoch {epoch}", status=RunStatus.PRUNED)
