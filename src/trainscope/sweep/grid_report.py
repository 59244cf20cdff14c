"""The line a grid sweep ends with: `multirun: 5 succeeded, 1 failed (<run dir>)`, and exit 1 if any failed.

(The Optuna sweeper ends with its own line, built from the study: `trainscope.sweep.results`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.utils import JobReturn

from trainscope.core.run_dir import display_path
from trainscope.sweep.jobs import job_failed, job_run_dir


@dataclass
class GridReport:
    """The run directories of a grid sweep's jobs, split by whether they succeeded."""

    succeeded: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)

    def line(self) -> str:
        text = f"multirun: {len(self.succeeded)} succeeded, {len(self.failed)} failed"
        if self.failed:
            text += " (" + ", ".join(display_path(path) for path in self.failed) + ")"
        return text


def grid_report(jobs: Iterable[JobReturn]) -> GridReport:
    report = GridReport()
    for job in jobs:
        (report.failed if job_failed(job) else report.succeeded).append(job_run_dir(job))
    return report


def finish_grid_sweep(jobs: Iterable[JobReturn]) -> GridReport:
    """Print the grid's report line; exit 1 (after printing) when any run failed."""
    report = grid_report(jobs)
    print(report.line(), flush=True)
    if report.failed:
        raise SystemExit(1)
    return report
