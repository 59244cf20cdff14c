"""The config schema: every checked key, what it accepts and the check, in one table, run before any work starts.

A typo costs a second, not a run. Each rule names a key, what it accepts, and a check; the first failure becomes
one line such as `optimizer.lr must be a positive number, got 'abc'`. `RULES` are checked on the composed config
by the entrypoint; `DATA_RULES` by `trainscope.data.config` when the data is built (also for `eval.py`), together
with the few `data` checks that depend on each other (mean/std lengths follow the input shape). The sweepers'
keys are checked by their own plugins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainscope.core.errors import ConfigError


def is_number(value: Any) -> bool:
    """A finite real number, not a bool (YAML `true` is an int to Python).

    `inf` and `nan` parse as floats but are never a meaningful setting: `optimizer.lr=inf` would pass a
    range check and fail much later as a NaN loss.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    return is_number(value) and value > 0


def _positive_int(value: Any) -> bool:
    return is_int(value) and value > 0


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _int_at_least(minimum: int) -> Callable[[Any], bool]:
    return lambda value: is_int(value) and value >= minimum


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _compile_setting(value: Any) -> bool:
    """false/null = eager, true = inductor, or the name of a torch.compile backend (torch loads only for a name)."""
    if value is None or isinstance(value, bool):
        return True
    import torch

    return value in torch.compiler.list_backends(exclude_tags=())


def _batch_limit(value: Any) -> bool:
    return value is None or _positive_int(value) or (isinstance(value, float) and 0 < value <= 1)


def _input_shape(value: Any) -> bool:
    return (
        not isinstance(value, (str, bytes))
        and isinstance(value, Sequence)
        and len(value) == 3
        and all(is_int(v) and v > 0 for v in value)
    )


def _path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and bool(str(value))


DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

Rule = tuple[str, str, Callable[[Any], bool]]
"""A config key, what it accepts (shown to the user), and the check."""

DATASETS = ("mnist", "fashion_mnist", "cifar10", "mnist_sample", "synthetic", "image_folder", "custom")
LOADERS = ("auto", "in_memory", "dataloader")

# keys absent from the config are skipped
RULES: list[Rule] = [
    ("optimizer.lr", "a positive number", _positive_number),
    ("optimizer.weight_decay", "a number >= 0", lambda v: is_number(v) and v >= 0),
    ("optimizer.weight_decay_on", "all or matrices", lambda v: v in ("all", "matrices")),
    ("optimizer.momentum", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    ("trainer.max_epochs", "a positive integer", _positive_int),
    ("trainer.precision", "one of 32, bf16, 16", lambda v: str(v) in ("32", "bf16", "16")),
    ("trainer.device", "auto, cpu, cuda, cuda:<index> or mps", lambda v: bool(DEVICE_PATTERN.match(str(v)))),
    ("trainer.devices", "a positive integer (processes on this machine)", _positive_int),
    ("trainer.grad_clip", "null or a positive number", _optional(_positive_number)),
    ("trainer.seed", "an integer", is_int),
    ("trainer.deterministic", "true or false", _boolean),
    ("trainer.limit_train_batches", "null, a positive integer or a fraction in (0, 1]", _batch_limit),
    ("trainer.limit_val_batches", "null, a positive integer or a fraction in (0, 1]", _batch_limit),
    ("trainer.test", "true or false", _boolean),
    (
        "trainer.compile",
        "true, false or a torch.compile backend (inductor, aot_eager, eager, cudagraphs, ...)",
        _compile_setting,
    ),
    ("scheduler.interval", "'epoch' or 'step'", lambda v: v in ("epoch", "step")),
    ("scheduler.warmup_steps", "an integer >= 0", _int_at_least(0)),
    ("scheduler.min_lr", "a number >= 0", lambda v: is_number(v) and v >= 0),
    ("logging.log_every_n_steps", "a positive integer", _positive_int),
    ("logging.flush_secs", "a positive number", _positive_number),
    ("logging.histograms_every_n_epochs", "an integer >= 0", _int_at_least(0)),
    ("logging.images_every_n_epochs", "an integer >= 1", _int_at_least(1)),
    ("logging.num_images", "an integer >= 1", _int_at_least(1)),
    ("logging.text", "true or false", _boolean),
    ("logging.graph", "true or false", _boolean),
    ("logging.images", "true or false", _boolean),
    ("logging.worst_images", "true or false", _boolean),
    ("logging.confusion_matrix", "true or false", _boolean),
    ("callbacks.checkpoint.every_n_steps", "null or a positive integer", _optional(_positive_int)),
    ("monitor.metric", "a metric tag such as val/acc", lambda v: isinstance(v, str) and "/" in v),
    ("monitor.mode", "max or min", lambda v: v in ("max", "min")),
]

DATA_RULES: list[Rule] = [
    ("data.dataset", f"one of {', '.join(DATASETS)}", lambda v: v in DATASETS),
    ("data.root", "a directory path (set paths.data_dir)", _path),
    ("data.input_shape", "[channels, height, width] of positive integers", _input_shape),
    ("data.num_classes", "an integer >= 2", _int_at_least(2)),
    ("data.batch_size", "a positive integer", _positive_int),
    ("data.val_fraction", "a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    ("data.split_seed", "an integer", is_int),
    ("data.num_workers", "a non-negative integer", _int_at_least(0)),
    ("data.loader", f"one of {', '.join(LOADERS)}", lambda v: v in LOADERS),
    ("data.download", "true or false", _boolean),
    ("data.augment.crop_padding", "a non-negative integer", _int_at_least(0)),
    ("data.augment.horizontal_flip", "true or false", _boolean),
    ("data.num_samples", "a positive integer", _positive_int),  # data=synthetic only
    ("data.max_memory_gb", "a non-negative number", lambda v: is_number(v) and v >= 0),  # data=image_folder
    ("data.skip_bad_files", "true or false", _boolean),
    ("data.cache_dir", "a directory path", _optional(_path)),
]
"""The `data` keys checked one by one; `trainscope.data.config` adds the checks that combine them."""

_RULES_BY_KEY = {key: (accepted, check) for key, accepted, check in RULES + DATA_RULES}


def check_value(key: str, value: Any) -> Any:
    """`value` if it passes the rule for `key`, else the rule's one-line ConfigError."""
    accepted, check = _RULES_BY_KEY[key]
    if not check(value):
        raise ConfigError(f"{key} must be {accepted}, got {value!r}")
    return value


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that breaks a rule."""
    for key, _, _ in RULES:
        if OmegaConf.select(cfg, key, default="__absent__") == "__absent__":
            continue
        check_value(key, OmegaConf.select(cfg, key))
    names = optimized_metric_names(cfg)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"optimized_metric must be a metric tag or a list of tags, got {cfg.optimized_metric!r}")
    check_validation_metrics(cfg)


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
