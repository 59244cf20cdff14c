"""`task=regression`: one or more float targets per example; MSE, RMSE, MAE and R², per target and their mean.

The model learns standardized targets (the training split's mean and standard deviation, taken once by `bind`
and kept in every checkpoint), so one learning rate suits targets in any unit; every metric is reported in the
targets' own units. `val/loss` is the loss the model trains on, on the standardized scale.

Panels: a predicted-vs-true scatter image and a histogram of the residuals at every validation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainscope.config.groups.logging import LoggingConfig
from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError
from trainscope.core.view import DataFacts
from trainscope.data.targets import FLOAT
from trainscope.tasks.base import Evaluator, Monitor, Reduce, Task, batch_count, shape_text
from trainscope.tensorboard.regression import PredictionPanels

log = logging.getLogger(__name__)

LOSSES: dict[str, Callable[..., Tensor]] = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}
"""`task.loss`: squared error (default), absolute error, or Huber (quadratic within one standard deviation)."""


class Regression(Task):
    """`loss` (mse, l1, huber) between outputs [B, targets] and the standardized targets [B, targets]."""

    name = "regression"
    targets = FLOAT
    train_metric_names = ("rmse",)
    train_statistic_count = 1
    headline = ("r2", "rmse")

    def __init__(
        self, loss: str = "mse", monitor: Mapping[str, Any] | Monitor | None = None, target_key: str | None = None
    ) -> None:
        super().__init__(monitor or Monitor("val/r2", "max"), target_key)
        if loss not in LOSSES:
            raise ConfigError(f"task.loss must be one of {', '.join(LOSSES)} for task=regression, got {loss!r}")
        self.loss_name = loss
        self._loss = LOSSES[loss]
        self.target_names: list[str] = []
        self.mean = torch.zeros(0, dtype=torch.float64)
        self.std = torch.ones(0, dtype=torch.float64)
        self._on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    # ------------------------------------------------------------------------------------------ set-up

    def bind(self, data: DataFacts) -> None:
        values = data.train_targets(self.split_batch).to(torch.float64)
        values = values.reshape(len(values), -1)
        if not torch.isfinite(values).all():
            raise ConfigError(f"task=regression needs finite targets; {data.target_source} holds NaN or inf")
        count = values.shape[1]
        self.target_names = list(data.target_names) or (
            ["target"] if count == 1 else [f"target_{i}" for i in range(count)]
        )
        if len(self.target_names) != count:
            raise ConfigError(
                f"{data.target_source} holds {count} targets per example but names {len(self.target_names)}"
            )
        std = values.std(dim=0, unbiased=False)
        constant = [name for name, spread in zip(self.target_names, std.tolist(), strict=True) if spread == 0]
        if constant:
            log.warning("target %s is the same for every training example: nothing to learn", ", ".join(constant))
        self._set_statistics(values.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std)))
        standardized = ((values - self.mean) / self.std).float()
        self.baseline_loss = float(self._loss(torch.zeros_like(standardized), standardized))  # predicting the mean

    def _set_statistics(self, mean: Tensor, std: Tensor) -> None:
        self.mean, self.std = mean.to(torch.float64), std.to(torch.float64)
        self._on_device.clear()

    def _statistics(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """The training split's mean and std as float32 on `device` (made once per device)."""
        found = self._on_device.get(device)
        if found is None:
            found = self._on_device[device] = (self.mean.float().to(device), self.std.float().to(device))
        return found

    @property
    def output_size(self) -> int:
        return len(self.target_names)

    def check_batch(self, outputs: Tensor, targets: Any) -> None:
        count = len(self.target_names)
        if outputs.dim() != 2 or outputs.shape[1] != count:
            noun = "target" if count == 1 else "targets"
            raise ConfigError(
                f"model returns {shape_text(outputs.shape)}, task=regression with {count} {noun} needs [B, {count}]"
            )

    # ------------------------------------------------------------------------------------------ per step

    def standardized(self, targets: Tensor) -> Tensor:
        """Targets [B, targets] (a dataset's scalar targets [B] too) on the scale the model learns."""
        mean, std = self._statistics(targets.device)
        return (targets.reshape(len(targets), -1) - mean) / std

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return self._loss(outputs, self.standardized(targets))

    def train_statistics(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, ...]:
        residuals = self.predictions(outputs.float()) - targets.reshape(len(targets), -1)
        return (residuals.square().sum(),)

    def train_metrics(self, sums: Sequence[float], count: float, seconds: float) -> dict[str, float]:
        return {"rmse": math.sqrt(sums[0] / max(count * len(self.target_names), 1))}

    def predictions(self, outputs: Tensor) -> Tensor:
        mean, std = self._statistics(outputs.device)
        return outputs * std + mean

    def per_example_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return self._loss(outputs.float(), self.standardized(targets), reduction="none").mean(dim=1)

    # ------------------------------------------------------------------------------------------ evaluation

    def evaluator(self, device: torch.device) -> Evaluator:
        return RegressionEvaluator(self, device)

    def metric_modes(self) -> dict[str, str]:
        return {"r2": "max", "mse": "min", "rmse": "min", "mae": "min"}

    def panels(self, logging: LoggingConfig) -> dict[str, Callback]:
        panels = super().panels(logging)
        if logging.images:
            panels["monitor/predictions"] = PredictionPanels()
        return panels

    # ------------------------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "target_names": list(self.target_names)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.target_names = list(state["target_names"])
            self._set_statistics(state["mean"], state["std"])


