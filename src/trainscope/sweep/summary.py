"""What every sweep (grid or Optuna) tells the user: the HParams columns before the runs, one line after.

Before launching, `write_sweep_experiment` writes the experiment summary at the sweep root, declaring
exactly the swept keys that the runs report as hyperparameters (same rules as
`trainscope.config.flatten`), so the HParams tab shows those columns with their types.
After each batch, `report_failed_jobs` prints why a run failed; at the end `finish_sweep` prints
`multirun: 5 succeeded, 1 failed (<run dir>)` and exits 1 if any run failed.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import Override, QuotedString
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from trainscope.config.flatten import is_hparam_key
from trainscope.core.errors import TrainscopeError
from trainscope.core.run_dir import RunStatus, display_path, read_metrics
from trainscope.tensorboard.hparams import DEFAULT_METRICS, Domain, write_experiment_summary

FAILED_RUN_STATUSES = (RunStatus.FAILED, RunStatus.INTERRUPTED)
"""`metrics.json` statuses that count as a failed run even though the job returned normally."""


def group_names(config: DictConfig, config_loader: Any = None) -> list[str]:
    """Names of the config groups: the primary config's choices, plus every top-level group on disk."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    names = set(choices.keys())
    if config_loader is not None:
        names.update(config_loader.list_groups(""))
    return sorted(str(name) for name in names)


def hparam_domains(
    config: DictConfig, domains: Mapping[str, Domain], groups: Iterable[str] | None = None
) -> dict[str, Domain]:
    """The swept keys (with their domains) that runs will report as hyperparameters, in sweep order.

    Keys are override keys (`model`, `optimizer.lr`); `hparams.include`/`exclude` of the sweep's config
    apply, so a column is declared exactly when the runs write a value for it.
    """
    include = list(OmegaConf.select(config, "hparams.include", default=None) or ["*"])
    exclude = list(OmegaConf.select(config, "hparams.exclude", default=None) or [])
    groups = list(groups) if groups is not None else group_names(config)
    return {key: domain for key, domain in domains.items() if is_hparam_key(key, groups, include, exclude)}


def grid_domains(overrides: Sequence[Override]) -> dict[str, Domain]:
    """Discrete domains of a grid's sweep overrides (`a=1,2`, `choice(...)`, `range(...)`, `glob(...)`)."""
    domains: dict[str, Domain] = {}
    for override in overrides:
        if override.is_hydra_override() or override.is_delete() or not override.is_discrete_sweep():
            continue
        domains[override.key_or_group] = [override_value(value) for value in override.sweep_iterator()]
    return domains


def write_sweep_experiment(
    config: DictConfig,
    domains: Mapping[str, Domain],
    metrics: Sequence[str] = DEFAULT_METRICS,
    groups: Iterable[str] | None = None,
) -> dict[str, Domain]:
    """Write the experiment summary at `hydra.sweep.dir` for the swept hyperparameters; returns them.

    Nothing is written when no swept key is a hyperparameter: TensorBoard then infers the columns.
    """
    declared = hparam_domains(config, domains, groups)
    if declared:
        write_experiment_summary(Path(config.hydra.sweep.dir), declared, metrics)
    return declared


def job_run_dir(job: JobReturn) -> Path:
    output_dir = OmegaConf.select(job.hydra_cfg, "hydra.runtime.output_dir", default=None) if job.hydra_cfg else None
    return Path(output_dir) if output_dir else Path(job.working_dir or ".")


def job_failed(job: JobReturn) -> bool:
    """A job failed when it raised, or when its run recorded a failed/interrupted status in metrics.json."""
    if job.status != JobStatus.COMPLETED:
        return True
    try:
        status = read_metrics(job_run_dir(job)).get("status")
    except (OSError, ValueError):
        return False  # a task without a metrics.json (not a trainscope run) succeeded if it returned
    return status in FAILED_RUN_STATUSES


def report_failed_jobs(jobs: Iterable[JobReturn]) -> None:
    """Print the traceback of each job that crashed: Hydra's launcher keeps the exception silently.

    A `TrainscopeError` (a bad value, a NaN loss) was already logged in one line by the run itself.
    """
    for job in jobs:
        error = job._return_value  # reading `return_value` of a failed job re-raises its exception
        if job.status == JobStatus.COMPLETED or isinstance(error, TrainscopeError):
            continue
        if isinstance(error, BaseException):
            details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            where = display_path(job_run_dir(job))
            print(f"run failed: {where}\n{details}", file=sys.stderr, end="", flush=True)


@dataclass
class SweepOutcome:
    succeeded: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)

    def line(self) -> str:
        text = f"multirun: {len(self.succeeded)} succeeded, {len(self.failed)} failed"
        if self.failed:
            text += " (" + ", ".join(display_path(path) for path in self.failed) + ")"
        return text


def sweep_outcome(jobs: Iterable[JobReturn]) -> SweepOutcome:
    outcome = SweepOutcome()
    for job in jobs:
        (outcome.failed if job_failed(job) else outcome.succeeded).append(job_run_dir(job))
    return outcome


def finish_sweep(jobs: Iterable[JobReturn]) -> SweepOutcome:
    """Print the one summary line; exit 1 (after printing) when any run failed."""
    outcome = sweep_outcome(jobs)
    print(outcome.line(), flush=True)
    if outcome.failed:
        raise SystemExit(1)
    return outcome


def override_value(value: Any) -> Any:
    """A parsed override value as the run's config will hold it (quoted strings unquoted)."""
    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [override_value(item) for item in value]
    if isinstance(value, dict):
        return {override_value(key): override_value(item) for key, item in value.items()}
    return value
