"""The config schema: every checked key, what it accepts and the check, run before any work starts.

A typo costs a second, not a run. The typed groups (`trainscope.config.groups`) write each key once, with its
type, default and rule; `RULES` adds the few checked keys outside them. `validate_config` checks the composed
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
from trainscope.config.rules import (
    BATCH_LIMIT,
    BOOLEAN,
    COMPILE,
    DEVICE,
    INTEGER,
    METRIC_TAG,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    Rule,
    int_at_least,
    is_int,
    is_number,
    one_of,
)
from trainscope.config.typed import check_group, rules
from trainscope.core.errors import ConfigError

__all__ = ["RULES", "check_value", "is_int", "is_number", "validate_config"]

NUMBER_AT_LEAST_ZERO = Rule("a number >= 0", lambda value: is_number(value) and value >= 0)

# keys absent from the config are skipped
RULES: list[tuple[str, Rule]] = [
    ("optimizer.lr", POSITIVE_NUMBER),
    ("optimizer.weight_decay", NUMBER_AT_LEAST_ZERO),
    ("optimizer.momentum", Rule("a number in [0, 1)", lambda value: is_number(value) and 0 <= value < 1)),
    ("trainer.max_epochs", POSITIVE_INT),
    ("trainer.precision", Rule("one of 32, bf16, 16", lambda value: str(value) in ("32", "bf16", "16"))),
    ("trainer.device", DEVICE),
    ("trainer.devices", Rule("a positive integer (processes on this machine)", POSITIVE_INT.check)),
    ("trainer.grad_clip", POSITIVE_NUMBER.or_null()),
    ("trainer.seed", INTEGER),
    ("trainer.deterministic", BOOLEAN),
    ("trainer.limit_train_batches", BATCH_LIMIT),
    ("trainer.limit_val_batches", BATCH_LIMIT),
    ("trainer.test", BOOLEAN),
    ("trainer.compile", COMPILE),
    ("scheduler.interval", one_of(("epoch", "step"), "'epoch' or 'step'")),
    ("logging.log_every_n_steps", POSITIVE_INT),
    ("logging.flush_secs", POSITIVE_NUMBER),
    ("logging.histograms_every_n_epochs", int_at_least(0)),
    ("logging.images_every_n_epochs", int_at_least(1)),
    ("logging.num_images", int_at_least(1)),
    ("logging.text", BOOLEAN),
    ("logging.graph", BOOLEAN),
    ("logging.images", BOOLEAN),
    ("logging.worst_images", BOOLEAN),
    ("logging.confusion_matrix", BOOLEAN),
    ("callbacks.checkpoint.every_n_steps", POSITIVE_INT.or_null()),
    ("monitor.metric", METRIC_TAG),
    ("monitor.mode", one_of(("max", "min"), "max or min")),
]

_RULES_BY_KEY: dict[str, Rule] = {}
for _key, _rule in [*RULES, *(pair for config in DATA_CONFIGS for pair in rules(config))]:
    _RULES_BY_KEY.setdefault(_key, _rule)


def check_value(key: str, value: Any) -> Any:
    """`value` if it passes the rule for `key`, else the rule's one-line ConfigError."""
    return _RULES_BY_KEY[key].checked(key, value)


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that breaks a rule, or the first key a typed group does not have."""
    for key, rule in RULES:
        if OmegaConf.select(cfg, key, default="__absent__") == "__absent__":
            continue
        rule.checked(key, OmegaConf.select(cfg, key))
    names = optimized_metric_names(cfg)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"optimized_metric must be a metric tag or a list of tags, got {cfg.optimized_metric!r}")
    check_validation_metrics(cfg)
    check_data(cfg)


TYPED_GROUP_KEYS: dict[str, list[str]] = {
    "data": list(dict.fromkeys(name for config in DATA_CONFIGS for name in config.key_names())),
    AugmentConfig.GROUP: AugmentConfig.key_names(),
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
