"""`finetune.lora`: LoRA adapters through PEFT, on any model's `nn.Linear`/`Conv2d` layers (Hugging Face or not).

PEFT is an optional dependency (`pip install 'trainscope[finetune]'`), imported only when a run has adapters. They
are injected into the model in place (`peft.inject_adapter_in_model`), with no wrapper around it: the model's
forward, the loop and generation see the same module, whose state dict then holds the adapter weights next to the
frozen base weights (`<layer>.base_layer.weight`, `<layer>.lora_A.default.weight`, ...). So a checkpoint holds the
adapters, and `eval.py`, `resume=` and `trainscope-generate` rebuild the same adapted model from the run's config
before loading it. `merged_state_dict` folds the adapters into plain weights (`trainscope-export merged=true`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection
from typing import Any

from torch import Tensor, nn

from trainscope.config.groups.finetune import FinetuneConfig, LoraConfig
from trainscope.core.errors import ConfigError

log = logging.getLogger(__name__)

ADAPTABLE = (nn.Linear, nn.Conv2d)
ADAPTABLE_NAMES = ("Conv1D",)
"""transformers' `Conv1D` (GPT-2's `c_attn`, `c_proj`, `c_fc`): a linear layer with its weight stored transposed."""


def _adaptable(module: nn.Module) -> bool:
    return isinstance(module, ADAPTABLE) or type(module).__name__ in ADAPTABLE_NAMES


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError("finetune.lora needs the peft package: pip install 'trainscope[finetune]'") from None
    return peft


def with_adapters(model: nn.Module, finetune: Any) -> nn.Module:
    """`model` with the adapters `finetune` (the `finetune` config node) asks for; unchanged without any."""
    config = FinetuneConfig.from_config(finetune).lora if finetune is not None else None
    return model if config is None else add_lora(model, config)


def add_lora(model: nn.Module, config: LoraConfig) -> nn.Module:
    """Inject LoRA into the layers `config.target_modules` names; only the adapters stay trainable."""
    peft = _peft()
    layers = [name for name, module in model.named_modules() if _adaptable(module)]
    for target in config.target_modules:
        if not any(name == target or name.endswith(f".{target}") for name in layers):
            raise ConfigError(
                f"finetune.lora.target_modules: {target!r} names no Linear or Conv2d layer of {type(model).__name__}; "
                f"name one of its layers or their last part, e.g. {', '.join(layers[:4])}"
            )
    lora = peft.LoraConfig(
        r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=list(config.target_modules)
    )
    with warnings.catch_warnings():  # "fan_in_fan_out is set to False but the target module is Conv1D": PEFT fixes it
        warnings.filterwarnings("ignore", message="fan_in_fan_out", category=UserWarning)
        peft.inject_adapter_in_model(lora, model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "LoRA r=%d on %s: %s adapter parameters train", config.r, ", ".join(config.target_modules), f"{trainable:,}"
    )
    return model


def merged_state_dict(
    state: dict[str, Tensor], config: LoraConfig, transposed: Collection[str] = ()
) -> dict[str, Tensor]:
    """An adapted model's state dict with each adapter folded into its layer: the keys of the model without LoRA.

    Plain tensor arithmetic on the checkpoint (no model is built, nothing of the run runs): a layer's weight becomes
    `W + alpha / r * B @ A` (for a convolution, `B`'s 1x1 kernel times `A`'s kernel), as PEFT's own merge computes;
    `transposed` names the layers whose weight is stored `[in, out]` (`transposed_layers`).
    """
    scaling = config.alpha / config.r
    merged: dict[str, Tensor] = {}
    for key, value in state.items():
        if ".lora_" in key:
            continue
        layer, marker, rest = key.partition(".base_layer.")
        if not marker:
            merged[key] = value
            continue
        if rest == "weight" and f"{layer}.lora_A.default.weight" in state:
            down, up = state[f"{layer}.lora_A.default.weight"], state[f"{layer}.lora_B.default.weight"]
            delta = up.flatten(1) @ down.flatten(1)  # [out, in] (a convolution: [out, in * kernel])
            if layer in transposed:  # transformers' Conv1D keeps its weight as [in, out]
                delta = delta.T
            delta = delta.reshape(value.shape)
            value = value + scaling * delta.to(value.dtype)
        merged[f"{layer}.{rest}"] = value
    return merged


def transposed_layers(model: nn.Module) -> list[str]:
    """The adapted layers whose weight is stored `[in, out]` (transformers' Conv1D): the state dict alone cannot
    tell a square one apart, so the checkpoint keeps this list (`trainscope.callbacks.freezing`)."""
    return [name for name, module in model.named_modules() if getattr(module, "fan_in_fan_out", False)]
