"""`trainscope-runs [DIR ...]` (also `python -m trainscope.runs`): the runs under some folders, as one table.

    trainscope-runs                                   # every run under outputs/
    trainscope-runs outputs/multirun/2026-01-01/12-00-00 --sort=-val/acc
    trainscope-runs --filter status=completed --filter 'val/acc>0.9' --format csv > runs.csv
    trainscope-runs outputs/multirun/... --group-by     # seeds collapsed: mean ± std and n
    trainscope-runs --study outputs/multirun/...        # an Optuna sweep's report and best.yaml

It reads each run's metrics.json, metrics.csv and saved `.hydra/` files, never its checkpoints or events, and
builds nothing from them; torch is not imported. A mistake in the command line is one `error:` line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from trainscope.config.paths import default_output_root
from trainscope.core.errors import ConfigError, TrainscopeError, report_user_error
from trainscope.runs.aggregate import default_group_keys, group_table
from trainscope.runs.discover import find_run_dirs, no_runs_message
from trainscope.runs.record import read_run
from trainscope.runs.render import FORMATS, render
from trainscope.runs.select import RowFilter, sort_keys, sort_rows
from trainscope.runs.table import Table, runs_table


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """argparse's mistakes as our one line (its own is two: the usage, then the error)."""
        report_user_error(ConfigError(f"{message}; see {self.prog} --help"))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trainscope-runs",
        description="One row per run directory under the folders (default: outputs/): status, the overrides that "
        "differ, final and best monitored and optimized metrics, test metrics, epochs, steps, wall time, "
        "checkpoint. Columns: status, reason, epochs, steps, wall_time, checkpoint, run_dir, every override key, "
        "every metric tag (its final value) and <tag>@best (its best value).",
    )
    parser.add_argument(
        "folders", nargs="*", type=Path, metavar="DIR", help="folders holding run directories (default: outputs/)"
    )
    parser.add_argument("--sort", metavar="COLUMNS", help="sort by these columns (comma-separated; -col descends)")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="EXPR",
        help="keep rows where <column><op><value> holds (op: = != < <= > >=), e.g. status=completed, 'val/acc>0.9'; "
        "repeat for several",
    )
    parser.add_argument("--columns", metavar="COLUMNS", help="show these columns, in this order (comma-separated)")
    parser.add_argument(
        "--group-by",
        nargs="?",
        const="",
        metavar="KEYS",
        help="one row per group of runs with equal values of these keys (comma-separated; alone: every override "
        "but trainer.seed), with mean ± std and n of every metric",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv, json or markdown")
    study = parser.add_argument_group("the report of an Optuna sweep (instead of the table)")
    study.add_argument(
        "--study",
        type=Path,
        metavar="SWEEP_DIR",
        help="write <sweep dir>/report.md, report/*.png (also into the sweep's TensorBoard run) and best.yaml",
    )
    study.add_argument("--storage", help="the study's storage, when not the sweep dir's journal file (a database URL)")
    study.add_argument("--study-name", help="the study's name, when the storage holds several")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        print(runs_report(args))
    except TrainscopeError as error:
        report_user_error(error)
    except BrokenPipeError:  # `trainscope-runs | head`: the reader has what it wanted
        sys.stderr.close()


def runs_report(args: argparse.Namespace) -> str:
    """The text to print for the parsed command line; a one-line TrainscopeError for bad input."""
    if args.study is not None:
        return study_report_lines(args)
    if args.storage is not None or args.study_name is not None:
        raise ConfigError("--storage and --study-name go with --study <sweep dir>")
    folders = args.folders or [default_output_root()]
    if not args.folders and not folders[0].is_dir():
        raise ConfigError(
            f"no {folders[0]}/ folder here: run trainscope-runs where you trained, or pass the folders that "
            "hold run directories (trainscope-runs <dir> ...)"
        )
    run_dirs = find_run_dirs(folders)
    if not run_dirs:
        raise ConfigError(no_runs_message(folders))
    records = [read_run(run_dir) for run_dir in run_dirs]
    table = runs_table(records)
    filters = [RowFilter.parse(text) for text in args.filter]
    table.check_columns([row_filter.column for row_filter in filters], "--filter")
    kept = [index for index, row in enumerate(table.rows) if all(row_filter.keeps(row) for row_filter in filters)]
    records = [records[index] for index in kept]
    table = Table(rows=[table.rows[index] for index in kept], columns=table.columns, known=table.known)
    caption = f"{len(kept)} runs" if len(kept) == len(run_dirs) else f"{len(kept)} of {len(run_dirs)} runs"
    if args.group_by is not None:
        keys = _split(args.group_by) if args.group_by else default_group_keys(records)
        unknown = [key for key in keys if not any(record.setting(key) is not None for record in records)]
        table.check_columns(unknown, "--group-by")
        table = group_table(table, records, keys)
        caption = f"{len(table.rows)} groups of {caption}"
    if args.columns:
        columns = _split(args.columns)
        table.check_columns(columns, "--columns")
    else:
        hidden = table.hidden_by_default if args.format in ("table", "markdown") else []
        columns = [column for column in table.columns if column not in hidden]
    if args.sort:
        keys = sort_keys(args.sort)
        table.check_columns([column for column, _ in keys], "--sort")
        table.rows = sort_rows(table.rows, keys)
    if not table.rows and args.format == "table":
        return f"no run matches {' '.join(repr(text) for text in args.filter)} ({len(run_dirs)} runs read)"
    return render(table, columns, args.format, caption)


def study_report_lines(args: argparse.Namespace) -> str:
    if args.folders:
        raise ConfigError(f"--study makes a sweep's report, not a table: drop {' '.join(map(str, args.folders))}")
    from trainscope.runs.study import open_sweep_study, report_study  # optuna and torch: only for a report

    study = open_sweep_study(args.study, args.storage, args.study_name)
    return "\n".join(report_study(study, args.study))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    main()
