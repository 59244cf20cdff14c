"""The table as text: a terminal table that fits the width (rich), or CSV, JSON and Markdown to paste elsewhere.

CSV and JSON are for programs (pandas, spreadsheets, jq): full-precision numbers, NaN as empty/null, absolute
paths, a group's run directories joined by `;` (a list in JSON). The terminal and Markdown are for people: five
significant digits, durations as `2m05s`, paths relative to the working directory (a checkpoint's to its run
directory), and a group's mean and standard deviation in one cell (`0.9731 ± 0.0042`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.cells import cell_len, chop_cells

from trainscope.core.run_dir import display_path
from trainscope.runs.aggregate import COUNT_SUFFIX, RUNS, STD_SUFFIX, N
from trainscope.runs.record import is_number
from trainscope.runs.table import BEST_SUFFIX, CHECKPOINT, EPOCHS, REASON, RUN_DIR, STEPS, WALL_TIME, Table

FORMATS = ("table", "csv", "json", "markdown")
_FOLDED_COLUMNS = (RUN_DIR, CHECKPOINT, REASON, RUNS)
_COLUMNS_HINT = " (--columns picks the columns)"
_MAX_KEPT_WIDTH = 24
_COLUMN_PADDING = 3  # a space either side and the separator
_FOLDED_MIN_WIDTH = 16
_LEFT_OUT_FIRST = (CHECKPOINT, STEPS, WALL_TIME, REASON, EPOCHS)


def render(
    table: Table, columns: Sequence[str], output_format: str, caption: str = "", hint: str = _COLUMNS_HINT
) -> str:
    """The table in `output_format`; in the terminal, `caption` under it, and `hint` after the columns it left
    out for lack of width."""
    if output_format == "csv":
        return _csv(table, columns)
    if output_format == "json":
        return json.dumps([{column: _plain(row.get(column)) for column in columns} for row in table.rows], indent=2)
    shown = _merged(columns)
    cells = [[_human(row, column) for column in shown] for row in table.rows]
    if output_format == "markdown":
        return _markdown(shown, cells)
    return _terminal(table, shown, cells, caption, hint)


def _csv(table: Table, columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table.rows:
        writer.writerow(["" if (value := _plain(row.get(column))) is None else _csv_cell(value) for column in columns])
    return buffer.getvalue().rstrip("\n")


def _csv_cell(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(value)
    return repr(value) if isinstance(value, float) else str(value)


def _plain(value: Any) -> Any:
    """A JSON value: absolute paths, NaN and Inf as null (JSON has neither)."""
    if isinstance(value, Path):
        return str(value.absolute())
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _merged(columns: Sequence[str]) -> list[str]:
    """The columns people see: a `:std` or `:n` column joins the cell of its mean when that is shown too."""
    return [
        column
        for column in columns
        if not (column.endswith((STD_SUFFIX, COUNT_SUFFIX)) and column.rsplit(":", 1)[0] in columns)
    ]


def _human(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == CHECKPOINT and isinstance(value, Path) and isinstance(row.get(RUN_DIR), Path):
        return str(value.relative_to(row[RUN_DIR]))  # the run directory is in the same row
    text = _number_text(value, column)
    std, count = row.get(column + STD_SUFFIX), row.get(column + COUNT_SUFFIX)
    if text and std is not None:
        text += f" ± {_number_text(std, column, digits=2)}"
    if text and count is not None and count != row.get(N):
        text += f" (n={count})"
    return text


def _number_text(value: Any, column: str, digits: int = 5) -> str:
    if value is None:
        return ""
    if isinstance(value, Path):
        return display_path(value)
    if isinstance(value, list):
        return " ".join(_number_text(item, column) for item in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if column.split(":")[0] == WALL_TIME and math.isfinite(value):
        return _duration(float(value))
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _markdown(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(value.replace("|", "\\|").replace("\n", " ") for value in values) + " |"

    return "\n".join([line(columns), line(["---"] * len(columns)), *(line(row) for row in cells)])


def _terminal(table: Table, columns: Sequence[str], cells: Sequence[Sequence[str]], caption: str, hint: str) -> str:
    """The table laid out in the terminal's width: headers over a rule, numbers right-aligned, long cells folded.

    Laid out here rather than by `rich.table` (which takes about 1.5 ms a row: 1,000 runs would take seconds);
    rich measures the text, so wide characters (CJK, emoji) in an override keep the columns aligned.
    """
    width = shutil.get_terminal_size().columns
    widths, left_out = _fit(columns, cells, width)
    if left_out:
        caption += f"; left out for lack of width: {', '.join(left_out)}{hint}"
    shown = [index for index, column in enumerate(columns) if column not in left_out]
    sizes = [widths[columns[index]] for index in shown]
    if None in sizes:  # too narrow for any layout: an equal share each
        sizes = [max(1, share) for share in _share(width - _COLUMN_PADDING * len(shown) + 1, [width] * len(shown))]
    numeric = [any(is_number(row.get(columns[index])) for row in table.rows) for index in shown]

    def lines_of(texts: Sequence[str], bottom: bool) -> list[str]:
        folded = [_fold(text, size, at_separators=not bottom) for text, size in zip(texts, sizes, strict=True)]
        height = max(len(part) for part in folded)
        folded = [
            [""] * (height - len(part)) + part if bottom else part + [""] * (height - len(part)) for part in folded
        ]
        return [
            " "
            + "   ".join(
                _pad(part[line], size, right) for part, size, right in zip(folded, sizes, numeric, strict=True)
            )
            for line in range(height)
        ]

    header = lines_of([columns[index] for index in shown], bottom=True)
    rule = " " + "─" * (sum(sizes) + _COLUMN_PADDING * (len(sizes) - 1))
    body = [line for row in cells for line in lines_of([row[index] for index in shown], bottom=False)]
    footer = textwrap.wrap(caption, width - 1, initial_indent=" ", subsequent_indent=" ") if caption else []
    return "\n".join(line.rstrip() for line in [*header, rule, *body, *([""] + footer if footer else [])])


def _fold(text: str, width: int, at_separators: bool = True) -> list[str]:
    """`text` in lines of at most `width` cells, broken after a `,` or `/` in the second half of a line."""
    lines: list[str] = []
    while cell_len(text) > width:
        chunk = chop_cells(text, width)[0]
        cut = max(chunk.rfind(","), chunk.rfind("/")) + 1 if at_separators else 0
        if cut <= len(chunk) // 2:
            cut = max(len(chunk), 1)
        lines.append(text[:cut])
        text = text[cut:]
    return [*lines, text]


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(0, width - cell_len(text))
    return space + text if right else text + space


def _fit(columns: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> tuple[dict[str, int | None], list[str]]:
    """The width of each column shown, and the columns left out to fit `width`.

    Numbers, names and statuses never break mid-value and headers stay on one line; paths and reasons fold
    into the width left. When even that is too wide, the columns least needed to tell the runs apart are left
    out, in `_LEFT_OUT_FIRST` order (then best values, then test metrics), and the caption says which; in a
    terminal narrower still, headers fold over two lines, then three.
    """
    values = {column: max((cell_len(row[i]) for row in cells), default=1) for i, column in enumerate(columns)}
    candidates = sorted((c for c in columns if c in _LEFT_OUT_FIRST), key=_LEFT_OUT_FIRST.index)
    candidates += [c for c in columns if c.endswith(BEST_SUFFIX)] + [c for c in columns if c.startswith("test/")]

    def widths(kept: Sequence[str], header_lines: int) -> dict[str, int | None] | None:
        fixed = {
            column: min(max(values[column], -(-cell_len(column) // header_lines)), _MAX_KEPT_WIDTH)
            for column in kept
            if column not in _FOLDED_COLUMNS
        }
        folded = [column for column in kept if column in _FOLDED_COLUMNS]
        room = width - sum(fixed.values()) - (_COLUMN_PADDING * len(kept) - 1)
        if room < sum(min(max(values[column], cell_len(column)), _FOLDED_MIN_WIDTH) for column in folded):
            return None
        shares = _share(room, [max(values[column], cell_len(column)) for column in folded])
        return {**fixed, **dict(zip(folded, shares, strict=True))}

    left_out: list[str] = []
    for header_lines in (1, 2, 3):
        for count in range(len(candidates) + 1):
            left_out = candidates[:count]
            chosen = widths([column for column in columns if column not in left_out], header_lines)
            if chosen is not None:
                return chosen, left_out
    return dict.fromkeys(c for c in columns if c not in left_out), left_out  # rich squeezes them as it can


def _share(room: int, wanted: Sequence[int]) -> list[int]:
    """`room` shared out among columns that want `wanted` widths: each gets what it wants, or an equal share."""
    shares = [0] * len(wanted)
    waiting = sorted(range(len(wanted)), key=lambda index: wanted[index])
    while waiting:
        equal = room // len(waiting)
        index = waiting.pop(0)
        shares[index] = min(wanted[index], equal) if waiting else min(wanted[index], room)
        room -= shares[index]
    return shares
