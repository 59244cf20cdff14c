"""Catch a mistyped config group option before Hydra does, to say it in one line.

Hydra's own message for `model=nope` spans a dozen lines; ours names the bad value and the options.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from hydra.errors import HydraException

from trainscope.errors import ConfigError


def group_options(config_root: Path, group: str) -> list[str] | None:
    """The options of config group `group`, or None if it is not a group."""
    directory = config_root / group
    if not directory.is_dir():
        return None
    return sorted(path.stem for path in directory.glob("*.yaml"))


def check_group_choices(arguments: list[str], config_root: Path) -> None:
    """Raise ConfigError for `group=option` (or a sweep over options) naming an option that does not exist."""
    candidates = [arg for arg in arguments if not arg.startswith("-") and "=" in arg]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except HydraException:
        return  # malformed syntax: Hydra reports it with the position of the error
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra"):
            continue
        options = group_options(config_root, group)
        if options is None:
            continue
        value = override.value()
        choices = value.list if isinstance(value, ChoiceSweep) else [value]
        for choice in choices:
            if isinstance(choice, str) and choice not in options:
                raise ConfigError(f"{group}={choice} is not an option; choose one of: {', '.join(options)}")
