"""Reading YAML files the user can edit (the config tree, a run's saved `.hydra/` files) with one-line errors.

PyYAML's message for a typo spans several lines and Hydra turns it into a traceback; the user needs the file,
the line and the column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from trainscope.core.errors import ConfigError

_SYNTAX_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the tree in ~3 ms


def _malformed(path: Path, error: yaml.MarkedYAMLError) -> ConfigError:
    mark = error.problem_mark or error.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = ", ".join(part for part in (error.context, error.problem) if part)
    return ConfigError(f"{where}: malformed YAML ({problem}); fix that line")


def load_yaml(path: Path) -> Any:
    """`OmegaConf.load(path)`, or a ConfigError naming the file, line and column of the mistake."""
    try:
        return OmegaConf.load(path)
    except yaml.MarkedYAMLError as error:
        raise _malformed(path, error) from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None


def load_plain_yaml(path: Path) -> Any:
    """The file as plain data with every interpolation left as text: nothing in it is resolved.

    For files of a run directory read for a few values (`.hydra/hydra.yaml`): selecting a key of the loaded
    config would resolve it, and a resolver may create directories (`unique_dir`) or build objects.
    """
    return OmegaConf.to_container(load_yaml(path), resolve=False)


def plain_select(data: Any, dotted: str) -> Any:
    """The value at `dotted` (`hydra.runtime.cwd`) of plain data, or None where any part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def check_yaml_tree(root: Path) -> None:
    """Parse every YAML file under `root` (the config tree, `experiment/` included though it is a link).

    The whole tree, not only the files a run selects: Hydra reports a syntax error in a file it composes as a
    traceback, and a broken file anywhere in the tree is worth fixing. Syntax only; Hydra reads the content.
    """
    for folder, _, names in sorted(os.walk(root, followlinks=True)):
        for name in sorted(names):
            if name.endswith((".yaml", ".yml")):
                path = Path(folder) / name
                try:
                    yaml.compose(path.read_bytes(), Loader=_SYNTAX_LOADER)
                except yaml.MarkedYAMLError as error:
                    raise _malformed(path, error) from None
