"""Flatten a composed config into HParams values: the one place that decides what a hyperparameter is.

The HParams session of a run, the experiment declaration of a sweep and anything else that lists
hyperparameters use these functions, so a key has the same name and the same type everywhere:

- the chosen option of each config group (`model` -> `"cnn"`), except Hydra's own `hydra/*` groups;
- the scalar leaves of the `task`, `model`, `data`, `optimizer`, `scheduler` and `trainer` configs, joined
  with `.` (`optimizer.lr`); Hydra's `_target_`-style keys, `???` values and `None` are skipped;
- an interpolation that only copies another hyperparameter (`model.num_classes: ${data.num_classes}`)
  is skipped, since it would be a duplicate column; any other interpolation is resolved;
- values are normalized: lists and dicts become JSON strings, numpy/torch scalars Python scalars,
  enums their name, anything else its `str()`. TensorBoard turns a key whose type differs between
  runs into a string column, so one normalization for every run keeps numbers sortable.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

HParamValue = bool | int | float | str

HPARAM_SECTIONS: tuple[str, ...] = ("task", "model", "data", "optimizer", "scheduler", "trainer")
"""Top-level configs whose scalar leaves are hyperparameters."""

_SIMPLE_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def normalize_value(value: Any) -> HParamValue | None:
    """Return `value` as the bool/int/float/str TensorBoard stores, or None for "no value".

    Lists, tuples and dicts become JSON (`[16, 32]`), so a swept list and a run's list compare equal.
    """
    if value is None:
        return None
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    item = getattr(value, "item", None)  # numpy scalars, 0-d numpy arrays and torch tensors
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return normalize_value(item())
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return normalize_value(value)


def key_selected(key: str, include: Iterable[str] = ("*",), exclude: Iterable[str] = ()) -> bool:
    """Whether a flattened key passes the fnmatch `include` patterns and none of the `exclude` ones."""
    include = list(include)
    if include and not any(fnmatch.fnmatchcase(key, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(key, pattern) for pattern in exclude)


def is_hparam_key(
    key: str, group_names: Iterable[str], include: Iterable[str] = ("*",), exclude: Iterable[str] = ()
) -> bool:
    """Whether `key` (a group name or a dotted config key, e.g. from a sweep override) is a hyperparameter.

    The sweepers use this to declare exactly the swept keys that runs will report.
    """
    groups = {name for name in group_names if not _is_hydra_group(name)}
    is_candidate = key.split(".", 1)[0] in HPARAM_SECTIONS if "." in key else key in groups
    return is_candidate and key_selected(key, include, exclude)


def hparams_from_config(
    cfg: DictConfig,
    choices: Mapping[str, str | None],
    include: Iterable[str] = ("*",),
    exclude: Iterable[str] = (),
) -> dict[str, HParamValue]:
    """The hyperparameters of one run: group choices plus the flattened leaves of `HPARAM_SECTIONS`.

    `choices` is Hydra's `HydraConfig.get().runtime.choices`; `include`/`exclude` are fnmatch patterns
    on the flattened keys (`optimizer.*`, `trainer.device`).
    """
    include, exclude = list(include), list(exclude)
    hparams: dict[str, HParamValue] = {}
    for group, option in choices.items():
        value = normalize_value(option)
        if _is_hydra_group(group) or value is None:
            continue
        hparams[group] = value
    for section in HPARAM_SECTIONS:
        node = cfg.get(section) if isinstance(cfg, DictConfig) else None
        if isinstance(node, DictConfig):
            _flatten_into(hparams, node, section)
    return {key: hparams[key] for key in sorted(hparams) if key_selected(key, include, exclude)}


def _flatten_into(out: dict[str, HParamValue], node: DictConfig, prefix: str) -> None:
    unresolved = OmegaConf.to_container(node, resolve=False)
    assert isinstance(unresolved, dict)
    for key in node:
        name = str(key)
        if name.startswith("_") and name.endswith("_"):  # _target_, _partial_, _convert_, ...
            continue
        full_key = f"{prefix}.{name}"
        if OmegaConf.is_missing(node, name):
            continue
        if OmegaConf.is_interpolation(node, name) and _copies_an_hparam(unresolved[key]):
            continue
        child = node[name]
        if isinstance(child, DictConfig):
            _flatten_into(out, child, full_key)
            continue
        value = normalize_value(child)
        if value is not None:
            out[full_key] = value


def _copies_an_hparam(interpolation: Any) -> bool:
    match = _SIMPLE_INTERPOLATION.match(str(interpolation))
    return bool(match) and match.group(1).split(".", 1)[0] in HPARAM_SECTIONS


def _is_hydra_group(name: str) -> bool:
    return name == "hydra" or name.startswith("hydra/")
