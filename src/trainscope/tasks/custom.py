"""`task=custom`: your own loss and metrics, by `_target_`.

    python train.py task=custom task.loss._target_=torch.nn.SmoothL1Loss \
        +task.metrics.mae._target_=torchmetrics.regression.MeanAbsoluteError \
        task.monitor.metric=val/mae task.monitor.mode=min

`task.loss` is any callable `(outputs, targets) -> scalar tensor` (a `torch.nn` loss module, a function);
`task.metrics` a dict of metric objects with torchmetrics' interface (`update(outputs, targets)`, `compute()`,
`reset()`), logged as `val/<name>` and `test/<name>`. The metrics keep their own state on the device and sync
themselves across processes when computed (torchmetrics does); pass `validate_args: false` to torchmetrics
classes to keep their input checks from reading values back to the host at every batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from trainscope.core.errors import ConfigError, first_line
from trainscope.core.view import DataFacts
from trainscope.data.targets import ANY
from trainscope.tasks.base import Evaluator, Monitor, Reduce, Task, batch_count, metric_name


class Custom(Task):
    """The user's `loss` and `metrics`; `monitor` says what checkpointing, early stopping and sweeps watch."""

    name = "custom"
    targets = ANY

    def __init__(
        self,
        loss: Callable[[Tensor, Any], Tensor],
        metrics: Mapping[str, Any] | None = None,
        monitor: Mapping[str, Any] | Monitor | None = None,
        target_key: str | None = None,
        num_outputs: int | None = None,
        baseline_loss: float | None = None,
    ) -> None:
        super().__init__(monitor or Monitor("val/loss", "min"), target_key)
        if not callable(loss):
            raise ConfigError(f"task.loss must be a callable (outputs, targets) -> loss, got {type(loss).__name__}")
        self._loss = loss
        self.metrics: dict[str, Any] = dict(metrics or {})
        for name, metric in self.metrics.items():
            missing = [
                method for method in ("update", "compute", "reset") if not callable(getattr(metric, method, None))
            ]
            if missing or "/" in name:
                raise ConfigError(
                    f"task.metrics.{name} must be a metric object with update, compute and reset (a torchmetrics "
                    f"class), named without '/'; got a {type(metric).__name__}"
                )
        if num_outputs is not None and (
            isinstance(num_outputs, bool) or not isinstance(num_outputs, int) or num_outputs < 1
        ):
            raise ConfigError(f"task.num_outputs must be null or a positive integer, got {num_outputs!r}")
        self.num_outputs = num_outputs
        self.baseline_loss = None if baseline_loss is None else float(baseline_loss)
        self.headline = tuple(self.metrics)
        self._device: torch.device | None = None

    def bind(self, data: DataFacts) -> None:
        if self.num_outputs is None:
            self.num_outputs = data.num_classes or len(data.target_names) or None

    @property
    def output_size(self) -> int | None:
        return self.num_outputs

    def _on(self, device: torch.device) -> None:
        """Move a loss module with weights (pos_weight, class weights) and the metrics' states to `device`, once."""
        if self._device == device:
            return
        if isinstance(self._loss, nn.Module):
            self._loss.to(device)
        for metric in self.metrics.values():
            if isinstance(metric, nn.Module):
                metric.to(device)
        self._device = device

    def check_batch(self, outputs: Tensor, targets: Any) -> None:
        self._on(outputs.device)
        try:
            loss = self._loss(outputs, targets)
        except Exception as error:  # the user's loss: one line naming what it got
            raise ConfigError(
                f"task.loss failed on the first training batch (outputs {list(outputs.shape)}, targets "
                f"{list(getattr(targets, 'shape', []))}): {type(error).__name__}: {first_line(error)}"
            ) from None
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ConfigError(
                f"task.loss must return one number per batch, got {type(loss).__name__} "
                f"{list(getattr(loss, 'shape', []))}"
            )

    def loss(self, outputs: Tensor, targets: Any) -> Tensor:
        if self._device != outputs.device:
            self._on(outputs.device)
        return self._loss(outputs, targets)

    def per_example_loss(self, outputs: Tensor, targets: Any) -> Tensor:
        return torch.stack([self._loss(outputs[i : i + 1], targets[i : i + 1]) for i in range(len(outputs))])

    def evaluator(self, device: torch.device) -> Evaluator:
        self._on(device)
        return CustomEvaluator(self, device)

    def mode(self, tag: str) -> str | None:
        mode = super().mode(tag)
        if mode is not None:
            return mode
        metric = self.metrics.get(metric_name(tag))
        higher = getattr(metric, "higher_is_better", None)  # torchmetrics says which way is better
        return None if higher is None else ("max" if higher else "min")


class CustomEvaluator(Evaluator):
    """The loss as a sum on the device, and the user's metric objects, reset for each pass."""

    def __init__(self, task: Custom, device: torch.device) -> None:
        self.task, self.device = task, device
        self.counts: dict[int, Tensor] = {}
        self.sums: Tensor | None = None
        for metric in task.metrics.values():
            metric.reset()

    def update(self, outputs: Tensor, targets: Any) -> None:
        count = batch_count(self.counts, outputs.shape[0], self.device)
        sums = torch.stack((self.task.loss(outputs.float(), targets).detach().float() * count, count))
        self.sums = sums if self.sums is None else self.sums + sums
        for metric in self.task.metrics.values():
            metric.update(outputs, targets)

    def result(self, reduce: Reduce) -> dict[str, float]:
        if self.sums is None:
            return {}
        loss_sum, count = reduce(self.sums).tolist()
        metrics = {"loss": loss_sum / max(count, 1)}
        for name, metric in self.task.metrics.items():
            value = metric.compute()  # torchmetrics syncs its state across processes here
            if isinstance(value, Tensor) and value.numel() != 1:
                raise ConfigError(f"task.metrics.{name} computed {list(value.shape)} values; a metric logs one number")
            metrics[name] = float(value)
        return metrics
