"""The `trainer` group, typed: how long, where and how the loop trains.

The defaults are `conf/trainer/default.yaml`'s (a test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainscope.config.rules import (
    BATCH_LIMIT,
    BOOLEAN,
    COMPILE,
    DEVICE,
    INTEGER,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    Rule,
)
from trainscope.config.typed import TypedGroup, key

BatchLimit = int | float | None
"""All batches (None), an int count, or a float fraction in (0, 1] (as Lightning's limit_*_batches)."""

PRECISIONS = ("32", "bf16", "16")


@dataclass(frozen=True, kw_only=True)
class TrainerConfig(TypedGroup):
    """The `trainer` keys."""

    GROUP: ClassVar[str] = "trainer"

    max_epochs: int = key(POSITIVE_INT, 3)  # ignored when max_steps is set
    max_steps: int | None = key(POSITIVE_INT.or_null(" (max_epochs decides)"), None)  # optimizer steps
    val_check_interval: int | None = key(POSITIVE_INT.or_null(" (validate at each epoch end)"), None)  # steps
    accumulate_grad_batches: int = key(POSITIVE_INT, 1)  # batches per optimizer step
    device: str = key(DEVICE, "auto")  # under torchrun, auto/cuda = cuda:<local_rank>
    devices: int = key(Rule("a positive integer (processes on this machine)", POSITIVE_INT.check), 1)
    precision: str = key(Rule("one of 32, bf16, 16", lambda value: str(value) in PRECISIONS), "32")
    grad_clip: float | None = key(POSITIVE_NUMBER.or_null(), None)  # max global gradient norm
    seed: int = key(INTEGER, 42)
    deterministic: bool = key(BOOLEAN, False)
    limit_train_batches: BatchLimit = key(BATCH_LIMIT, None)
    limit_val_batches: BatchLimit = key(BATCH_LIMIT, None)
    test: bool = key(BOOLEAN, True)  # evaluate the best checkpoint on the test split at the end
    channels_last: bool = key(BOOLEAN, False)
    compile: bool | str | None = key(COMPILE, False)
    cudnn_benchmark: bool = key(BOOLEAN, True)
