"""Every private name of Hydra that trainscope relies on.

- `hydra._internal.core_plugins.basic_launcher.BasicLauncher`: runs a job in this process (each trial a worker
  runs), and tells the Optuna sweep that its trials would run in its own process;
- `hydra._internal.core_plugins.basic_sweeper.BasicSweeper`: the grid sweeper is Hydra's own basic sweeper, extended;
- `BasicSweeper._parse_config`: the sweeper's `params` as override lines (they come before the command line's);
- `BasicLauncher.hydra_context`: the context it composes each job's config with (`use_config_loader`);
- `JobReturn._return_value`: a failed job's exception (reading `return_value` re-raises it); a job that never ran
  is a JobReturn built with it.

`check()` and tests/adapters/test_hydra_private.py say which of them a Hydra upgrade moved.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

from trainscope.adapters.private_names import PrivateNames

HYDRA = PrivateNames("hydra-core", __name__)

_RETURN_VALUE = "_return_value"


# Looked up at each use, never kept: Hydra's plugin scan (hydra/core/plugins.py) executes every plugin module again
# in place, so a class kept from an earlier import becomes a stale twin of the one Hydra instantiates (an
# isinstance() that is wrongly False; `super(BasicSweeper, self)` raising TypeError in a subclass of the old one).
def basic_launcher() -> type[Launcher]:
    """Hydra's `BasicLauncher` as Hydra's plugin scan last defined it."""
    return HYDRA.imported("hydra._internal.core_plugins.basic_launcher", "BasicLauncher")


def basic_sweeper() -> type[Sweeper]:
    """Hydra's `BasicSweeper` as Hydra's plugin scan last defined it."""
    return HYDRA.imported("hydra._internal.core_plugins.basic_sweeper", "BasicSweeper")


def params_overrides(sweeper: Any) -> list[str]:
    """A `BasicSweeper`'s `hydra.sweeper.params` as override lines, in the order Hydra's own sweeper reads them."""
    return list(HYDRA.attribute(sweeper, "_parse_config")())


def use_config_loader(launcher: Launcher, config_loader: Any) -> None:
    """Make a set-up `BasicLauncher` compose its jobs' configs with `config_loader`."""
    context = HYDRA.attribute(launcher, "hydra_context")
    launcher.hydra_context = dataclasses.replace(context, config_loader=config_loader)  # type: ignore[attr-defined]


def job_error(job: JobReturn) -> Any:
    """What a job's task raised (None for a job that completed): reading `return_value` would raise it again."""
    return HYDRA.attribute(job, _RETURN_VALUE)


def settled_job(overrides: Sequence[str], run_dir: Path, status: JobStatus, value: Any) -> JobReturn:
    """A JobReturn for a job that never ran (kept from before, or refused), as if it had ended in `run_dir`.

    `value` is its return value, or the exception it stands for when `status` is FAILED.
    """
    return JobReturn(
        overrides=list(overrides),
        hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir": str(run_dir)}}}),
        working_dir=os.getcwd(),
        status=status,
        **{_RETURN_VALUE: value},
    )


def check() -> None:
    """Raise PrivateNameMoved for the first private name above that this Hydra no longer has where expected."""
    basic_launcher()
    HYDRA.attribute(basic_sweeper(), "_parse_config")
    if _RETURN_VALUE not in {field.name for field in dataclasses.fields(JobReturn)}:
        raise HYDRA.moved(f"hydra.core.utils.JobReturn.{_RETURN_VALUE}")
