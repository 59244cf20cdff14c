"""What a config value may be: a `Rule` is the text a user reads (`a positive integer`) and the check behind it.

The typed config groups (`trainscope.config.groups`) attach one rule to each key; the first value that breaks
its rule becomes one line such as `optimizer.lr must be a positive number, got 'abc'`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainscope.core.errors import ConfigError


def is_number(value: Any) -> bool:
    """A finite real number, not a bool (YAML `true` is an int to Python).

    `inf` and `nan` parse as floats but are never a meaningful setting: `optimizer.lr=inf` would pass a
    range check and fail much later as a NaN loss.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and bool(str(value))


@dataclass(frozen=True)
class Rule:
    """What a key accepts, in the words the error shows, and the check."""

    accepts: str
    check: Callable[[Any], bool]

    def or_null(self, meaning: str = "") -> Rule:
        """The same rule, also accepting null (`meaning` says what null does, for the message)."""
        return Rule(f"null{meaning} or {self.accepts}", lambda value: value is None or self.check(value))

    def checked(self, key: str, value: Any) -> Any:
        """`value` if it passes, else the one-line ConfigError naming `key`."""
        if not self.check(value):
            raise ConfigError(f"{key} must be {self.accepts}, got {value!r}")
        return value


def int_at_least(minimum: int, accepts: str = "") -> Rule:
    return Rule(accepts or f"an integer >= {minimum}", lambda value: is_int(value) and value >= minimum)


def one_of(choices: Sequence[Any], accepts: str = "") -> Rule:
    return Rule(accepts or f"one of {', '.join(map(str, choices))}", lambda value: value in choices)


def _batch_limit(value: Any) -> bool:
    return value is None or (is_int(value) and value > 0) or (isinstance(value, float) and 0 < value <= 1)


def _input_shape(value: Any) -> bool:
    return (
        not isinstance(value, (str, bytes))
        and isinstance(value, Sequence)
        and len(value) == 3
        and all(is_int(v) and v > 0 for v in value)
    )


def _compile_setting(value: Any) -> bool:
    """false/null = eager, true = inductor, or the name of a torch.compile backend (torch loads only for a name)."""
    if value is None or isinstance(value, bool):
        return True
    import torch

    return value in torch.compiler.list_backends(exclude_tags=())


ANYTHING = Rule("anything", lambda value: True)
BOOLEAN = Rule("true or false", lambda value: isinstance(value, bool))
INTEGER = Rule("an integer", is_int)
POSITIVE_INT = Rule("a positive integer", lambda value: is_int(value) and value > 0)
NON_NEGATIVE_INT = int_at_least(0, "a non-negative integer")
POSITIVE_NUMBER = Rule("a positive number", lambda value: is_number(value) and value > 0)
NON_NEGATIVE_NUMBER = Rule("a non-negative number", lambda value: is_number(value) and value >= 0)
FRACTION = Rule("a number in [0, 1)", lambda value: is_number(value) and 0 <= value < 1)
PATH = Rule("a directory path", is_path)
PORT = Rule("a port from 1 to 65535, or 0 for any free port", lambda value: is_int(value) and 0 <= value <= 65535)
STRING = Rule("a string", lambda value: isinstance(value, str))
BATCH_LIMIT = Rule("null, a positive integer or a fraction in (0, 1]", _batch_limit)
INPUT_SHAPE = Rule("[channels, height, width] of positive integers", _input_shape)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE = Rule("auto, cpu, cuda, cuda:<index> or mps", lambda value: bool(DEVICE_PATTERN.match(str(value))))
COMPILE = Rule("true, false or a torch.compile backend (inductor, aot_eager, eager, cudagraphs, ...)", _compile_setting)
METRIC_TAG = Rule("a metric tag such as val/acc", lambda value: isinstance(value, str) and "/" in value)
