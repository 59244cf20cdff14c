"""User-facing errors: one line that names the bad value and the fix.

The command-line entrypoints print these as `error: <message>` and exit non-zero without a traceback;
anything else is a bug and keeps its traceback.
"""

import errno
import sys
from typing import NoReturn, TypeGuard

EXIT_USER_ERROR = 2
EXIT_TRAINING_FAILED = 1


class TrainscopeError(Exception):
    """An error caused by the user's input, reported in one line."""


class ConfigError(TrainscopeError):
    """A config value is missing, of the wrong type or out of range."""


class DataError(TrainscopeError):
    """A dataset is missing, unreadable or corrupt."""


class CheckpointError(TrainscopeError):
    """A checkpoint or run directory is missing, unreadable or corrupt."""


class RunDirError(TrainscopeError):
    """The run directory cannot be used: another process is training in it, or the disk is full."""


class TrainingFailed(TrainscopeError):
    """Training itself went wrong (NaN loss, a health check): the run is recorded as failed."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type name when it has none), for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def is_disk_full(error: BaseException) -> TypeGuard[OSError]:
    """A write failed for lack of space (or quota): no bug, the user frees space and runs again."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def report_user_error(error: TrainscopeError) -> NoReturn:
    """`error: <message>` on stderr and exit 2 (1 when training itself failed): no traceback."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(EXIT_TRAINING_FAILED if isinstance(error, TrainingFailed) else EXIT_USER_ERROR)
