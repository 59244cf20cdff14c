"""Stop a run whose monitored metric has stopped improving."""

from __future__ import annotations

import logging
from typing import Any

from trainscope.callbacks.metric_tracker import MetricTracker
from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView

log = logging.getLogger(__name__)


class EarlyStopping(Callback):
    """Requests a stop after `patience` epochs without an improvement larger than `min_delta`."""

    def __init__(self, monitor: str, mode: str = "max", patience: int = 5, min_delta: float = 0.0) -> None:
        self.tracker = MetricTracker(monitor, mode, min_delta)
        self.patience = patience
        self.epochs_without_improvement = 0

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        if self.tracker.update(metrics):
            self.epochs_without_improvement = 0
            return
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement >= self.patience:
            reason = (
                f"early stopping: {self.tracker.metric} did not improve for {self.patience} epochs "
                f"(best {self.tracker.best:.4f})"
            )
            trainer.request_stop(reason, status=RunStatus.STOPPED_EARLY)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "epochs_without_improvement": self.epochs_without_improvement}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
        self.epochs_without_improvement = state["epochs_without_improvement"]
