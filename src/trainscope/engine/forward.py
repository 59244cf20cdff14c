"""How a batch goes through the model, the same in training and evaluation: precision, memory format, compilation."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocasts on CPU and CUDA; fp16 mixed precision only on CUDA (on CPU it runs in fp32)."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "16":
        if device.type != "cuda":
            log.warning("trainer.precision=16 needs CUDA; training in 32-bit on %s", device)
            return None
        return torch.float16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[None]:
    """Mixed precision for `dtype`; nothing for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_memory_format(inputs: Any, channels_last: bool) -> Any:
    """Image batches in channels_last when `trainer.channels_last` is on (the model's weights are too); any
    other input (a table's rows, token ids, a dict) as it is."""
    if channels_last and isinstance(inputs, Tensor) and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def compiled(model: nn.Module, setting: bool | str | None) -> nn.Module:
    """`trainer.compile`: false = eager, true = torch.compile with inductor, a string = that dynamo backend.

    The compiled module shares the model's parameters; callers keep the plain module for state_dicts, so
    checkpoints never carry torch.compile's `_orig_mod.` prefix.
    """
    if setting is None or setting is False:
        return model
    if setting is True:
        return torch.compile(model)
    return torch.compile(model, backend=str(setting))
