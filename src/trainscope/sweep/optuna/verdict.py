"""The sweep's verdict on a finished job: the Optuna trial state COMPLETE, PRUNED, FAIL (with a reason) or interrupted.

The job's `metrics.json` says how a trainscope run ended (the entrypoint returns normally for a pruned
run and raises for a failed one); any other app is pruned by raising `optuna.TrialPruned` after
`trial().should_prune()`, as in `Study.optimize`. The job's return value is the objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from optuna import TrialPruned
from optuna.trial import TrialState

from trainscope.adapters.hydra_private import job_error
from trainscope.core.errors import first_line
from trainscope.core.run_dir import RunDirTaken, RunStatus, read_metrics, write_metrics
from trainscope.sweep.jobs import job_run_dir


@dataclass
class TrialVerdict:
    """How the sweep records a finished job in its trial: state, objective values, run status and why."""

    state: TrialState
    run_status: str
    run_dir: Path | None  # None: the job never started (its config could not be composed)
    values: list[float] | None = None
    reason: str = ""
    interrupted: bool = False  # the run was stopped by a signal: not the trial's fault, retried once
    owns_run_dir: bool = True  # False: the directory held another run, so the trial never started there

    @property
    def own_run_dir(self) -> Path | None:
        """The run directory whose metrics.json is this trial's to record into; None when it is not."""
        return self.run_dir if self.owns_run_dir else None


def judge_job(job: JobReturn, metric_names: Sequence[str]) -> TrialVerdict:
    run_dir = job_run_dir(job)
    error = job_error(job)  # what a failed job raised (reading `return_value` would raise it again)
    if job.status != JobStatus.COMPLETED and isinstance(error, RunDirTaken):
        # Not started: the metrics.json there is another run's, never read as this trial's nor written.
        return TrialVerdict(TrialState.FAIL, RunStatus.FAILED.value, run_dir, reason=str(error), owns_run_dir=False)
    try:
        metrics = read_metrics(run_dir)
    except (OSError, ValueError):
        metrics = {}  # the task is not a trainscope run, or it died before writing metrics.json
    status = str(metrics.get("status") or "")
    reason = str(metrics.get("reason") or "")

    if job.status != JobStatus.COMPLETED:
        if status == RunStatus.INTERRUPTED or isinstance(error, KeyboardInterrupt):
            return TrialVerdict(TrialState.FAIL, RunStatus.INTERRUPTED.value, run_dir, reason=reason, interrupted=True)
        if isinstance(error, TrialPruned):
            return TrialVerdict(TrialState.PRUNED, status or RunStatus.PRUNED.value, run_dir, reason=first_line(error))
        if not reason and isinstance(error, BaseException):
            reason = f"{type(error).__name__}: {first_line(error)}"
        reason = reason or "the job failed"
        return TrialVerdict(TrialState.FAIL, status or RunStatus.FAILED.value, run_dir, reason=reason)
    if status == RunStatus.INTERRUPTED:
        return TrialVerdict(TrialState.FAIL, status, run_dir, reason=reason, interrupted=True)
    if status == RunStatus.PRUNED:
        return TrialVerdict(TrialState.PRUNED, status, run_dir, reason=reason)
    if status == RunStatus.FAILED:
        return TrialVerdict(TrialState.FAIL, status, run_dir, reason=reason or "the run failed")

    values, problem = objective_values(job.return_value, metric_names)
    if problem:
        return TrialVerdict(TrialState.FAIL, status or RunStatus.COMPLETED.value, run_dir, reason=problem)
    return TrialVerdict(TrialState.COMPLETE, status or RunStatus.COMPLETED.value, run_dir, values=values, reason=reason)


def objective_values(returned: Any, metric_names: Sequence[str]) -> tuple[list[float] | None, str]:
    """The objective values, or None and why they are unusable (wrong shape, NaN, Inf)."""
    items = list(returned) if isinstance(returned, list | tuple) else [returned]
    if len(items) != len(metric_names):
        return None, f"the run returned {returned!r}; expected {len(metric_names)} value(s) for {list(metric_names)}"
    try:
        values = [float(item) for item in items]
    except (TypeError, ValueError):
        return None, f"the run returned {returned!r}; expected float value(s) for {list(metric_names)}"
    for name, value in zip(metric_names, values, strict=True):
        if not math.isfinite(value):
            return None, f"objective {name} is {value}"
    return values, ""


def record_trial_in_metrics(run_dir: Path | None, trial_number: int, state: TrialState, reason: str) -> None:
    """Add the trial's number, state and failure reason to the run's metrics.json (when the run has one)."""
    if run_dir is None:
        return
    try:
        metrics = read_metrics(run_dir)
    except (OSError, ValueError):
        return
    metrics["optuna"] = {"trial": trial_number, "state": state.name, "reason": reason}
    write_metrics(run_dir, metrics)
