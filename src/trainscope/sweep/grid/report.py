"""The line a grid sweep ends with: `multirun: 5 succeeded, 1 failed (<run dir>)`, and exit 1 if any failed.

(The Optuna sweeper ends with its own line, built from the study: `trainscope.sweep.optuna.results`.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.utils import JobReturn

from trainscope.core.interruption import exit_code_of
from trainscope.core.run_dir import RunStatus, display_path, run_status
from trainscope.sweep.grid.rerun import Action, PlannedJob
from trainscope.sweep.jobs import job_failed, job_run_dir


@dataclass
class GridReport:
    """The run directories of a grid sweep's jobs, split by whether they succeeded."""

    succeeded: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    kept: int = 0  # runs a rerun found ended and did not start again
    resumed: int = 0  # interrupted runs a rerun continued from their checkpoint

    def line(self) -> str:
        text = f"multirun: {len(self.succeeded)} succeeded, {len(self.failed)} failed"
        if self.failed:
            text += " (" + ", ".join(display_path(path) for path in self.failed) + ")"
        if self.kept or self.resumed:
            text += f"; {self.kept} kept from before, {self.resumed} resumed"
        return text


def grid_report(jobs: Iterable[JobReturn], planned: Sequence[PlannedJob] = ()) -> GridReport:
    report = GridReport(
        kept=sum(job.action == Action.KEEP for job in planned),
        resumed=sum(job.action == Action.RESUME for job in planned),
    )
    for job in jobs:
        (report.failed if job_failed(job) else report.succeeded).append(job_run_dir(job))
    return report


def interrupted_exit(stop: KeyboardInterrupt, planned: Sequence[PlannedJob], sweep_dir: Path) -> int:
    """Say how many of the started jobs' runs ended (read from their run directories); the exit code.

    143 when a run was stopped by SIGTERM (130 for Ctrl-C), as for a single run.
    """
    ended = sum(_has_ended(job.run_dir) for job in planned)
    print(
        f"multirun: interrupted after {ended} finished runs; rerun the same command with "
        f"hydra.sweep.dir={display_path(sweep_dir)} to continue the sweep",
        file=sys.stderr,
        flush=True,
    )
    return exit_code_of(stop)


def _has_ended(run_dir: Path) -> bool:
    return run_status(run_dir) not in (None, RunStatus.INTERRUPTED, RunStatus.RUNNING)


def finish_grid_sweep(jobs: Iterable[JobReturn], planned: Sequence[PlannedJob] = ()) -> GridReport:
    """Print the grid's report line; exit 1 (after printing) when any run failed."""
    report = grid_report(jobs, planned)
    print(report.line(), flush=True)
    if report.failed:
        raise SystemExit(1)
    return report
