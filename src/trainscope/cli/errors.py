"""How the command line reports a user's mistake: one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

from hydra.errors import CompactHydraException, InstantiationException, OverrideParseException
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from trainscope.config.overrides import interpolation_reason
from trainscope.config.schema import closest_key
from trainscope.core.errors import (
    ConfigError,
    RunDirError,
    TrainscopeError,
    first_line,
    is_disk_full,
    report_user_error,
)


def as_user_error(error: BaseException) -> TrainscopeError | None:
    """The user's mistake behind `error`, if it is one.

    `hydra.utils.instantiate` wraps whatever a constructor raises; our own errors inside keep their
    message, and any other failure to build a configured object (a `_target_` that does not exist, an
    argument of the wrong type) is a config mistake named by its first line. A full disk is no bug either.
    """
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, TrainscopeError):
            return cause
        cause = cause.__cause__
    if is_disk_full(error):
        return RunDirError(f"disk full: {first_line(error)}; free disk space, then run the same command again")
    if isinstance(error, MissingMandatoryValue):  # a `???` in conf/, e.g. data.root of data=image_folder
        return ConfigError(f"{error.full_key} must be set on the command line ({error.full_key}=...)")
    if isinstance(error, InterpolationResolutionError):  # `${oc.env:UNSET}`, `${no.such.key}` in a value
        return ConfigError(f"cannot resolve {error.full_key or 'a config value'}: {interpolation_reason(error)}")
    if isinstance(error, InstantiationException):
        root = error
        while root.__cause__ is not None:
            root = root.__cause__
        return ConfigError(f"could not build the configured object: {first_line(root)}")
    return None


CONFIG_VALUE_ERRORS = (InterpolationResolutionError, MissingMandatoryValue)
"""A config value that cannot be read (`${oc.env:UNSET}`, a `???`), wherever Hydra or we first resolve it."""


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    try:
        yield
    except TrainscopeError as error:
        report_user_error(error)
    except CONFIG_VALUE_ERRORS as error:
        report_user_error(as_user_error(error) or ConfigError(first_line(error)))


HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"
UNKNOWN_KEY = re.compile(r"Could not override '([\w.]+)'")
NOT_IN_STRUCT = "is not in struct"
HYDRA_DETAIL_LINES = ("full_key:", "object_type=", "reference_type=", "See https://hydra.cc/")


@contextlib.contextmanager
def hydra_errors_in_one_line() -> Iterator[None]:
    """Hydra's own input errors (an unknown key, a value of the wrong type, an override that does not parse)
    as one `error:` line and exit 2, like every other mistake in the input.

    Hydra prints them over five to seven lines and exits 1, and lets them propagate only when
    `HYDRA_FULL_ERROR=1`; so that is set while Hydra runs. A user who set it gets Hydra's traceback.
    """
    user_setting = os.environ.get(HYDRA_FULL_ERROR)
    os.environ[HYDRA_FULL_ERROR] = "1"
    try:
        yield
    except CompactHydraException as error:
        if user_setting == "1":
            raise
        report_user_error(ConfigError(hydra_message(error)))
    except CONFIG_VALUE_ERRORS as error:  # resolved by Hydra itself, e.g. while naming the run directory
        if user_setting == "1":
            raise
        report_user_error(as_user_error(error) or ConfigError(first_line(error)))
    except RuntimeError as error:  # Hydra raises a bare RuntimeError for a `_target_` no installed plugin has
        unknown = UNKNOWN_PLUGIN.match(str(error))
        if user_setting == "1" or unknown is None:
            raise
        report_user_error(ConfigError(unknown_plugin_message(unknown.group(1))))
    finally:
        if user_setting is None:
            os.environ.pop(HYDRA_FULL_ERROR, None)
        else:
            os.environ[HYDRA_FULL_ERROR] = user_setting


UNKNOWN_PLUGIN = re.compile(r"Unknown plugin class : '([\w.]+)'")
OFFICIAL_OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def unknown_plugin_message(target: str) -> str:
    """What to change for a sweeper or launcher `_target_` that no installed Hydra plugin defines.

    Configs written for the official Optuna plugin (lightning-hydra-template's `mnist_optuna.yaml`) keep its
    `_target_:` line under `hydra.sweeper`; trainscope's own sweeper reads the same keys once it is deleted.
    """
    if target == OFFICIAL_OPTUNA_SWEEPER:
        return (
            f"hydra.sweeper._target_={target} is the official Optuna plugin's sweeper, which trainscope's replaces: "
            "delete that _target_ line under hydra.sweeper (the defaults line override /hydra/sweeper: "
            "trainscope_optuna picks trainscope's; params, n_trials, sampler and the other keys stay as they are)"
        )
    return f"_target_={target} is not a class of any installed Hydra plugin; check its spelling, or install its plugin"


def hydra_message(error: BaseException) -> str:
    """A Hydra error and its cause on one line, without the lines that only repeat where it happened."""
    lines = str(error).splitlines() + (str(error.__cause__).splitlines() if error.__cause__ is not None else [])
    kept = [
        line.strip().rstrip(".") for line in lines if line.strip() and not line.strip().startswith(HYDRA_DETAIL_LINES)
    ]
    if isinstance(error, OverrideParseException):  # its message does not say which argument it could not read
        kept.insert(0, f"cannot parse the override {error.override}")
    text = "\n".join(lines)
    refused = UNKNOWN_KEY.search(text)
    suggestion = closest_key(refused.group(1)) if refused and NOT_IN_STRUCT in text else None
    if suggestion is not None:  # a typo of a typed group's key: `+` would only meet the group's own refusal
        kept.append(f"did you mean {suggestion}?")
    return "; ".join(dict.fromkeys(kept))
