"""An Optuna sweep from start to end: plan it, open the study, run the trials, report the study.

With `n_jobs: 1` and Hydra's default `basic` launcher, the sweep's own process runs one trial after
another (each through the launcher, `initial_job_idx` = trial number, so `hydra.job.num` and the run
directory `<num>_<overrides>` are unique across processes). Otherwise the trials run in `n_jobs` workers
that each pull trials from the study until it is done (`workers/`): worker jobs placed by the configured
launcher (`hydra/launcher=joblib`, `submitit_local`, `submitit_slurm`, ...), or, with the `basic` launcher,
worker processes the sweep starts itself. Launchers run fixed batches of jobs, so one job per trial would
idle every worker until the slowest trial of its batch ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from trainscope.adapters.hydra_private import basic_launcher
from trainscope.sweep.experiment import group_names
from trainscope.sweep.guarded_launcher import GuardedLauncher
from trainscope.sweep.optuna.messages import say
from trainscope.sweep.optuna.plan import SweepPlan, deadline_after
from trainscope.sweep.optuna.session import SweepSession
from trainscope.sweep.optuna.settings import OptunaSettings
from trainscope.sweep.optuna.signals import SweepInterrupted, stopping_on_signals
from trainscope.sweep.optuna.workers.launcher_jobs import LauncherWorkers
from trainscope.sweep.optuna.workers.local import LocalWorkers
from trainscope.sweep.optuna.workers.supervision import WorkerPool, supervise
from trainscope.sweep.optuna.workers.worker import make_worker


def run_sweep(
    settings: OptunaSettings,
    arguments: Sequence[str],
    *,
    config: DictConfig,
    hydra_context: HydraContext,
    task_function: TaskFunction,
    launcher: GuardedLauncher,
    at_end: Callable[[SweepSession], None] | None = None,
) -> dict[str, Any]:
    """Run the sweep; returns what `optimization_results.yaml` holds. Raises `SweepInterrupted` on a signal.

    `at_end` runs once every trial has ended, before the sweep's last line (the sweeper's study report).
    """
    plan = SweepPlan.build(settings, config, arguments, deadline=deadline_after(settings.timeout))
    session = SweepSession.open(plan)
    session.announce(groups=group_names(config, hydra_context.config_loader))
    in_process = isinstance(launcher.launcher, basic_launcher())
    if in_process and settings.trials_at_once == 1:
        with stopping_on_signals() as stop:
            session.run_trials(launcher)
        if stop.signal_number is not None:
            raise SweepInterrupted(stop.signal_number)
        return _finish(session, at_end)
    worker = make_worker(plan, hydra_context, task_function)
    workers = session.workers_wanted()
    pool: WorkerPool
    if in_process:
        pool = LocalWorkers(plan.sweep_dir, worker, workers)
    else:  # the configured launcher, running worker jobs instead of single trials
        pool = LauncherWorkers(
            session,
            Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=worker, config=config),
        )
    stopped_by = supervise(pool, session, workers)
    if stopped_by is not None:
        for trial in session.fail_abandoned():  # a worker stopped before it could record its trial
            say(f"trial {trial.number} marked FAIL (interrupted), retried on resume")
        raise SweepInterrupted(stopped_by)
    return _finish(session, at_end)


def _finish(session: SweepSession, at_end: Callable[[SweepSession], None] | None) -> dict[str, Any]:
    if at_end is not None:
        at_end(session)
    return session.finish()
