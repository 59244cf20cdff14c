"""`--group-by`: runs that differ only in their seed (or in any keys left out) collapsed into one row.

A group is the runs with equal values of the group keys (by default every override except `trainer.seed`). Its
row holds the group keys, `n` (the runs in it), a `status` that counts them (`3 completed`, `2 completed,
1 failed`), and for every number column the mean over the group's runs that have a value, with `<column>:std`
(the sample standard deviation, n - 1 in the denominator as pandas and NumPy's `ddof=1` compute it; empty for a
single run) and, where some run of a group lacks the value, `<column>:n`. `runs` lists the group's run
directories. Filters apply to the runs before they are grouped: `--filter status=completed --group-by`
aggregates completed runs only.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from trainscope.runs.record import RunRecord, is_number
from trainscope.runs.table import (
    BEST_SUFFIX,
    CHECKPOINT,
    EPOCHS,
    REASON,
    RUN_DIR,
    STATUS,
    STEPS,
    WALL_TIME,
    Table,
    differing,
    drop_repeated_best,
    scalar,
    watched_metrics,
)

SEED_KEY = "trainer.seed"
N = "n"
RUNS = "runs"
STD_SUFFIX = ":std"
COUNT_SUFFIX = ":n"
_NOT_AGGREGATED = (STATUS, REASON, CHECKPOINT, RUN_DIR)


def default_group_keys(records: Sequence[RunRecord]) -> list[str]:
    """Every override key of the runs except the seed."""
    keys = dict.fromkeys(key for record in records for key in record.overrides)
    return [key for key in keys if key != SEED_KEY]


def group_table(table: Table, records: Sequence[RunRecord], keys: Sequence[str]) -> Table:
    """The table of `table`'s rows (one per record, same order) grouped by `keys`."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault(tuple(_key_value(table.rows[index], record, key) for key in keys), []).append(index)
    numbers = [
        column
        for column in table.known
        if column not in (*_NOT_AGGREGATED, *keys) and any(is_number(row.get(column)) for row in table.rows)
    ]
    rows = []
    partial: set[str] = set()
    for values, members in groups.items():
        member_rows = [table.rows[i] for i in members]
        row: dict[str, Any] = {STATUS: _status_counts(member_rows), **dict(zip(keys, values, strict=True))}
        row[N] = len(members)
        for column in numbers:
            present = [float(r[column]) for r in member_rows if is_number(r.get(column))]
            mean, std = _mean_std(present)
            row[column], row[column + STD_SUFFIX] = mean, std
            row[column + COUNT_SUFFIX] = len(present)
            if len(present) != len(members):
                partial.add(column)
        row[RUNS] = [r[RUN_DIR] for r in member_rows]
        rows.append(row)
    for row in rows:  # a per-column count only where it tells something `n` does not
        for column in numbers:
            if column not in partial:
                del row[column + COUNT_SUFFIX]

    def with_spread(column: str) -> list[str]:
        return [column, column + STD_SUFFIX, *([column + COUNT_SUFFIX] if column in partial else [])]

    known = [STATUS, *keys, N, *(name for column in numbers for name in with_spread(column)), RUNS]
    watched = [
        column
        for name in watched_metrics(records)
        for column in (name, name + BEST_SUFFIX)
        if column in numbers and any(row[column] is not None for row in rows)
    ]
    tests = sorted({tag for record in records for tag in record.test if tag in numbers and tag not in watched})
    shown_keys = differing(rows, keys) if len(rows) > 1 else list(keys)
    metrics = drop_repeated_best(rows, [*watched, *tests])
    facts = [column for column in (EPOCHS, STEPS, WALL_TIME) if column in numbers]
    columns = [STATUS, *shown_keys, N, *(name for column in [*metrics, *facts] for name in with_spread(column)), RUNS]
    return Table(rows=rows, columns=columns, known=known, hidden_by_default=[RUNS])


def _key_value(row: dict[str, Any], record: RunRecord, key: str) -> Any:
    value = row[key] if key in row else scalar(record.setting(key))
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else None


def _status_counts(rows: Sequence[dict[str, Any]]) -> str:
    counts = Counter(row[STATUS] for row in rows)
    return ", ".join(f"{count} {status}" for status, count in counts.most_common())
