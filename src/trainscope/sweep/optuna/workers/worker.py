"""The worker itself: a picklable task function that runs trials of the study until it needs no more.

A Hydra launcher runs a fixed batch of jobs and returns when the whole batch is done, so launching one
trial per job would idle every worker until the slowest trial of its batch ends. Instead the sweeper
launches `n_jobs` long-lived *worker jobs* in one batch (Optuna's own recipe for SLURM job arrays), and
each runs trial after trial against the study's storage (`SweepSession.run_trials`) until the study has
`n_trials`: a worker whose trial ended asks for the next one at once.

The worker job is a picklable task function, `TrialWorker`, shipped by the launcher like any Hydra task
(joblib: to local processes, submitit: to local processes or SLURM jobs), or fed pickled to worker processes
the sweeper starts itself with Hydra's default `basic` launcher (`local.py`), so it never depends on how the
sweep itself was started. Inside it every trial is one ordinary Hydra job of the app (composed from the
sweep's config, run with `run_job`), so the trial channel (`hydra.job.env_set`), run directories and job
logging are those of the one-process sweep.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

from trainscope.sweep.optuna.plan import SweepPlan
from trainscope.sweep.optuna.settings import OptunaSettings
from trainscope.sweep.optuna.signals import stopping_on_signals
from trainscope.sweep.optuna.study import process_identity

WORKER_DIR_PREFIX = "optuna_worker_"
WORKER_FILE = "worker.json"
"""In each worker's directory: the worker's host and pid (`process_identity`), so the sweep can pass a Ctrl-C or
SIGTERM on, and tell which worker a trial's owner was."""


def worker_dir(sweep_dir: Path, index: int) -> Path:
    return sweep_dir / f"{WORKER_DIR_PREFIX}{index}"


@dataclass(frozen=True)
class WorkerReport:
    """What a worker job returns: whether a signal stopped it (its running trial was then saved and recorded)."""

    signal_number: int | None = None


@dataclass
class TrialWorker:
    """The task function of a worker job: run trials of the study until it needs no more.

    Carries what a worker in another process needs to build the sweep's plan again: the sweep's settings
    and config (sweep directory made absolute), its arguments and deadline; and the app's task function,
    Hydra context and Hydra's global state (config store, plugins) for processes the sweeper starts itself.
    """

    settings: OptunaSettings
    config: DictConfig
    arguments: list[str]
    hydra_context: HydraContext
    task_function: TaskFunction
    deadline: float | None
    singleton_state: dict[Any, Any]

    def __call__(self, cfg: DictConfig) -> WorkerReport:
        """Run as a launcher's job: the job number is the worker's index, its output dir the worker dir."""
        index = int(HydraConfig.get().job.num)
        return self.run(index, Path(HydraConfig.get().runtime.output_dir))

    def run(self, index: int, directory: Path) -> WorkerReport:
        from trainscope.adapters.hydra_private import basic_launcher
        from trainscope.sweep.guarded_launcher import GuardedLauncher
        from trainscope.sweep.optuna.session import SweepSession

        directory.mkdir(parents=True, exist_ok=True)
        (directory / WORKER_FILE).write_text(json.dumps(process_identity()))
        basic = basic_launcher()()  # each trial: one Hydra job of the app, in this process
        basic.setup(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        launcher = GuardedLauncher(basic, self.hydra_context.config_loader, self.config)  # never into another run
        plan = SweepPlan.build(self.settings, self.config, self.arguments, deadline=self.deadline)
        old_cwd = os.getcwd()
        with stopping_on_signals() as stop:
            try:
                os.chdir(str(self.config.hydra.runtime.cwd))  # trials see the sweep's working directory
                SweepSession.open(plan).run_trials(launcher)
            finally:
                os.chdir(old_cwd)
        return WorkerReport(stop.signal_number)


def make_worker(plan: SweepPlan, hydra_context: HydraContext, task_function: TaskFunction) -> TrialWorker:
    """The worker for the sweep `plan` describes (its study already open), with its sweep dir pinned.

    The sweep dir is an interpolation that creates a fresh directory when resolved anew (`unique_dir`),
    and a worker job may run in another working directory: every worker and trial gets the absolute path.
    """
    config = copy.deepcopy(plan.config)
    with read_write(config), open_dict(config):
        config.hydra.sweep.dir = str(plan.sweep_dir)
    return TrialWorker(
        settings=plan.settings,
        config=config,
        arguments=list(plan.arguments),
        hydra_context=hydra_context,
        task_function=task_function,
        deadline=plan.deadline,
        singleton_state=Singleton.get_state(),
    )
