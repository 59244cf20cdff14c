"""`metrics.csv`: every epoch's scalars of a run as one table row, so a run can be plotted without TensorBoard.

One row per epoch (one validation), with the columns TensorBoard's scalars have: the wall time and step of the
point, then one column per tag the loop logged at the epoch's end (`epoch`, which TensorBoard files as
`train/epoch`; `train/loss`, `val/acc`, ..., `lr_epoch`). The file is appended live, one row at a time and closed
after each (a reader or `tail -f` sees every finished epoch), and it continues across `resume=` the way
TensorBoard's event file does: the resumed run first cuts the rows a killed segment wrote after the checkpoint it
continues from (`cut_rows_after`, the equivalent of the event writer's `purge_step`), so no step appears twice.

`pandas.read_csv(run_dir / "metrics.csv")` reads it; non-finite values are written `nan`/`inf`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

from trainscope.core.run_dir import METRICS_CSV, atomic_write

WALL_TIME = "wall_time"
STEP = "step"
EPOCH = "epoch"
LEADING_COLUMNS = (WALL_TIME, STEP, EPOCH)
"""The columns every row starts with; the tags follow in the order the loop first logged them."""


def append_row(run_dir: Path, wall_time: float, step: int, metrics: Mapping[str, float]) -> None:
    """Append one epoch's row; a tag the header lacks (a metric first logged after a resume) widens the file."""
    path = run_dir / METRICS_CSV
    header, rows, torn = _read(path)
    row = {WALL_TIME: wall_time, STEP: step, **metrics}
    if header is None or torn or not set(row) <= set(header):
        header = (header or []) + [column for column in _columns_for(row) if column not in (header or [])]
        _rewrite(path, header, rows)
    with open(path, "a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([_text(row.get(column)) for column in header])


def cut_rows_after(run_dir: Path, step: int) -> None:
    """Keep only the rows up to `step` (the checkpoint a resumed run continues from); a torn last line goes too."""
    path = run_dir / METRICS_CSV
    header, rows, torn = _read(path)
    if header is None:
        return
    kept = [row for row in rows if row.get(STEP, math.inf) <= step]
    if torn or len(kept) != len(rows):
        _rewrite(path, header, kept)


def read_rows(run_dir: Path) -> list[dict[str, float]]:
    """Every complete row, as floats (a missing cell left out of its row); a line cut short by a kill is not."""
    return _read(run_dir / METRICS_CSV)[1]


def _read(path: Path) -> tuple[list[str] | None, list[dict[str, float]], bool]:
    """The header (None without a file), the complete rows, and whether anything else was in the file."""
    try:
        content = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None, [], False
    complete = content[: content.rfind("\n") + 1]  # a last line without its newline was cut short
    torn = complete != content
    try:
        lines = list(csv.reader(io.StringIO(complete)))
    except csv.Error:
        return None, [], True
    if not lines or not lines[0]:
        return None, [], torn
    header, rows = lines[0], []
    for line in lines[1:]:
        try:
            if len(line) != len(header):
                raise ValueError(line)
            rows.append({name: float(value) for name, value in zip(header, line, strict=True) if value != ""})
        except ValueError:
            torn = True
    return header, rows, torn


def _columns_for(row: Mapping[str, float]) -> list[str]:
    leading = [column for column in LEADING_COLUMNS if column in row]
    return leading + [tag for tag in row if tag not in LEADING_COLUMNS]


def _rewrite(path: Path, header: list[str], rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_text(row.get(column)) for column in header])
    atomic_write(path, buffer.getvalue().encode())


def _text(value: float | int | None) -> str:
    """A cell: integral steps and epochs without `.0`, floats in full precision, a missing value empty."""
    if value is None:
        return ""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))
