"""Training FLOPs per token of a transformer language model: the numerator of model FLOPs utilization (MFU).

The estimate of the PaLM paper (appendix B), as nanoGPT's `estimate_mfu` uses it: a forward and backward pass
costs 6 FLOPs per parameter per token (2 forward, 4 backward), plus the attention scores and their weighted
sum, 12 * n_layer * n_embd * context per token, which no parameter count sees. Embedding lookups are no
matmuls, so the position embedding is left out of the parameters (the token embedding stays: it is also the
output layer). MFU is then `flops_per_token * tokens_per_second / peak FLOPs of the device`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trainscope.models.gpt import GPT
from trainscope.models.hf import HuggingFaceCausalLM

_LAYERS = ("n_layer", "num_hidden_layers")
_WIDTH = ("n_embd", "hidden_size", "d_model")


def _first(config: Any, names: tuple[str, ...]) -> int | None:
    return next((int(value) for name in names if isinstance(value := getattr(config, name, None), int)), None)


def training_flops_per_token(model: nn.Module, context: int) -> float | None:
    """FLOPs of one training step per token at `context` tokens per sequence; None for a model whose depth and
    width it cannot read (then no MFU is reported)."""
    if isinstance(model, GPT):
        parameters, layers, width = model.num_parameters(include_position_embedding=False), model.n_layer, model.n_embd
    elif isinstance(model, HuggingFaceCausalLM):
        config = model.model.config
        layers, width = _first(config, _LAYERS), _first(config, _WIDTH)
        positions = getattr(getattr(model.model, "transformer", None), "wpe", None)
        parameters = sum(p.numel() for p in model.parameters())
        if isinstance(positions, nn.Embedding):
            parameters -= positions.weight.numel()
    else:
        return None
    if layers is None or width is None:
        return None
    return 6.0 * parameters + 12.0 * layers * width * context