class RegressionEvaluator(Evaluator):
    """Per-target sums of the standardized targets and errors, in float64 where the device has it (not MPS).

    On the standardized scale the sums stay well conditioned (R²'s total sum of squares is a difference of two
    sums); errors are scaled back to the targets' units when read.
    """

    def __init__(self, task: Regression, device: torch.device) -> None:
        self.task = task
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.counts: dict[int, Tensor] = {}
        self.device = device
        self.sums: Tensor | None = None

    def update(self, outputs: Tensor, targets: Tensor) -> None:
        task = self.task
        standardized = task.standardized(targets)
        outputs = outputs.float()
        errors = (outputs - standardized).to(self.dtype)
        loss_sum = task._loss(outputs, standardized, reduction="sum") / standardized.shape[1]
        z = standardized.to(self.dtype)
        count = batch_count(self.counts, targets.shape[0], self.device).to(self.dtype)
        sums = torch.cat(
            (
                torch.stack((loss_sum.to(self.dtype), count)),
                z.sum(dim=0),
                z.square().sum(dim=0),
                errors.square().sum(dim=0),
                errors.abs().sum(dim=0),
            )
        )
        self.sums = sums if self.sums is None else self.sums + sums

    def result(self, reduce: Reduce) -> dict[str, float]:
        if self.sums is None:
            return {}
        loss_sum, count, *rest = reduce(self.sums).tolist()
        width = len(self.task.target_names)
        z_sum, z_squares, squared_errors, absolute_errors = (rest[i * width : (i + 1) * width] for i in range(4))
        std = self.task.std.tolist()
        per_target: dict[str, list[float]] = {"r2": [], "mse": [], "rmse": [], "mae": []}
        for index in range(width):
            total = z_squares[index] - z_sum[index] ** 2 / max(count, 1)
            mse = squared_errors[index] / max(count, 1) * std[index] ** 2
            per_target["r2"].append(1 - squared_errors[index] / total if total > 0 else math.nan)
            per_target["mse"].append(mse)
            per_target["rmse"].append(math.sqrt(mse))
            per_target["mae"].append(absolute_errors[index] / max(count, 1) * std[index])
        metrics = {"loss": loss_sum / max(count, 1)}
        metrics.update({name: sum(values) / width for name, values in per_target.items()})
        if width > 1:
            for name, values in per_target.items():
                if name != "mse":
                    metrics.update(
                        {
                            f"{name}/{target}": value
                            for target, value in zip(self.task.target_names, values, strict=True)
                        }
                    )
        return metrics
