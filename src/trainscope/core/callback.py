"""The callback interface: how code outside the loop watches training and, rarely, stops it.

Callbacks observe the run through `trainscope.core.view.TrainerView` (the hooks' `trainer` argument: state, model,
data facts, the task, the run's TensorBoard writer); the only ways back into the loop are the requests
`trainer.request_stop(reason, status)` and `trainer.save_checkpoint(best)`.
Every hook is optional. A custom callback is enabled from the command line with
`+callbacks.mine._target_=my_module.MyCallback`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from trainscope.core.view import TrainerView

if TYPE_CHECKING:
    from torch import Tensor


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Before the first epoch (also after a resume)."""

    def on_train_epoch_start(self, trainer: TrainerView) -> None:
        """Before the first training batch of an epoch."""

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        """After each optimizer step; `step_metrics` only on logging steps, so other steps never sync."""

    def on_train_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        """After the last training batch, with the epoch's train/* means."""

    def on_validation_batch_end(self, trainer: TrainerView, inputs: Any, targets: Any, logits: Tensor) -> None:
        """After each validation batch, for monitors that need predictions (confusion matrix, ...): the batch as the
        task split it, and the model's outputs (`trainer.task.predictions(logits)` reads them)."""

    def on_validation_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        """After validation, with this epoch's val/* metrics."""

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        """After the epoch is complete and logged; `trainer.state.epoch` already counts it."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        """Once, however the run ends; `trainer.status` and `trainer.stop_reason` say how."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep so a resumed run behaves as if never stopped."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class CallbackList:
    """Calls a hook on every callback in order; keyed by config name so checkpoints can restore state."""

    def __init__(self, callbacks: dict[str, Callback]) -> None:
        self.callbacks = callbacks
        self._overriding: dict[str, list[Callback]] = {}  # per hook; some hooks run every step

    def __iter__(self) -> Iterable[Callback]:
        return iter(self.callbacks.values())

    def call(self, hook: str, *args: Any) -> None:
        """Call `hook` on the callbacks that override it, in order (the base class's hooks do nothing)."""
        for callback in self._overriding_callbacks(hook):
            getattr(callback, hook)(*args)

    def wants(self, hook: str) -> bool:
        """Whether any callback overrides `hook`, so the loop can skip work nobody watches."""
        return bool(self._overriding_callbacks(hook))

    def _overriding_callbacks(self, hook: str) -> list[Callback]:
        overriding = self._overriding.get(hook)
        if overriding is None:
            base_hook = getattr(Callback, hook)
            overriding = self._overriding[hook] = [
                callback for callback in self.callbacks.values() if getattr(type(callback), hook) is not base_hook
            ]
        return overriding

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {name: callback.state_dict() for name, callback in self.callbacks.items()}

    def load_state_dict(self, states: dict[str, dict[str, Any]]) -> None:
        for name, state in states.items():
            if name in self.callbacks:
                self.callbacks[name].load_state_dict(state)
