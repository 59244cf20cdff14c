"""Which `_target_`s a config read back from a run directory may name: a run directory is untrusted input.

`python train.py ...` builds whatever its command line and `conf/` name: the user typed it, so a new run trusts
every `_target_`. A run directory is different: `eval.py run=<dir>` and `train.py resume=<dir>` rebuild the run
from `<dir>/.hydra/`, files anyone who handed you the directory could have written, and `hydra.utils.instantiate`
calls whatever they name (`_target_: torch.load` with `weights_only: false` runs a pickle). So before anything of
such a config is built, `check_targets` walks all of it (nested configs, lists, `_args_`; `_partial_` changes
nothing) and accepts a `_target_` only if it is

- a class in a package trainscope builds from config (`TRUSTED_PACKAGES`: models, data, callbacks, the pruning
  callback, trainscope's learning-rate schedules, `torch.nn`, `torch.optim`, `torchvision.models`,
  `torchvision.transforms`), or one of the factory functions the bundled configs name (`TRUSTED_FUNCTIONS`).
  Classes only: these packages also hold functions that write or load files (`torch.load`,
  `trainscope.core.run_dir.atomic_write`), and a constructor of a model, optimizer, schedule or callback does
  neither;
- anything in a module the user allows (`allow_targets=[my_pkg]`: `my_pkg` and its submodules);
- anything in a module of the current directory (`my_callbacks.py` next to `train.py`), when the run was made in
  this directory (its `.hydra/hydra.yaml`).

The object a target resolves to must also be defined where the target says (its `__module__`), so
`trainscope.data.build.torch.load` (a module's import, reached by attribute) is not a way around the list.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainscope.config.groups.data import DATA_BUILDERS
from trainscope.config.yaml_files import load_plain_yaml, plain_select
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import SAVED_HYDRA_CONFIG

TRUSTED_PACKAGES: tuple[str, ...] = (
    "trainscope.models",
    "trainscope.data",
    "trainscope.tasks",
    "trainscope.callbacks",
    "trainscope.engine.schedules",
    "trainscope.engine.ema",
    "torch.nn",
    "torch.optim",
    "torchvision.models",
    "torchvision.transforms",
)
"""Packages whose classes a run directory's config may build: what `conf/` itself builds from."""

TRUSTED_FUNCTIONS: frozenset[str] = DATA_BUILDERS | {"trainscope.models.resnet18_small", "trainscope.models.timm_model"}
"""The factory functions (not classes) that the bundled configs (`conf/data/*`, `conf/model/*`) name."""

DOTTED_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def targets_in(config: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every `(key, _target_ value)` in a config container, at any depth (dicts in lists included)."""
    if isinstance(config, dict):
        for key, value in config.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from targets_in(value, where)
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from targets_in(value, f"{path}[{index}]")


def _resolve(target: str) -> Any:
    """The object `target` names: the longest importable module prefix, then attributes."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(target)


def _is_local_module(name: str, directory: Path) -> bool:
    """A top-level module or package that lives in `directory` (found without running it)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = [Path(spec.origin).parent] if spec.origin and spec.has_location else []
    if spec.submodule_search_locations:  # a package (a namespace package has no origin)
        places += [Path(location).parent for location in spec.submodule_search_locations]
    return any(place.resolve() == directory for place in places)


def run_made_in(run_dir: Path, directory: Path) -> bool:
    """Whether the run's `.hydra/hydra.yaml` says it was started in `directory`."""
    hydra_file = run_dir / SAVED_HYDRA_CONFIG
    if not hydra_file.is_file():
        return False
    made_in = plain_select(load_plain_yaml(hydra_file), "hydra.runtime.cwd")
    return isinstance(made_in, str) and "${" not in made_in and Path(made_in).resolve() == directory


def refusal(target: Any, allowed: Sequence[str], local_directory: Path | None) -> str | None:
    """Why `target` may not be built from a run directory's config, or None if it may."""
    if not isinstance(target, str) or not DOTTED_NAME.match(target):
        return "is not a plain dotted name"
    top = target.split(".")[0]
    user = [package for package in allowed if _within(target, package)]
    trusted = [package for package in TRUSTED_PACKAGES if _within(target, package)]
    local = local_directory is not None and _is_local_module(top, local_directory)
    if not (user or trusted or local):
        return "is not in trainscope's models, data or callbacks, torch.nn, torch.optim or torchvision"
    try:
        found = _resolve(target)
    except (ImportError, AttributeError):
        return "cannot be found"
    module = str(getattr(found, "__module__", None) or "")
    if user and any(_within(module, package) for package in [*allowed, *TRUSTED_PACKAGES]):
        return None
    if local and _within(module, top):
        return None
    if trusted and target in TRUSTED_FUNCTIONS:
        return None
    if trusted and inspect.isclass(found) and any(_within(module, package) for package in TRUSTED_PACKAGES):
        return None
    if trusted:
        return f"is not a class of {trusted[0]} (it is {module}.{getattr(found, '__qualname__', type(found).__name__)})"
    return f"resolves to {module or type(found).__name__}, outside the allowed modules"


def check_targets(config: DictConfig | dict[str, Any], run_dir: Path, allowed: Sequence[str], command: str) -> None:
    """Raise a one-line ConfigError for the first `_target_` of a run directory's config that may not be built.

    `config` is the whole config about to be built (unresolved: an interpolated `_target_` is refused, and
    nothing is resolved before the check); `allowed` the modules the user allows; `command` the argument
    the run directory came with (`run` for eval.py, `resume`), named in the message.
    """
    container = OmegaConf.to_container(config, resolve=False) if isinstance(config, DictConfig) else config
    here = Path(os.getcwd()).resolve()
    local_directory = here if run_made_in(run_dir, here) else None
    for key, target in targets_in(container):
        reason = refusal(target, allowed, local_directory)
        if reason is None:
            continue
        top = str(target).split(".")[0] if isinstance(target, str) else "<module>"
        raise ConfigError(
            f"{command}={run_dir}: {key}={target} {reason}; a run directory is untrusted input, so only "
            f"trainscope, torch and torchvision classes are built from it: if you trust this run, "
            f"pass allow_targets=[{top}]"
        )
