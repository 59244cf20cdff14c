"""Command-line overrides before Hydra parses them: quoting values, and catching a mistyped group option.

Hydra's own message for `model=nope` spans a dozen lines; ours names the bad value and the options.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, QuotedString
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationKeyError, InterpolationResolutionError

from trainscope.core.errors import ConfigError, first_line


def hydra_quote(value: object) -> str:
    """A Hydra override value that stays one string, whatever it holds (`,` `=` spaces in run dirs)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def override_value(value: Any) -> Any:
    """A parsed override value as the run's config will hold it (quoted strings unquoted)."""
    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [override_value(item) for item in value]
    if isinstance(value, dict):
        return {override_value(key): override_value(item) for key, item in value.items()}
    return value


def override_key(override: str) -> str:
    """The config key (or group) an override sets: `+a.b=1` → `a.b`, `~model` → `model`."""
    key = override.split("=", 1)[0]
    return key.lstrip("~+")


def unquote(text: str) -> str:
    """An override value without the one pair of quotes around it, if any."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def group_options(config_roots: Sequence[Path], group: str) -> list[str] | None:
    """The options of config group `group` in any of `config_roots`, or None if it is a group in none."""
    directories = [root / group for root in config_roots if (root / group).is_dir()]
    if not directories:
        return None
    return sorted({path.stem for directory in directories for path in directory.glob("*.yaml")})


def user_config_dirs(arguments: Sequence[str]) -> list[Path] | None:
    """The `--config-dir`/`-cd` folders Hydra adds to the search path; None when the search path is
    changed in ways this check cannot follow (`--config-path`, `hydra.searchpath`)."""
    dirs: list[Path] = []
    for index, argument in enumerate(arguments):
        flag, _, value = argument.partition("=")
        if flag in ("--config-path", "-cp") or argument.lstrip("+").startswith("hydra.searchpath"):
            return None
        if flag in ("--config-dir", "-cd"):
            value = value if value else (arguments[index + 1] if index + 1 < len(arguments) else "")
            dirs.append(Path(value).expanduser())
    return dirs


def shadowed_files(config_root: Path, user_root: Path) -> list[Path]:
    """Files of the user's config folder that Hydra never reads: the built-in tree, searched first, has a
    different file of the same name (`model/mlp.yaml`, or a copied `train.yaml`)."""
    shadowed = []
    for path in sorted(user_root.rglob("*.yaml")):
        built_in = config_root / path.relative_to(user_root)
        if built_in.is_file() and built_in.read_bytes() != path.read_bytes():
            shadowed.append(path)
    return shadowed


def check_group_choices(arguments: list[str], config_root: Path) -> None:
    """Raise ConfigError for `group=option` (or a sweep over options) naming an option that does not exist.

    Options in the user's own `--config-dir` count too; a user's file that a built-in one of the same name
    hides is named in a warning.
    """
    extra_roots = user_config_dirs(arguments)
    if extra_roots is None:
        return  # Hydra reports a missing option with the search path it really used
    for user_root in extra_roots:
        for path in shadowed_files(config_root, user_root) if user_root.is_dir() else []:
            name = path.relative_to(user_root)
            print(
                f"warning: {path} is not used: the built-in config tree has its own {name}; give yours another name",
                file=sys.stderr,
                flush=True,
            )
    config_roots = [config_root, *extra_roots]
    candidates = [arg for arg in arguments if not arg.startswith("-") and "=" in arg]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except HydraException:
        return  # malformed syntax: Hydra reports it with the position of the error
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra"):
            continue
        options = group_options(config_roots, group)
        if options is None:
            continue
        value = override.value()
        choices = value.list if isinstance(value, ChoiceSweep) else [value]
        for choice in choices:
            if isinstance(choice, str) and choice not in options:
                raise ConfigError(f"{group}={choice} is not an option; choose one of: {', '.join(options)}")


SIDE_EFFECT_RESOLVERS = ("unique_dir",)
"""Resolvers that create something when resolved: an override using one is left to the run to resolve."""

RESOLVER_RAISED = "raised while resolving interpolation: "
"""OmegaConf's prefix before a resolver's own message (`KeyError raised while resolving interpolation: ...`)."""


def interpolation_reason(error: InterpolationResolutionError) -> str:
    """Why a `${...}` did not resolve, in the resolver's words (`Environment variable 'X' not found`)."""
    return first_line(error).split(RESOLVER_RAISED)[-1].strip("\"'")


def check_interpolations(arguments: list[str]) -> None:
    """Raise ConfigError for an override whose `${...}` value cannot resolve on its own (`${oc.env:UNSET}`).

    Hydra would resolve it only while naming the run directory (the value is part of its name), deep inside
    Hydra, as a traceback about `hydra.run.dir`; here it is one line naming the override. A value that refers
    to other config keys (`${data.batch_size}`) resolves only in the composed config and is left to it.
    """
    candidates = [arg for arg in arguments if not arg.startswith("-") and "=" in arg and "${" in arg]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except HydraException:
        return  # malformed syntax: Hydra reports it with the position of the error
    for override in overrides:
        value = override.value()
        texts = [text for text in (value if isinstance(value, list) else [value]) if isinstance(text, str)]
        for text in texts:
            if "${" not in text or any(name in text for name in SIDE_EFFECT_RESOLVERS):
                continue
            try:
                OmegaConf.create({"value": text}).value  # noqa: B018 (resolving is the check)
            except InterpolationKeyError:
                continue
            except InterpolationResolutionError as error:
                reason = interpolation_reason(error)
                fix = (
                    "export that variable, or give it a default: ${oc.env:NAME,default}"
                    if "oc.env" in text
                    else "fix the interpolation, or pass the value itself"
                )
                raise ConfigError(f"cannot resolve {override.key_or_group}={text}: {reason}; {fix}") from error


QUOTING = set("'\"[]{}()$\\")
"""A value with any of these is Hydra syntax (quoted, a list, an interpolation): its `~` is left as written."""


def expand_home(arguments: list[str]) -> list[str]:
    """`key=~/pets` (and `key=~/a,~/b`) with the home folder written out, quoted for Hydra.

    The shell expands `~` only at the start of a word, so `data.root=~/pets` reaches Hydra as it is, and
    Hydra's override grammar cannot read a bare `~` (a `LexerNoViableAltException`): no command that has one
    works as written, so expanding it changes no working command. Quoted values (`data.root='~/pets'`) stay
    literal here; typed path keys expand their `~` when they are read (`config/typed.py`).
    """
    expanded = []
    for argument in arguments:
        key, separator, value = argument.partition("=")
        if separator and not argument.startswith("-") and "~" in value and not QUOTING & set(value):
            parts = value.split(",")
            if any(part.startswith("~") for part in parts):
                value = ",".join(
                    hydra_quote(os.path.expanduser(part)) if part.startswith("~") else part for part in parts
                )
                argument = f"{key}={value}"
        expanded.append(argument)
    return expanded
