"""A model's loss and metrics on a batch source: used by the loop (val, test) and by `eval.py` alike.

What the metrics are is the task's business (`trainscope.tasks`); this module only runs the batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from trainscope.core.batches import BatchSource
from trainscope.engine.forward import autocast, to_memory_format
from trainscope.tasks import Task

BatchHook = Callable[[Any, Any, Tensor], None]
"""Called with (inputs, targets, outputs) after each batch, for loggers that need predictions."""


def limited_length(source: BatchSource, limit: int | float | None) -> int:
    """Batches to run: all, an int count, or a float fraction (as Lightning's limit_*_batches)."""
    if limit is None:
        return len(source)
    if isinstance(limit, float) and limit <= 1.0:
        return max(1, int(len(source) * limit))
    return min(len(source), int(limit))


def _same(tensor: Tensor) -> Tensor:
    return tensor


@torch.no_grad()
def evaluate(
    forward: nn.Module,
    source: BatchSource,
    device: torch.device,
    prefix: str,
    task: Task,
    limit: int | float | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    on_batch: BatchHook | None = None,
    reduce_sums: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, float]:
    """`<prefix>/loss` and the task's metrics (`<prefix>/acc`, ...) of `forward` (the model, or its compiled form).

    The task's statistics stay on the device and are read once at the end, so evaluation never waits on the GPU
    per batch. `reduce_sums` adds up the statistics of every process when each evaluated a shard.
    """
    forward.eval()
    total = limited_length(source, limit)
    evaluator = task.evaluator(device)
    for index, batch in enumerate(source):
        if index >= total:
            break
        inputs, targets = task.split_batch(batch)
        with autocast(device, autocast_dtype):
            outputs = task.forward(forward, to_memory_format(inputs, channels_last))
        evaluator.update(outputs, targets)
        if on_batch is not None:
            on_batch(inputs, targets, outputs)
    metrics = evaluator.result(reduce_sums or _same)
    return {split_tag(prefix, name): value for name, value in metrics.items()}


def split_tag(prefix: str, name: str) -> str:
    """`val/acc` for a metric; `val_r2/age` for one metric's value per target, class or label (`r2/age`), so
    TensorBoard groups those apart from the split's headline scalars, as `val_precision/<class>` always was."""
    return f"{prefix}_{name}" if "/" in name else f"{prefix}/{name}"
