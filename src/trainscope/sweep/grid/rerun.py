"""A grid sweep rerun in the same `hydra.sweep.dir` continues it: finished runs are kept, interrupted ones resume.

Before a job starts, the sweeper looks at the run directory the launcher will give it
(`GuardedLauncher.job_run_dir`) and decides:

- no run there yet (no `metrics.json`, checkpoints or TensorBoard events: `run_files_in`): **run** it there;
- a run of the same overrides that ended (`completed`, `stopped_early`, `pruned`): **keep** it, no job starts;
- a run of the same overrides that was interrupted (SIGTERM, Ctrl-C, a killed sweep) and has a checkpoint:
  **resume** it in place with `resume=<run_dir>`, the same path as `python train.py resume=<run_dir>`;
- a run of the same overrides that failed, or died before its first checkpoint: **run** it again from
  scratch in the next free `<run_dir>_2`, `_3`, ... (the failed run stays as it was), unless
  `hydra.sweeper.rerun_failed=false`, which keeps the failure;
- a run of other overrides: **run**, left to the run-directory guard, which refuses to write there.

A directory that holds a finished run is therefore never written again. A job's attempts are its run
directory and its `_<n>` successors; the last one that holds a run is the job's current state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus

from trainscope.adapters.hydra_private import settled_job
from trainscope.config.overrides import hydra_quote, override_key
from trainscope.config.yaml_files import load_plain_yaml
from trainscope.core.run_dir import SAVED_OVERRIDES, RunStatus, has_checkpoint, run_files_in, run_status

FINISHED = (RunStatus.COMPLETED, RunStatus.STOPPED_EARLY, RunStatus.PRUNED)


class Action(str, Enum):
    RUN = "run"
    RESUME = "resume"
    KEEP = "keep"


@dataclass(frozen=True)
class PlannedJob:
    """One grid job as the rerun sees it: what to do, in which run directory, with which overrides."""

    action: Action
    run_dir: Path
    overrides: list[str]  # what the launcher gets (with `resume=` / `hydra.sweep.subdir=` when needed)


def plan_job(overrides: Sequence[str], run_dir: Path, rerun_failed: bool) -> PlannedJob:
    """What a rerun does with a job whose first run directory is `run_dir` (see the module docstring)."""
    attempt = _current_attempt(run_dir)
    if attempt is None or not _same_job(attempt, overrides):
        return PlannedJob(Action.RUN, run_dir, list(overrides))
    status = run_status(attempt)  # None: killed before it wrote metrics.json, i.e. interrupted
    if status in FINISHED or (status == RunStatus.FAILED and not rerun_failed):
        return PlannedJob(Action.KEEP, attempt, list(overrides))
    subdir = [] if attempt == run_dir else [f"hydra.sweep.subdir={hydra_quote(attempt.name)}"]
    if status != RunStatus.FAILED and has_checkpoint(attempt):
        return PlannedJob(Action.RESUME, attempt, [*overrides, *subdir, f"resume={hydra_quote(attempt)}"])
    fresh = _next_attempt(run_dir)
    return PlannedJob(Action.RUN, fresh, [*overrides, f"hydra.sweep.subdir={hydra_quote(fresh.name)}"])


def kept_job(job: PlannedJob) -> JobReturn:
    """The JobReturn of a kept run, as if it had just ended: the sweep's report reads its metrics.json."""
    return settled_job(job.overrides, job.run_dir, JobStatus.COMPLETED, None)


def _attempts(run_dir: Path) -> list[Path]:
    """`run_dir`, `run_dir_2`, `run_dir_3`, ... as long as they exist."""
    found = [run_dir] if run_dir.is_dir() else []
    number = 2
    while (candidate := run_dir.with_name(f"{run_dir.name}_{number}")).is_dir():
        found.append(candidate)
        number += 1
    return found


def _current_attempt(run_dir: Path) -> Path | None:
    holding = [attempt for attempt in _attempts(run_dir) if run_files_in(attempt)]
    return holding[-1] if holding else None


def _next_attempt(run_dir: Path) -> Path:
    attempts = _attempts(run_dir)
    return run_dir.with_name(f"{run_dir.name}_{len(attempts) + 1}") if attempts else run_dir


def _same_job(attempt: Path, overrides: Sequence[str]) -> bool:
    """Whether `attempt` was written by this job: its saved overrides are the job's (a `resume=` aside)."""
    saved_file = attempt / SAVED_OVERRIDES
    if not saved_file.is_file():
        return False
    listed = load_plain_yaml(saved_file)  # plain text: an interpolation in a run directory's file is never resolved
    saved = [str(item) for item in (listed if isinstance(listed, list) else []) if override_key(str(item)) != "resume"]
    return saved == [item for item in overrides if not override_key(item).startswith("hydra.")]
