"""The seed aggregate at the end of a grid sweep: printed, and written into the sweep's TensorBoard logdir.

A grid over `trainer.seed=1,2,3` (with other keys, or alone) ends with the `trainscope-runs <sweep> --group-by`
table: one row per configuration, mean ± std and n of every metric. The sweep also writes it for TensorBoard:

- the text `sweep/aggregate` (that table in Markdown) in the sweep's own run, the sweep root;
- one TensorBoard run per configuration, `<sweep dir>/aggregate/<configuration>`, holding the mean over its
  seeds of every epoch scalar of metrics.csv at each epoch (under the runs' own tags, so the Scalars tab draws
  the mean curve next to the seeds' curves) and `<tag>_std`, the sample standard deviation, plus an HParams
  session with the configuration's keys, so the HParams tab lists each configuration with its mean and std.

Written again from scratch by a rerun of the sweep (the `aggregate/` folder is replaced).
"""

from __future__ import annotations

import shutil
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainscope.core.errors import first_line
from trainscope.core.metrics_csv import EPOCH, STEP, WALL_TIME, read_rows
from trainscope.core.run_dir import RunStatus, display_path
from trainscope.runs.aggregate import RUNS, SEED_KEY, N, default_group_keys, group_table
from trainscope.runs.discover import find_run_dirs
from trainscope.runs.record import RunRecord, read_run
from trainscope.runs.render import render
from trainscope.runs.table import Table, differing, runs_table

ENDED = (str(RunStatus.COMPLETED), str(RunStatus.STOPPED_EARLY))
"""The runs an aggregate averages over."""
AGGREGATE_DIR = "aggregate"
AGGREGATE_TAG = "sweep/aggregate"
STD_TAG_SUFFIX = "_std"


def report_aggregate_at_end(sweep_dir: Path) -> None:
    """At the end of a grid sweep: print the seed aggregate and write it for TensorBoard, when seeds were swept.

    Failed and interrupted runs are left out of the means (the caption counts the runs that are in; the sweep's
    last line names the failed ones). A failure here is a warning: every run of the sweep is recorded already.
    """
    try:
        aggregate = seed_aggregate(sweep_dir)
        if aggregate is None:
            return
        table, records, keys = aggregate
        print(f"multirun: mean ± std over the seeds of each configuration:\n{aggregate_text(table)}", flush=True)
        write_aggregate(sweep_dir, table, records, keys)
    except Exception as error:  # noqa: BLE001 - the runs are safe; say what is missing
        print(f"warning: no seed aggregate in {display_path(sweep_dir)}: {first_line(error)}", file=sys.stderr)


def experiment_metrics(domains: Mapping[str, Sequence[Any]], metrics: Sequence[str] | None = None) -> tuple[str, ...]:
    """The metrics a grid declares for the HParams tab (`metrics`: the runs' task's columns,
    `trainscope.sweep.objectives.hparams_metrics`; the default task's when not given): with several seeds, each
    one's `_std` too (the aggregate's configurations report them)."""
    from trainscope.tensorboard.hparams import DEFAULT_METRICS, TRIAL_STATE_TAG
    from trainscope.tensorboard.writer import EPOCH_TAG

    declared = tuple(DEFAULT_METRICS if metrics is None else metrics)
    if len(domains.get(SEED_KEY, ())) < 2:
        return declared
    spread = [tag + STD_TAG_SUFFIX for tag in declared if tag not in (EPOCH_TAG, TRIAL_STATE_TAG)]
    return (*declared, *spread)


def seed_aggregate(sweep_dir: Path) -> tuple[Table, list[RunRecord], list[str]] | None:
    """The grouped table of the sweep's runs that trained to their end (completed or stopped early: a failed or
    interrupted run's last values would pull the mean), their records and the group keys; None when no two such
    runs share a configuration (nothing to aggregate: no seed was swept)."""
    records = [read_run(run_dir) for run_dir in find_run_dirs([sweep_dir])]
    records = [record for record in records if record.status in ENDED]
    keys = default_group_keys(records)
    table = group_table(runs_table(records), records, keys)
    if not any(row[N] > 1 for row in table.rows):
        return None
    return table, records, keys


def aggregate_text(table: Table, output_format: str = "table") -> str:
    columns = [column for column in table.columns if column != RUNS]
    runs = sum(row[N] for row in table.rows)
    caption = f"{len(table.rows)} configurations, {runs} runs that ended"
    return render(
        table, columns, output_format, caption, hint=" (trainscope-runs <sweep dir> --group-by --columns ...)"
    )


def write_aggregate(sweep_dir: Path, table: Table, records: Sequence[RunRecord], keys: Sequence[str]) -> None:
    """The aggregate into TensorBoard: the text at the sweep root, one run per configuration with mean curves."""
    from tensorboard.plugins.text.summary_v2 import text_pb
    from torch.utils.tensorboard import SummaryWriter

    from trainscope.tensorboard.hparams import HParamsSession

    by_dir = {record.run_dir: record for record in records}
    folder = sweep_dir / AGGREGATE_DIR
    shutil.rmtree(folder, ignore_errors=True)
    root = SummaryWriter(log_dir=str(sweep_dir), filename_suffix=".aggregate")
    try:
        root.file_writer.add_summary(text_pb(AGGREGATE_TAG, aggregate_text(table, "markdown")), len(records))
    finally:
        root.close()
    named_by = differing(table.rows, keys) or list(keys)  # `optimizer.lr=0.01`, not every key the grid set
    for row in table.rows:
        members = [by_dir[Path(run_dir)] for run_dir in row[RUNS]]
        label = ",".join(f"{key}={row[key]}" for key in named_by).replace("/", "_") or "all"
        writer = SummaryWriter(log_dir=str(folder / label))
        try:
            session = HParamsSession(writer, folder / label, {key: row[key] for key in keys if row[key] is not None})
            session.start()
            last_step = 0
            for step, means, spreads in mean_curves(members):
                for tag, value in means.items():
                    writer.add_scalar(tag, value, step)
                for tag, value in spreads.items():
                    writer.add_scalar(tag + STD_TAG_SUFFIX, value, step)
                last_step = step
            for tag in ("test/acc", "test/loss"):
                if row.get(tag) is not None:
                    writer.add_scalar(tag, row[tag], last_step)
                    if row.get(f"{tag}:std") is not None:
                        writer.add_scalar(tag + STD_TAG_SUFFIX, row[f"{tag}:std"], last_step)
            session.end(RunStatus.COMPLETED, last_step)  # every member trained to its end
        finally:
            writer.close()


def mean_curves(members: Sequence[RunRecord]) -> list[tuple[int, dict[str, float], dict[str, float]]]:
    """Per epoch: the step, the mean over the members that reached it of every metrics.csv column, and the sample
    standard deviation where two or more did."""
    histories = [{int(row[EPOCH]): row for row in read_rows(member.run_dir) if EPOCH in row} for member in members]
    curves = []
    for epoch in sorted({epoch for history in histories for epoch in history}):
        rows = [history[epoch] for history in histories if epoch in history]
        tags = [tag for tag in dict.fromkeys(tag for row in rows for tag in row) if tag not in (WALL_TIME, STEP)]
        means, spreads = {}, {}
        for tag in tags:
            values = [row[tag] for row in rows if tag in row]
            means[tag] = statistics.fmean(values)
            if len(values) > 1:
                spreads[tag] = statistics.stdev(values)
        curves.append((int(min(row[STEP] for row in rows)), means, spreads))
    return curves
