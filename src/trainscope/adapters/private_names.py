"""How an adapter reaches a library's private name, and the one error it raises when an upgrade moved it."""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from typing import Any


class PrivateNameMoved(RuntimeError):
    """A private name of a library trainscope relies on is no longer where its adapter reaches for it."""


@dataclass(frozen=True)
class PrivateNames:
    """The private names of one installed distribution (`optuna`, `hydra-core`, ...), reached from `adapter`."""

    distribution: str
    adapter: str  # the adapter module's name, said in the error: the one place to update

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "(version unknown)"

    def moved(self, name: str, what: str = "is gone from") -> PrivateNameMoved:
        return PrivateNameMoved(
            f"{name} {what} {self.distribution} {self.version()}: trainscope relies on this private name in "
            f"{self.adapter}; update that module for this release, or install the {self.distribution} version "
            "it was written for"
        )

    def attribute(self, owner: Any, name: str) -> Any:
        """`owner.<name>`, or PrivateNameMoved naming it."""
        try:
            return getattr(owner, name)
        except AttributeError:
            raise self.moved(f"{_qualified_name(owner)}.{name}") from None

    def imported(self, module: str, name: str) -> Any:
        """`from <module> import <name>`, or PrivateNameMoved naming it."""
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise self.moved(f"{module}.{name}") from None


def _qualified_name(owner: Any) -> str:
    kind = owner if isinstance(owner, type) else type(owner)
    return f"{kind.__module__}.{kind.__qualname__}"
