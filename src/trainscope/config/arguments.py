"""The keyword arguments a configured `_target_` takes: the schema of a group whose keys are its arguments.

An optimizer's, a schedule's or a model's keys are whatever its constructor accepts; its signature says which,
so a mistyped key is refused by name before anything is built, not swallowed and not a TypeError deep inside
`hydra.utils.instantiate`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydra.utils import get_object


@dataclass(frozen=True)
class Parameters:
    """The keyword names a callable takes, and whether it also takes any other (`**kwargs`)."""

    names: frozenset[str]
    takes_any: bool

    def accepts(self, name: str) -> bool:
        return self.takes_any or name in self.names


def keyword_parameters(factory: Callable[..., Any]) -> Parameters:
    """What `factory` accepts by keyword; a builtin without a signature accepts anything."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return Parameters(frozenset(), True)
    names = frozenset(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return Parameters(names, any(p.kind is p.VAR_KEYWORD for p in parameters))


def target_parameters(target: Any) -> Parameters | None:
    """What the object a `_target_` names accepts, or None when it cannot be imported (building it says why)."""
    if not isinstance(target, str) or not target:
        return None
    try:
        return keyword_parameters(get_object(target))
    except Exception:  # noqa: BLE001 - ImportError, AttributeError, ...: instantiate reports it in one line
        return None
