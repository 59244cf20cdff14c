"""`callbacks.ema`: an exponential moving average of the weights, validated beside the weights themselves.

After every `every_n_steps`-th optimizer step from `start_step` on, each floating tensor of the model's state
(parameters and BatchNorm statistics, as timm's `ModelEmaV3`) moves toward the model's: `ema = decay * ema + (1 -
decay) * weight`; before `start_step` the average is the weights themselves. Each validation then runs twice: the
loop's `val/*` with the weights, and `val_ema/*` with the average (this callback adds them to the epoch's metrics,
so they reach TensorBoard, metrics.csv and metrics.json, and `monitor.metric=val_ema/acc` chooses `best.pt` by them).

The average is this callback's checkpoint state, so a resumed run continues it exactly, and `best.pt` holds the
average it validated: the test phase and `eval.py` test that average (`trainscope.core.checkpoint_io.weights_to_test`).

It lives in `engine/` rather than `callbacks/` because it evaluates with the loop's own `Trainer.evaluate`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from trainscope.core.callback import Callback
from trainscope.core.checkpoint_io import EMA_WEIGHTS
from trainscope.core.errors import ConfigError
from trainscope.engine.trainer import Trainer

EMA_PREFIX = "val_ema"


class ExponentialMovingAverage(Callback):
    """Keeps the average of the weights and validates it as `val_ema/*`."""

    def __init__(self, decay: float = 0.999, every_n_steps: int = 1, start_step: int = 0) -> None:
        if not 0 < decay < 1:
            raise ConfigError(f"callbacks.ema.decay must be a number in (0, 1), e.g. 0.999, got {decay!r}")
        if every_n_steps < 1 or start_step < 0:
            raise ConfigError(
                f"callbacks.ema.every_n_steps must be >= 1 and start_step >= 0, got {every_n_steps}, {start_step}"
            )
        self.decay, self.every_n_steps, self.start_step = float(decay), int(every_n_steps), int(start_step)
        self.average: dict[str, Tensor] | None = None

    def on_fit_start(self, trainer: Trainer) -> None:  # type: ignore[override]
        if self.average is None:
            self.average = _copy(trainer.model.state_dict())
        else:  # loaded from a checkpoint on the CPU: onto the model's device
            own = trainer.model.state_dict()
            self.average = {name: value.to(own[name].device) for name, value in self.average.items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, step_metrics: dict[str, float] | None) -> None:  # type: ignore[override]
        assert self.average is not None
        step = trainer.state.global_step
        state = trainer.model.state_dict()
        if step < self.start_step:
            for name, value in state.items():
                self.average[name].copy_(value)
        elif step % self.every_n_steps == 0:
            for name, value in state.items():
                if value.is_floating_point():
                    self.average[name].lerp_(value, 1.0 - self.decay)
                else:
                    self.average[name].copy_(value)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:  # type: ignore[override]
        """Validate the average too, and add its `val_ema/*` metrics to the epoch's."""
        assert self.average is not None
        weights = _copy(trainer.model.state_dict())
        trainer.model.load_state_dict(self.average)
        try:
            metrics.update(trainer.evaluate(trainer.data.val, EMA_PREFIX, trainer.settings.trainer.limit_val_batches))
        finally:
            trainer.model.load_state_dict(weights)

    def state_dict(self) -> dict[str, Any]:
        return {EMA_WEIGHTS: None if self.average is None else {k: v.cpu() for k, v in self.average.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average = state.get(EMA_WEIGHTS)


def _copy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in state.items()}
