"""How the command line reports a user's mistake: one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hydra.errors import InstantiationException
from omegaconf.errors import MissingMandatoryValue

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
    if isinstance(error, InstantiationException):
        root = error
        while root.__cause__ is not None:
            root = root.__cause__
        return ConfigError(f"could not build the configured object: {first_line(root)}")
    return None


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    try:
        yield
    except TrainscopeError as error:
        report_user_error(error)
