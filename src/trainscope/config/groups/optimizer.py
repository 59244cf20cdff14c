"""The `optimizer` and `scheduler` groups, typed: the keys trainscope checks or adds; every other key is an
argument of the group's `_target_` (a `torch.optim` class, a learning-rate schedule), whose signature is the
rest of the schema (`trainscope.config.typed.TargetArguments`): `optimizer.lrr=0.1` is refused by name.

Unset arguments keep the target's own defaults, so the optimizer's keys have none here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from trainscope.config.rules import FRACTION, POSITIVE_NUMBER, Rule, is_number, one_of
from trainscope.config.typed import TARGET_DEFAULT, TargetArguments, key

WEIGHT_DECAY_ON = ("all", "matrices")
"""`optimizer.weight_decay_on`: every parameter (torch's default), or only linear and convolution weights."""


PARAM_GROUP_KEYS = ("name", "params", "lr", "lr_scale", "weight_decay")


def _param_group(value: Any) -> bool:
    """One entry of `optimizer.param_groups`: `params` (a pattern or a list of them), `lr` or `lr_scale`, optional
    `weight_decay` and `name`."""
    if not isinstance(value, dict) or not set(value) <= set(PARAM_GROUP_KEYS) or "params" not in value:
        return False
    patterns = value["params"] if isinstance(value["params"], list) else [value["params"]]
    numbers = [value[name] for name in ("lr", "lr_scale", "weight_decay") if value.get(name) is not None]
    return (
        bool(patterns)
        and all(isinstance(pattern, str) and pattern for pattern in patterns)
        and not ("lr" in value and "lr_scale" in value)
        and all(is_number(number) and number >= 0 for number in numbers)
        and isinstance(value.get("name", ""), str)
    )


PARAM_GROUPS = Rule(
    "a list of {params: <pattern or list>, lr: <number> or lr_scale: <number>, weight_decay: <number>, name: <str>}",
    lambda value: isinstance(value, list) and all(_param_group(item) for item in value),
)


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig(TargetArguments):
    """The `optimizer` arguments trainscope checks, whichever optimizer takes them."""

    GROUP: ClassVar[str] = "optimizer"

    lr: float = key(POSITIVE_NUMBER, TARGET_DEFAULT)
    weight_decay: float = key(Rule("a number >= 0", lambda value: is_number(value) and value >= 0), TARGET_DEFAULT)
    momentum: float = key(FRACTION, TARGET_DEFAULT)
    weight_decay_on: str = key(one_of(WEIGHT_DECAY_ON, "all or matrices"), "all")
    """trainscope's own key, not the optimizer's: which parameters `weight_decay` applies to
    (`trainscope.engine.weight_decay`)."""
    param_groups: list[dict[str, Any]] | None = key(PARAM_GROUPS.or_null(), None)
    """trainscope's own key: parameters (by name pattern, `backbone` too) with their own learning rate or weight
    decay; the first group that names a parameter takes it, the rest train with the optimizer's own values
    (`trainscope.engine.param_groups`)."""
    layer_decay: float | None = key(
        Rule("a number in (0, 1]", lambda value: is_number(value) and 0 < value <= 1).or_null(), None
    )
    """trainscope's own key: timm-style layer-wise decay, the learning rate of the k-th layer group below the head
    times `layer_decay ** k`."""


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig(TargetArguments):
    """`scheduler.interval`, trainscope's own key: when the schedule steps. The rest are the schedule's arguments
    (`total_steps`, `steps_per_epoch`, `epochs` come from the run when it takes them and leaves them unset)."""

    GROUP: ClassVar[str] = "scheduler"

    interval: str = key(one_of(("epoch", "step"), "'epoch' or 'step'"), "epoch")
