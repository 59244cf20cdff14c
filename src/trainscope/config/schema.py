"""The config schema: every checked key, what it accepts and the check, run before any work starts.

A typo costs a second, not a run. The typed groups (`trainscope.config.groups`) write each key once, with its
type, default and rule; `OTHER_RULES` holds the few checked keys outside them. `validate_config` checks the composed
config at the entrypoint: the first failure becomes one line such as `optimizer.lr must be a positive number,
got 'abc'`, a key a typed group does not have one such as `data.batchsize is not a key of data=mnist_sample;
did you mean data.batch_size?`. The data builders check their keys again when they are called (also for
`eval.py`, and with the checks that need the data: a mean per input channel). The sweepers' keys are checked
by their own plugins.
"""

from __future__ import annotations

import difflib
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainscope.config.groups.data import DATA_BUILDERS, DATA_CONFIGS, AugmentConfig, data_config_class
from trainscope.config.groups.finetune import FinetuneConfig
from trainscope.config.groups.logging import LoggingConfig
from trainscope.config.groups.optimizer import OptimizerConfig, SchedulerConfig
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.config.rules import METRIC_TAG, POSITIVE_INT, Rule, is_int, is_number, one_of
from trainscope.config.typed import TypedGroup, check_group, rules
from trainscope.core.errors import ConfigError

__all__ = ["RULES", "check_value", "is_int", "is_number", "validate_config"]

TYPED_GROUPS: tuple[type[TypedGroup], ...] = (
    TrainerConfig,
    LoggingConfig,
    FinetuneConfig,
    OptimizerConfig,
    SchedulerConfig,
)
"""The groups with one dataclass for every option (`data` has one per option). The optimizer's and scheduler's
are checked last: their `_target_`'s signature is part of their schema, and importing it loads torch."""

OTHER_RULES: list[tuple[str, Rule]] = [
    ("callbacks.checkpoint.every_n_steps", POSITIVE_INT.or_null()),
    ("monitor.metric", METRIC_TAG),
    ("monitor.mode", one_of(("max", "min"), "max or min")),
]
"""Checked keys outside the typed groups; absent ones are skipped."""

RULES: list[tuple[str, Rule]] = [
    *(pair for group in TYPED_GROUPS for pair in rules(group)),
    *OTHER_RULES,
    *(pair for config in DATA_CONFIGS for pair in rules(config)),
]
"""Every checked key and its rule (a data key's first, where data options differ): the table `check_value` reads."""

_RULES_BY_KEY: dict[str, Rule] = {}
for _key, _rule in RULES:
    _RULES_BY_KEY.setdefault(_key, _rule)


def check_value(key: str, value: Any) -> Any:
    """`value` if it passes the rule for `key`, else the rule's one-line ConfigError."""
    return _RULES_BY_KEY[key].checked(key, value)


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that breaks a rule, or the first key a typed group does not have."""
    for key, rule in OTHER_RULES:
        if OmegaConf.select(cfg, key, default="__absent__") == "__absent__":
            continue
        rule.checked(key, OmegaConf.select(cfg, key))
    names = optimized_metric_names(cfg)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"optimized_metric must be a metric tag or a list of tags, got {cfg.optimized_metric!r}")
    check_validation_metrics(cfg)
    check_data(cfg)
    for group in TYPED_GROUPS:
        check_group(group, cfg.get(group.GROUP))


TYPED_GROUP_KEYS: dict[str, list[str]] = {
    "data": list(dict.fromkeys(name for config in DATA_CONFIGS for name in config.key_names())),
    AugmentConfig.GROUP: AugmentConfig.key_names(),
    TrainerConfig.GROUP: TrainerConfig.key_names(),
    LoggingConfig.GROUP: LoggingConfig.key_names(),
    FinetuneConfig.GROUP: FinetuneConfig.key_names(),
}
"""The keys of each typed group (of any data option), for a hint when Hydra refuses a key it does not have."""


def closest_key(full_key: str) -> str | None:
    """The key of a typed group closest to a mistyped `full_key` (`data.batchsize` → `data.batch_size`)."""
    group, _, name = full_key.rpartition(".")
    close = difflib.get_close_matches(name, TYPED_GROUP_KEYS.get(group, []), n=1)
    return f"{group}.{close[0]}" if close else None


def check_data(cfg: DictConfig) -> None:
    """The `data` group against the dataclass of its option (`trainscope.config.groups.data`), unless its
    `_target_` is the user's own builder, which takes its own keys."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig) or data.get("_target_") not in DATA_BUILDERS:
        return
    check_group(data_config_class(data.get("dataset"), str(data._target_)), data)


def check_validation_metrics(cfg: DictConfig) -> None:
    """No validation split means no `val/*` metrics: refuse a config that watches one, rather than log zeros.

    A run with `data.val_fraction=0` trains without validating (nothing is logged as `val/*`); checkpointing,
    early stopping and the sweepers must then watch a training metric, or they would compare values never logged.
    """
    if OmegaConf.select(cfg, "data.val_fraction", default=None) != 0:
        return
    watched = [("monitor.metric", OmegaConf.select(cfg, "monitor.metric", default=None))]
    watched += [("optimized_metric", name) for name in optimized_metric_names(cfg)]
    callbacks = OmegaConf.select(cfg, "callbacks", default=None) or {}
    watched += [
        (f"callbacks.{name}.monitor", OmegaConf.select(cfg, f"callbacks.{name}.monitor", default=None))
        for name in callbacks
    ]
    for key, metric in watched:
        if isinstance(metric, str) and metric.startswith("val/"):
            raise ConfigError(
                f"data.val_fraction=0 leaves no validation split, so no val/* metric is logged, but {key} is "
                f"{metric}; set data.val_fraction above 0, or watch a training metric: "
                "monitor.metric=train/acc optimized_metric=train/acc"
            )


def optimized_metric_names(cfg: DictConfig) -> list[Any]:
    """`optimized_metric` as a list: one tag, or several for a multi-objective sweep."""
    metrics = cfg.optimized_metric
    return list(metrics) if OmegaConf.is_list(metrics) else [metrics]
