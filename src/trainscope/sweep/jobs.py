"""A finished Hydra job seen by a sweeper: where its run directory is, whether it failed, why it crashed.

A job failed when it raised, or when its run recorded a failed or interrupted status in `metrics.json`
(a trainscope run that stops on a NaN loss returns normally). Used by both sweepers (grid and Optuna).
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from trainscope.adapters.hydra_private import job_error
from trainscope.core.errors import TrainscopeError, first_line
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


def report_failed_jobs(jobs: Iterable[JobReturn], *, one_line: bool = False) -> None:
    """Print the traceback of each job that crashed: Hydra's launcher keeps the exception silently.

    A `TrainscopeError` (a bad value, a NaN loss) was already logged in one line by the run itself. With
    `one_line` (Optuna trials: a study may fail many on purpose, `max_failure_rate: 1.0`) each crash is one
    line naming the exception's first line, and its traceback goes to the job's log file in its run directory.
    """
    for job in jobs:
        error = job_error(job)  # reading `return_value` of a failed job re-raises its exception
        if job.status == JobStatus.COMPLETED or isinstance(error, TrainscopeError):
            continue
        if isinstance(error, BaseException):
            details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            where = display_path(job_run_dir(job))
            log_file = _job_log_file(job) if one_line else None
            if log_file is None:
                print(f"run failed: {where}\n{details}", file=sys.stderr, end="", flush=True)
                continue
            with contextlib.suppress(OSError), log_file.open("a") as log:
                log.write(details)
            print(
                f"run failed: {where}: {type(error).__name__}: {first_line(error)} (traceback in "
                f"{display_path(log_file)})",
                file=sys.stderr,
                flush=True,
            )


def _job_log_file(job: JobReturn) -> Path | None:
    """The log file Hydra's job logging wrote for this job (`train.log`, `<app>.log`), if it is in its run dir."""
    name = OmegaConf.select(job.hydra_cfg, "hydra.job_logging.handlers.file.filename", default=None)
    run_dir = job_run_dir(job)
    if name is None or not run_dir.is_dir():
        return None
    path = Path(str(name))
    return path if path.parent == run_dir or path.parent.resolve() == run_dir.resolve() else None
