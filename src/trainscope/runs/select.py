"""`--filter` and `--sort`: which rows the table keeps, and in what order.

A filter is `<column><op><value>` with op one of `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`: `status=completed`,
`'val/acc>0.9'`, `optimizer.lr<=0.01`. Numbers compare as numbers, anything else as text; a row without a value
in the column passes only `!=`. A sort key is a column name, `-<column>` for descending; rows without a value
come last either way.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainscope.core.errors import ConfigError
from trainscope.runs.record import is_number
from trainscope.runs.table import scalar

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_FILTER = re.compile(r"^(?P<column>[^<>=!]+?)\s*(?P<op>>=|<=|!=|==|=|>|<)\s*(?P<value>.*)$")


@dataclass(frozen=True)
class RowFilter:
    column: str
    op: str
    value: Any
    text: str  # as the user wrote it, for messages

    @classmethod
    def parse(cls, text: str) -> RowFilter:
        match = _FILTER.match(text.strip())
        if match is None or not match["column"].strip():
            raise ConfigError(
                f"--filter {text!r} is not <column><op><value>; e.g. --filter status=completed or "
                "--filter 'val/acc>0.9' (op: = != < <= > >=)"
            )
        return cls(match["column"].strip(), match["op"], scalar(match["value"].strip()), text)

    def keeps(self, row: dict[str, Any]) -> bool:
        cell = row.get(self.column)
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            return self.op == "!="
        if isinstance(cell, Path):
            cell = str(cell)
        compare = _OPERATORS[self.op]
        if is_number(cell) and is_number(self.value):
            return compare(float(cell), float(self.value))
        return compare(str(cell), str(self.value))


def sort_keys(spec: str) -> list[tuple[str, bool]]:
    """`-val/acc,optimizer.lr` as `[("val/acc", True), ("optimizer.lr", False)]` (column, descending)."""
    keys = [part.strip() for part in spec.split(",") if part.strip()]
    if not keys:
        raise ConfigError(f"--sort {spec!r} names no column; e.g. --sort val/acc, or --sort=-val/acc for descending")
    return [(key[1:], True) if key.startswith("-") else (key, False) for key in keys]


def sort_rows(rows: Sequence[dict[str, Any]], keys: Sequence[tuple[str, bool]]) -> list[dict[str, Any]]:
    ordered = list(rows)
    for column, descending in reversed(keys):  # stable sorts, least important key first
        present = [row for row in ordered if _present(row.get(column))]
        missing = [row for row in ordered if not _present(row.get(column))]
        present.sort(key=lambda row, column=column: _order(row[column]), reverse=descending)
        ordered = present + missing
    return ordered


def _order(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its own order (a column may hold both: `lr=0.1` and `lr=auto`)."""
    return (0, float(value)) if is_number(value) else (1, str(value))


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
