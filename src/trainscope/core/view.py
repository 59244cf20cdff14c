"""What callbacks and loggers see of a run: a narrow, read-only view, not the Trainer.

The Trainer satisfies `TrainerView` structurally; callbacks and TensorBoard loggers are typed against it, so they
depend on this module (the lowest layer) and never on `trainscope.engine`. They read the run's state and write to
its TensorBoard run; they change the run only through the two requests the view offers: `request_stop` and
`save_checkpoint` (the loop writes the checkpoint; a callback only says when).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trainscope.core.batches import BatchSource

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn
    from torch.utils.tensorboard import SummaryWriter


class LoopState(Protocol):
    """Where the run is."""

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        ...

    @property
    def global_step(self) -> int:
        """Optimizer steps taken."""
        ...

    @property
    def batch_in_epoch(self) -> int:
        """Batches of the current epoch already trained."""
        ...

    @property
    def history(self) -> list[dict[str, float]]:
        """The metrics of every finished epoch."""
        ...


class DataFacts(Protocol):
    """The data as the task, the model and the loggers need to know it."""

    train: BatchSource
    val: BatchSource
    test: BatchSource | None
    input_shape: tuple[int, ...]
    num_classes: int  # classes of class-label targets; 0 when the targets are not class labels
    class_names: list[str]
    target_names: list[str]  # the target columns (regression) or labels (multi-label); [] for class labels
    mean: tuple[float, ...]  # image normalization (per channel); () for inputs that are not images
    std: tuple[float, ...]
    target_source: str  # how an error names the targets: "data.target=progression", "data.train's targets"

    @property
    def image_inputs(self) -> bool:
        """Inputs are [C, H, W] images: image grids, channels_last and un-normalizing apply."""
        ...

    def train_targets(self, split: Callable[[Any], tuple[Any, Any]]) -> Tensor:
        """Every target of the whole training split (every process's shard), on the CPU; `split` takes a batch
        apart (`Task.split_batch`) when the targets must be read from the batches."""
        ...


class TaskFacts(Protocol):
    """What callbacks and loggers ask the task (`trainscope.tasks.Task`)."""

    name: str
    baseline_loss: float | None  # the loss of a model that knows nothing: ln(classes), the mean's loss, ...

    def split_batch(self, batch: Any) -> tuple[Any, Any]: ...

    def predictions(self, outputs: Tensor) -> Tensor: ...

    def per_example_loss(self, outputs: Tensor, targets: Any) -> Tensor: ...

    def mode(self, tag: str) -> str | None: ...

    def caption(self, target: Tensor) -> str: ...


class RunLog(Protocol):
    """The run's TensorBoard output (`trainscope.tensorboard.writer.RunWriter`)."""

    @property
    def writer(self) -> SummaryWriter:
        """The run's one SummaryWriter (a silent one on every rank but 0)."""
        ...

    def scalar(self, tag: str, value: float, step: int) -> None: ...

    def scalars(self, metrics: Mapping[str, float], step: int) -> None: ...

    def record_scalars(self) -> None:
        """Keep every scalar written from now on (its last value per tag): `metrics.csv` rows hold them."""
        ...

    def recorded_scalars(self) -> dict[str, float]:
        """The scalars written since `record_scalars`, by tag; recording stops."""
        ...

    def flush(self) -> None: ...


class Collectives(Protocol):
    """The run's processes (one, or a torchrun job): what a logger needs to combine their shards."""

    @property
    def is_main(self) -> bool: ...

    def all_reduce_sum(self, tensor: Tensor) -> Tensor: ...


class TrainerView(Protocol):
    """The run as every callback hook receives it (the hooks' `trainer` argument)."""

    @property
    def state(self) -> LoopState: ...

    @property
    def model(self) -> nn.Module: ...

    @property
    def optimizer(self) -> torch.optim.Optimizer: ...

    @property
    def scaler(self) -> torch.amp.GradScaler:
        """Enabled for fp16 mixed precision, where an Inf gradient only skips a step."""
        ...

    @property
    def data(self) -> DataFacts: ...

    @property
    def task(self) -> TaskFacts: ...

    @property
    def tensorboard(self) -> RunLog: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def distributed(self) -> Collectives: ...

    @property
    def run_dir(self) -> Path: ...

    @property
    def max_epochs(self) -> int: ...

    @property
    def batches_per_epoch(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def stop_reason(self) -> str: ...

    @property
    def stopping(self) -> bool: ...

    def request_stop(self, reason: str, status: str) -> None:
        """Stop after the current step with `status` (stopped_early, failed, pruned, interrupted)."""
        ...

    def save_checkpoint(self, best: bool = False) -> None:
        """Ask the loop to write `checkpoints/last.pt` now (and `best.pt`); rank 0 writes, the others skip."""
        ...
