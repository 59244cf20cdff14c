"""A finished Hydra job seen by a sweeper: where its run directory is, whether it failed, why it crashed.

A job failed when it raised, or when its run recorded a failed or interrupted status in `metrics.json`
(a trainscope run that stops on a NaN loss returns normally). Used by both sweepers (grid and Optuna).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from trainscope.adapters.hydra_private import job_error
from trainscope.core.errors import TrainscopeError
from trainscope.core.run_dir import RunStatus, display_path, run_status

FAILED_RUN_STATUSES = (RunStatus.FAILED, RunStatus.INTERRUPTED)
"""`metrics.json` statuses that count as a failed run even though the job returned normally."""


def job_run_dir(job: JobReturn) -> Path:
    output_dir = OmegaConf.select(job.hydra_cfg, "hydra.runtime.output_dir", default=None) if job.hydra_cfg else None
    return Path(output_dir) if output_dir else Path(job.working_dir or ".")


def job_failed(job: JobReturn) -> bool:
    """A job failed when it raised, or when its run recorded a failed/interrupted status in metrics.json."""
    if job.status != JobStatus.COMPLETED:
        return True
    return run_status(job_run_dir(job)) in FAILED_RUN_STATUSES  # no status: not a trainscope run, and it returned


def report_failed_jobs(jobs: Iterable[JobReturn]) -> None:
    """Print the traceback of each job that crashed: Hydra's launcher keeps the exception silently.

    A `TrainscopeError` (a bad value, a NaN loss) was already logged in one line by the run itself.
    """
    for job in jobs:
        error = job_error(job)  # reading `return_value` of a failed job re-raises its exception
        if job.status == JobStatus.COMPLETED or isinstance(error, TrainscopeError):
            continue
        if isinstance(error, BaseException):
            details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            where = display_path(job_run_dir(job))
            print(f"run failed: {where}\n{details}", file=sys.stderr, end="", flush=True)
