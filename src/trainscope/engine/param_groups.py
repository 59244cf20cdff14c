"""`optimizer.param_groups` and `optimizer.layer_decay`: learning rates and weight decay per part of the model.

Fine-tuning gives a new head a higher learning rate than a pretrained backbone, and layers near the input (the
most general features) a lower one than those near the output (timm's layer-wise decay, from BEiT). Each
parameter lands in one optimizer group, named so that TensorBoard shows its learning rate as `lr/<name>`:

- the first `optimizer.param_groups` entry whose `params` patterns name it (`trainscope.models.parts` matches the
  patterns, `backbone` included), with that entry's `lr`, or the optimizer's lr times its `lr_scale`, and its
  `weight_decay`; an entry without `name` is `group<i>`;
- else the group `default`, with the optimizer's own values;
- with `layer_decay`, the learning rate of a parameter `k` layer groups below the head (`layer_groups`, counted from
  the output side) is multiplied by `layer_decay ** k`, and its group's name ends in `.layer<k>`.

`optimizer.weight_decay_on` then splits each group into its decayed and undecayed halves (same name, same lr).
Frozen parameters are in the groups too (`trainscope.callbacks.freezing`): they get no gradient, hence no update.
A scheduler scales every group's learning rate by the same factor (each group starts from its own `initial_lr`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trainscope.core.errors import ConfigError
from trainscope.engine.weight_decay import parameter_groups
from trainscope.models.parts import layer_groups, select_parameters

DEFAULT_GROUP = "default"


def optimizer_groups(
    model: nn.Module,
    *,
    lr: float | None,
    weight_decay: float,
    weight_decay_on: str,
    groups: list[dict[str, Any]] | None = None,
    layer_decay: float | None = None,
) -> list[dict[str, Any]]:
    """The optimizer's parameter groups for `model` (every trainable parameter once, in model order)."""
    if not groups and layer_decay is None:
        return parameter_groups(model, weight_decay_on, weight_decay)
    entry_of: dict[str, int] = {}
    for index, entry in enumerate(groups or []):
        patterns = entry["params"] if isinstance(entry["params"], list) else [entry["params"]]
        for name in select_parameters(model, patterns, f"optimizer.param_groups[{index}].params"):
            entry_of.setdefault(name, index)
    depth_of = _depths(model) if layer_decay is not None else {}
    buckets: dict[tuple[int, int], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            buckets.setdefault((entry_of.get(name, -1), depth_of.get(name, 0)), []).append(parameter)
    result = []
    for (index, depth), parameters in buckets.items():
        entry = groups[index] if index >= 0 and groups else {}
        group_lr = _entry_lr(entry, lr, index)
        if layer_decay is not None and group_lr is not None:
            group_lr *= layer_decay**depth
        name = entry.get("name") or (f"group{index}" if index >= 0 else DEFAULT_GROUP)
        if layer_decay is not None:
            name = f"{name}.layer{depth}"
        group_decay = float(entry.get("weight_decay", weight_decay))
        own = {"name": name}
        if group_lr is not None:
            own["lr"] = group_lr
        if entry.get("weight_decay") is not None and weight_decay_on == "all":
            own["weight_decay"] = group_decay  # else the optimizer's own weight_decay applies
        for group in parameter_groups(model, weight_decay_on, group_decay, parameters):
            result.append({**group, **own})
    return result


def _entry_lr(entry: dict[str, Any], lr: float | None, index: int) -> float | None:
    if entry.get("lr") is not None:
        return float(entry["lr"])
    if entry.get("lr_scale") is None:
        return lr
    if lr is None:
        raise ConfigError(f"optimizer.param_groups[{index}].lr_scale needs optimizer.lr to scale; set optimizer.lr")
    return lr * float(entry["lr_scale"])


def _depths(model: nn.Module) -> dict[str, int]:
    """Each parameter's layer group counted from the output side: the head's is 0."""
    return {name: depth for depth, group in enumerate(reversed(layer_groups(model))) for name in group}
