"""The `optimizer` and `scheduler` groups, typed: the keys trainscope checks or adds; every other key is an
argument of the group's `_target_` (a `torch.optim` class, a learning-rate schedule), whose signature is the
rest of the schema (`trainscope.config.typed.TargetArguments`): `optimizer.lrr=0.1` is refused by name.

Unset arguments keep the target's own defaults, so the optimizer's keys have none here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainscope.config.rules import FRACTION, POSITIVE_NUMBER, Rule, is_number, one_of
from trainscope.config.typed import TARGET_DEFAULT, TargetArguments, key

WEIGHT_DECAY_ON = ("all", "matrices")
"""`optimizer.weight_decay_on`: every parameter (torch's default), or only linear and convolution weights."""


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


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig(TargetArguments):
    """`scheduler.interval`, trainscope's own key: when the schedule steps. The rest are the schedule's arguments
    (`total_steps`, `steps_per_epoch`, `epochs` come from the run when it takes them and leaves them unset)."""

    GROUP: ClassVar[str] = "scheduler"

    interval: str = key(one_of(("epoch", "step"), "'epoch' or 'step'"), "epoch")
