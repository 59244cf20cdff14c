"""Mean loss and accuracy of a model on a batch source: used by the loop (val, test) and by `eval.py` alike."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainscope.data import BatchSource
from trainscope.engine.forward import autocast, to_memory_format

BatchHook = Callable[[Tensor, Tensor, Tensor], None]
"""Called with (inputs, targets, logits) after each batch, for loggers that need predictions."""


def limited_length(source: BatchSource, limit: int | float | None) -> int:
    """Batches to run: all, an int count, or a float fraction (as Lightning's limit_*_batches)."""
    if limit is None:
        return len(source)
    if isinstance(limit, float) and limit <= 1.0:
        return max(1, int(len(source) * limit))
    return min(len(source), int(limit))


def batch_count(cache: dict[int, Tensor], batch_size: int, device: torch.device) -> Tensor:
    """`batch_size` as a device scalar, made once per size: a new tensor every batch is a host-to-device copy.

    Filled on the device (`torch.full`), not copied from the host (`torch.tensor`): that copy would wait for the
    GPU, at the first short last batch of a training epoch."""
    count = cache.get(batch_size)
    if count is None:
        count = cache[batch_size] = torch.full((), float(batch_size), device=device)
    return count


@torch.no_grad()
def evaluate(
    forward: nn.Module,
    source: BatchSource,
    device: torch.device,
    prefix: str,
    limit: int | float | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    on_batch: BatchHook | None = None,
    reduce_sums: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, float]:
    """`<prefix>/loss` and `<prefix>/acc` of `forward` (the model, or its compiled form) on `source`.

    Sums stay on the device and are read once at the end, so evaluation never waits on the GPU per batch.
    `reduce_sums` adds up the (loss, correct, count) sums of every process when each evaluated a shard.
    """
    forward.eval()
    total = limited_length(source, limit)
    counts: dict[int, Tensor] = {}
    sums = torch.zeros(3, device=device)
    for index, (inputs, targets) in enumerate(source):
        if index >= total:
            break
        with autocast(device, autocast_dtype):
            logits = forward(to_memory_format(inputs, channels_last))
        loss = F.cross_entropy(logits.float(), targets, reduction="sum")
        correct = (logits.argmax(dim=1) == targets).sum()
        sums += torch.stack((loss, correct.float(), batch_count(counts, targets.shape[0], device)))
        if on_batch is not None:
            on_batch(inputs, targets, logits)
    if reduce_sums is not None:
        sums = reduce_sums(sums)
    loss_sum, correct_sum, count = sums.tolist()
    return {f"{prefix}/loss": loss_sum / max(count, 1), f"{prefix}/acc": correct_sum / max(count, 1)}
