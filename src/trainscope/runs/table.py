"""The runs table: one row per run, the columns a user compares runs by, and the default choice among them.

Column names are what `--sort`, `--filter`, `--columns` and `--group-by` take:

- `status`, `reason`, `epochs`, `steps`, `wall_time` (seconds), `checkpoint`, `run_dir`;
- one column per override key (`optimizer.lr`, `model`, `trainer.seed`), the run's value as it typed it (or,
  for a key it did not override, its saved config's value);
- one column per metric tag holding its final value (`val/acc`, `test/acc`, `train/loss`, ...) and `<tag>@best`
  holding its best value over the epochs (for the monitored metric: by its `monitor.mode`).

By default the table shows the status, the overrides that differ between the rows, the final and best value of
the monitored and optimized metrics, the test metrics, epochs, steps, wall time, the best checkpoint and the run
directory; a best column that repeats another shown column in every row (`val/acc@best` next to
`val/acc_best`, the loop's running best) is shown once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainscope.core.errors import ConfigError
from trainscope.runs.record import RunRecord

STATUS = "status"
REASON = "reason"
EPOCHS = "epochs"
STEPS = "steps"
WALL_TIME = "wall_time"
CHECKPOINT = "checkpoint"
RUN_DIR = "run_dir"
BEST_SUFFIX = "@best"


@dataclass
class Table:
    """Rows of column -> value (str, int, float, Path, list or None), the columns shown, and every known column."""

    rows: list[dict[str, Any]]
    columns: list[str]
    known: list[str]
    hidden_by_default: list[str] = field(default_factory=list)  # known, shown only when asked for in the terminal

    def check_columns(self, names: Iterable[str], option: str) -> None:
        """A one-line ConfigError for a column no row has: the user's typo, named with the columns there are."""
        for name in names:
            if name not in self.known:
                raise ConfigError(f"{option}: no column {name!r}; the columns are: {', '.join(self.known)}")


def runs_table(records: Sequence[RunRecord]) -> Table:
    override_keys = _ordered_union(record.overrides for record in records)
    rows = [_row(record, override_keys) for record in records]
    final_tags = sorted({tag for record in records for tag in record.final})
    best_tags = sorted({tag + BEST_SUFFIX for record in records for tag in record.best})
    known = [STATUS, *override_keys, *final_tags, *best_tags, EPOCHS, STEPS, WALL_TIME, CHECKPOINT, REASON, RUN_DIR]
    metrics = [
        column
        for name in watched_metrics(records)
        for column in (name, name + BEST_SUFFIX)
        if any(row.get(column) is not None for row in rows)
    ]
    tests = sorted({tag for record in records for tag in record.test})
    shown = [
        STATUS,
        *differing(rows, override_keys),
        *drop_repeated_best(rows, [*metrics, *(tag for tag in tests if tag not in metrics)]),
        EPOCHS,
        STEPS,
        WALL_TIME,
        CHECKPOINT,
        *([REASON] if any(row[REASON] for row in rows) else []),
        RUN_DIR,
    ]
    return Table(rows=rows, columns=shown, known=known)


def _row(record: RunRecord, override_keys: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {STATUS: record.status, REASON: record.reason}
    row.update({key: scalar(record.setting(key)) for key in override_keys})
    row.update(record.final)
    row.update({tag + BEST_SUFFIX: value for tag, value in record.best.items()})
    row.update(
        {
            EPOCHS: record.epochs,
            STEPS: record.steps,
            WALL_TIME: record.wall_seconds,
            CHECKPOINT: record.checkpoint,
            RUN_DIR: record.run_dir,
        }
    )
    return row


def watched_metrics(records: Iterable[RunRecord]) -> list[str]:
    """The monitored and optimized metrics of the runs, each once, in the order the runs name them."""
    names: dict[str, None] = {}
    for record in records:
        for name in (record.monitor, *record.optimized):
            if name:
                names.setdefault(name)
    return list(names)


def differing(rows: Sequence[dict[str, Any]], keys: Iterable[str]) -> list[str]:
    """The keys whose value is not the same in every row."""
    return [key for key in keys if len({_comparable(row.get(key)) for row in rows}) > 1]


def drop_repeated_best(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """`columns` without the best columns whose values equal another of `columns` in every row."""
    kept: list[str] = []
    for column in columns:
        others = [other for other in columns if other in kept or not other.endswith(BEST_SUFFIX)]
        if column.endswith(BEST_SUFFIX) and any(
            other != column and all(_same(row.get(column), row.get(other)) for row in rows) for other in others
        ):
            continue
        kept.append(column)
    return kept


def scalar(value: Any) -> Any:
    """An override's text as the number it spells (`0.01`, `3`), so that it sorts and filters as one."""
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return left is not None and left == right


def _comparable(value: Any) -> Any:
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _ordered_union(mappings: Iterable[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for mapping in mappings:
        keys.update(dict.fromkeys(mapping))
    return list(keys)
