"""The task interface: what the problem is, asked by the loop, evaluation, callbacks and loggers.

A task owns everything that depends on the kind of problem and nothing else: how a batch splits into the
model's inputs and the targets, the loss, the metrics and how they are read, which metric checkpointing, early
stopping, the plateau scheduler and sweeps watch by default (and in which direction), the loss of a model that
knows nothing (the health checks' baseline) and the TensorBoard panels that fit. The loop stays one loop.

Everything the loop calls per step runs on the device and returns tensors: a task never reads a value back to
the host during training. Statistics are sums (`train_statistics`, `Evaluator.update`), added up on the device
and read once per logging window (`train_metrics`) or once per evaluation (`Evaluator.result`), after one
all-reduce across processes.

A new task is one module (a subclass of `Task`) and one YAML file in `conf/task/` naming it as `_target_`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from trainscope.config.groups.logging import LoggingConfig
from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError
from trainscope.core.view import DataFacts
from trainscope.tensorboard.images import InputImages

Reduce = Callable[[Tensor], Tensor]
"""Sums a tensor over every process of the run (in place); the identity for a single process."""


@dataclass(frozen=True)
class Monitor:
    """The metric a task is judged by, and whether higher or lower is better."""

    metric: str
    mode: str = "max"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or "/" not in self.metric:
            raise ConfigError(f"task.monitor.metric must be a metric tag such as val/acc, got {self.metric!r}")
        if self.mode not in ("max", "min"):
            raise ConfigError(f"task.monitor.mode must be max or min, got {self.mode!r}")

    @property
    def best_tag(self) -> str:
        """The tag of the best value so far, logged every epoch (`val/acc_best`): what sweeps optimize."""
        return f"{self.metric}_best"


class Evaluator:
    """Accumulates one evaluation pass on the device; `result` reads it once.

    `update` adds a batch's sums (tensors only: no host read, so evaluation never waits on the GPU per batch);
    `result` sums them over processes with `reduce`, reads them in one transfer and returns the metrics by
    name (`loss`, `acc`, ...), without the split prefix.
    """

    def update(self, outputs: Tensor, targets: Any) -> None:
        raise NotImplementedError

    def result(self, reduce: Reduce) -> dict[str, float]:
        raise NotImplementedError


class SumsEvaluator(Evaluator):
    """An evaluator whose state is one vector of sums: `batch_sums` per batch, `read` at the end."""

    def __init__(self, batch_sums: Callable[[Tensor, Any], Tensor], read: Callable[[list[float]], dict[str, float]]):
        self.batch_sums, self.read = batch_sums, read
        self.sums: Tensor | None = None

    def update(self, outputs: Tensor, targets: Any) -> None:
        sums = self.batch_sums(outputs, targets)
        self.sums = sums if self.sums is None else self.sums + sums

    def result(self, reduce: Reduce) -> dict[str, float]:
        if self.sums is None:
            return {}
        return self.read(reduce(self.sums).tolist())


class Task:
    """Base class of every task; subclasses define the loss, the statistics and the metrics.

    Lifecycle: built from `conf/task/<name>.yaml` before the data; `bind(data)` once the data is built (targets
    checked against the task, statistics such as regression's target mean taken from the training split);
    `check_batch` on the first training batch before anything is written; then the per-step methods.
    """

    name: ClassVar[str] = "task"
    targets: ClassVar[str] = "any"
    """What the data must deliver (`trainscope.data.targets`): class, float, multi_hot or any."""
    train_metric_names: ClassVar[tuple[str, ...]] = ()
    """Training metrics besides the loss, as `train_metrics` returns them (`acc` -> `train/acc`, `train/acc_step`)."""
    train_statistic_count: ClassVar[int] = 0
    """How many sums `train_statistics` returns (the loop keeps them in its running sums)."""

    def __init__(self, monitor: Mapping[str, Any] | Monitor, target_key: str | None = None) -> None:
        self.monitor = monitor if isinstance(monitor, Monitor) else Monitor(**dict(monitor))
        if target_key is not None and not isinstance(target_key, str):
            raise ConfigError(f"task.target_key must be the key of the targets in a dict batch, got {target_key!r}")
        self.target_key = target_key
        self.baseline_loss: float | None = None

    # ------------------------------------------------------------------------------------------ set-up

    def bind(self, data: DataFacts) -> None:
        """Check that the data fits the task and take what the task needs from it (one line on a mismatch)."""

    @property
    def output_size(self) -> int | None:
        """What the model's last layer must produce per example (`num_classes` of the built-in models)."""
        return None

    def check_batch(self, outputs: Tensor, targets: Any) -> None:
        """Refuse, in one line, a model whose outputs cannot fit the targets (called on the first batch)."""

    # ------------------------------------------------------------------------------------------ per step

    def split_batch(self, batch: Any) -> tuple[Any, Any]:
        """A batch as (model inputs, targets): a pair as it is; a dict without `task.target_key`, and its value."""
        if isinstance(batch, Mapping):
            key = self.target_key
            if key is None or key not in batch:
                raise ConfigError(
                    f"a batch is a dict with keys {sorted(batch)} and task.target_key={key}: set task.target_key "
                    "to the key holding the targets"
                )
            return {name: value for name, value in batch.items() if name != key}, batch[key]
        inputs, targets = batch
        return inputs, targets

    def forward(self, model: nn.Module, inputs: Any) -> Tensor:
        """The model's outputs for `inputs` (a dict is passed as keyword arguments)."""
        outputs = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
        return outputs if isinstance(outputs, Tensor) else model_output_tensor(outputs)

    def loss(self, outputs: Tensor, targets: Any) -> Tensor:
        """The mean loss of a batch: what backward() runs on."""
        raise NotImplementedError

    def train_statistics(self, outputs: Tensor, targets: Any) -> tuple[Tensor, ...]:
        """Batch sums behind `train_metric_names` (detached outputs), added up on the device between reads."""
        return ()

    def train_metrics(self, sums: Sequence[float], count: float, seconds: float) -> dict[str, float]:
        """`train_metric_names` from the sums of `train_statistics` over `count` examples trained in `seconds`
        (a language model's tokens per second: a token count among the statistics, divided by `seconds`)."""
        return {}

    # ------------------------------------------------------------------------------------------ evaluation

    def evaluator(self, device: torch.device) -> Evaluator:
        """A fresh accumulator for one evaluation pass; its result holds `loss` and the task's metrics."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ downstream

    headline: ClassVar[tuple[str, ...]] = ()
    """The metrics people read first: the epoch log line, the HParams columns, the test line."""

    def mode(self, tag: str) -> str | None:
        """`max` or `min`: which values of the metric `tag` are better; None for a tag the task does not know."""
        if tag in (self.monitor.metric, self.monitor.best_tag):
            return self.monitor.mode
        name = metric_name(tag)
        if name.startswith("loss"):
            return "min"
        return self.metric_modes().get(name)

    def metric_modes(self) -> dict[str, str]:
        """`max`/`min` per metric name the task logs (without the split prefix)."""
        return {}

    def predictions(self, outputs: Tensor) -> Tensor:
        """What the model predicts, as a person reads it (a class index, a value, labels at the threshold)."""
        return outputs

    def per_example_loss(self, outputs: Tensor, targets: Any) -> Tensor:
        """The loss of each example of a batch, [B] (worst-example panels)."""
        raise NotImplementedError

    def caption(self, target: Tensor) -> str:
        """One example's target as a tile caption reads it."""
        values = target.flatten().tolist()
        return " ".join(f"{value:.4g}" for value in values[:4]) + (" ..." if len(values) > 4 else "")

    def panels(self, logging: LoggingConfig) -> dict[str, Callback]:
        """The TensorBoard loggers that fit this task, keyed `monitor/<name>`, as the `logging` switches ask.

        Every task shows its training inputs when they are images (the grid switches itself off otherwise).
        """
        if not logging.images:
            return {}
        return {"monitor/input_images": InputImages(num_images=logging.num_images)}

    def hparams_metrics(self) -> list[str]:
        """Scalar tags a sweep's HParams table shows for this task, in column order."""
        monitored = [self.monitor.metric, self.monitor.best_tag]
        headline = [f"val/{name}" for name in self.headline if f"val/{name}" != self.monitor.metric]
        return [*monitored, *headline, "val/loss", "train/loss", *(f"test/{name}" for name in self.headline)]

    def shown(self, prefix: str) -> list[str]:
        """Tags of one split the terminal shows (`train/loss train/acc`)."""
        names = self.train_metric_names if prefix == "train" else self.headline
        return [f"{prefix}/loss", *(f"{prefix}/{name}" for name in names)]

    # ------------------------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """What `bind` learned from the data (a checkpoint keeps it, so eval.py and resume= use the same)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


SPLITS = ("train", "val", "test")


def metric_name(tag: str) -> str:
    """The metric a tag is of: `val/rmse_best` -> `rmse`, `val_r2/age` -> `r2`, `train/acc_step` -> `acc`."""
    head, _, rest = tag.partition("/")
    split, _, per_item = head.partition("_")
    name = per_item if split in SPLITS and per_item else rest.split("/")[0]
    return name.removesuffix("_best").removesuffix("_step")


def batch_count(cache: dict[int, Tensor], batch_size: int, device: torch.device) -> Tensor:
    """`batch_size` as a device scalar, made once per size: a new tensor every batch is a host-to-device copy.

    Filled on the device (`torch.full`), not copied from the host (`torch.tensor`): that copy would wait for the
    GPU, at the first short last batch of a training epoch."""
    count = cache.get(batch_size)
    if count is None:
        count = cache[batch_size] = torch.full((), float(batch_size), device=device)
    return count


def model_output_tensor(outputs: Any) -> Tensor:
    """The prediction tensor of a model that returns more than a tensor (`logits` of a dict or a Hugging Face
    `ModelOutput`, the first item of a tuple)."""
    if isinstance(outputs, Mapping) and isinstance(outputs.get("logits"), Tensor):
        return outputs["logits"]
    if isinstance(getattr(outputs, "logits", None), Tensor):
        return outputs.logits
    if isinstance(outputs, tuple | list) and outputs and isinstance(outputs[0], Tensor):
        return outputs[0]
    raise ConfigError(
        f"the model returned a {type(outputs).__name__}; return a tensor, a dict with 'logits', or a tuple whose "
        "first item is the prediction tensor"
    )


def shape_text(shape: Sequence[int]) -> str:
    """`[B, 10]`: a batch shape as the error messages write it."""
    return "[" + ", ".join(["B", *(str(size) for size in shape[1:])]) + "]"


def safe_ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when nothing was counted (a metric of nothing is no zero)."""
    return numerator / denominator if denominator else math.nan
