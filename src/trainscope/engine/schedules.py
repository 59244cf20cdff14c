"""`scheduler=warmup_cosine`: linear warmup, then a cosine decay to `min_lr`, stepped after every optimizer step.

The schedule language models are trained with (GPT-2, nanoGPT, Chinchilla): the learning rate climbs from
near zero over `warmup_steps` (Adam's moment estimates are poor in the first steps, and a full learning rate
then can throw a transformer off for good), then follows half a cosine from the optimizer's `lr` down to
`min_lr` at `total_steps`, and stays there. `total_steps` is the run's length unless the config sets it
(nanoGPT's `lr_decay_iters`). The formula is nanoGPT's `get_lr`, so its recipes carry over step for step.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from trainscope.core.errors import ConfigError


def warmup_cosine_lr(step: int, peak_lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / (warmup_steps + 1)  # never 0, even at step 0
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak_lr - min_lr)


class WarmupCosine(LRScheduler):
    """Linear warmup over `warmup_steps`, cosine from each group's initial lr to `min_lr` at `total_steps`."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        warmup_steps: int = 100,
        min_lr: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        for key, value, least in (("total_steps", total_steps, 1), ("warmup_steps", warmup_steps, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"scheduler.{key} must be an integer >= {least}, got {value!r}")
        if warmup_steps >= total_steps:
            raise ConfigError(
                f"scheduler.warmup_steps={warmup_steps} must be below the {total_steps} steps the schedule lasts "
                "(scheduler.total_steps, else the run's length)"
            )
        peak = min(float(group.get("initial_lr", group["lr"])) for group in optimizer.param_groups)
        if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or not 0 <= min_lr <= peak:
            raise ConfigError(f"scheduler.min_lr must be a number in [0, optimizer.lr={peak}], got {min_lr!r}")
        self.total_steps, self.warmup_steps, self.min_lr = total_steps, warmup_steps, float(min_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """`last_epoch` counts the optimizer steps taken: the lr the next one uses."""
        return [
            warmup_cosine_lr(self.last_epoch, base_lr, self.min_lr, self.warmup_steps, self.total_steps)
            for base_lr in self.base_lrs
        ]
