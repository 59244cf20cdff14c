"""Learning-rate logger: makes schedule changes visible where people look.

The loop already logs `lr` (or `lr/group<i>`) every `log_every_n_steps`. This callback adds what those
points miss: the momentum (or Adam's beta1) of each param group alongside them, the learning rate at every
epoch end (`lr_epoch`, so a plateau or step schedule shows as a clean staircase whatever the logging
interval), and a terminal line whenever the learning rate changes between epochs (e.g. `plateau` cut it).
"""

from __future__ import annotations

import logging
from typing import Any

from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView
from trainscope.tensorboard.writer import per_group_tags

log = logging.getLogger(__name__)


class LearningRateLogger(Callback):
    """Logs `lr_epoch[/group<i>]` per epoch, `momentum[/group<i>]` on logging steps, and lr changes."""

    def __init__(self, log_momentum: bool = True, announce_changes: bool = True) -> None:
        self.log_momentum, self.announce_changes = log_momentum, announce_changes
        self._previous: list[float] | None = None

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        if step_metrics is None or not self.log_momentum:
            return
        momenta = [_momentum(group) for group in trainer.optimizer.param_groups]
        names = [group.get("name") for group in trainer.optimizer.param_groups]
        for tag, value in per_group_tags("momentum", momenta, names).items():
            if value is not None:
                trainer.tensorboard.scalar(tag, value, trainer.state.global_step)

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        # The scheduler already stepped for this epoch: these are the rates the next epoch trains with.
        rates = [float(group["lr"]) for group in trainer.optimizer.param_groups]
        names = [group.get("name") for group in trainer.optimizer.param_groups]
        for tag, value in per_group_tags("lr_epoch", rates, names).items():
            trainer.tensorboard.scalar(tag, value, trainer.state.global_step)
        if self.announce_changes and self._previous is not None and rates != self._previous:
            if len(set(rates)) == len(set(self._previous)) == 1:  # one rate, however many groups share it
                changes = f"{self._previous[0]:g} -> {rates[0]:g}"
            else:
                changes = ", ".join(
                    f"group {index}: {before:g} -> {after:g}"
                    for index, (before, after) in enumerate(zip(self._previous, rates, strict=False))
                    if before != after
                )
            log.info("learning rate changed after epoch %d (%s)", trainer.state.epoch, changes)
        self._previous = rates

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self._previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._previous = state.get("previous")


def _momentum(group: dict[str, Any]) -> float | None:
    if "momentum" in group:
        return float(group["momentum"])
    if "betas" in group:
        return float(group["betas"][0])
    return None
