"""The Optuna sweeper: ask a trial, launch it as a Hydra job, tell the study how it ended, repeat.

With `n_jobs: 1` and Hydra's default `basic` launcher, the sweep's own process runs one trial after
another (each through the launcher, `initial_job_idx` = trial number, so `hydra.job.num` and the run
directory `<num>_<overrides>` are unique across processes). Otherwise the trials run in `n_jobs` worker
jobs that each pull trials from the study until it is done (`trainscope.sweep.workers`): placed by the
configured launcher (`hydra/launcher=joblib`, `submitit_local`, `submitit_slurm`, ...), or, with the
`basic` launcher, as worker processes the sweeper starts itself. Launchers run fixed batches of jobs, so
one job per trial would idle every worker until the slowest trial of its batch ended.
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class TrainscopeOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        """`settings`: the keys of `TrainscopeOptunaSweeperConf` (config.py), as Hydra composed and resolved them."""
        from trainscope.cli.errors import exit_on_user_error
        from trainscope.sweep.settings import OptunaSettings

        with exit_on_user_error():
            self.settings = OptunaSettings.from_sweeper_config(settings)
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from trainscope.sweep.guarded_launcher import GuardedLauncher

        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.launcher = GuardedLauncher(launcher, hydra_context.config_loader, config)  # never into another run

    def sweep(self, arguments: list[str]) -> Any:
        from trainscope.cli.errors import exit_on_user_error
        from trainscope.core.interruption import exit_code_for
        from trainscope.sweep.workers import SweepInterrupted

        try:
            with exit_on_user_error():
                return self._sweep(arguments)
        except (SweepInterrupted, KeyboardInterrupt) as error:
            # Every running trial saved itself and was recorded; SIGTERM exits 143, Ctrl-C 130.
            print("[optuna] interrupted: rerun the same command to continue the study", file=sys.stderr, flush=True)
            raise SystemExit(exit_code_for(getattr(error, "signal_number", None))) from None

    def _sweep(self, arguments: list[str]) -> Any:
        # Imported here: Hydra imports every plugin module on each start, even for `--help`.
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        from trainscope.sweep.experiment import group_names
        from trainscope.sweep.local_workers import LocalWorkers
        from trainscope.sweep.runner import OptunaSweep, say
        from trainscope.sweep.worker_jobs import run_worker_jobs
        from trainscope.sweep.workers import SweepInterrupted, make_worker, stopping_on_signals

        assert self.config is not None
        sweep = OptunaSweep(self.settings, self.config, arguments)
        sweep.start(groups=group_names(self.config, self.hydra_context.config_loader))
        in_process = isinstance(self.launcher.launcher, BasicLauncher)
        if in_process and sweep.n_jobs == 1:
            with stopping_on_signals() as stop:
                sweep.run_trials(self.launcher)
            if stop.signal_number is not None:
                raise SweepInterrupted(stop.signal_number)
            return _finish(sweep)
        worker = make_worker(sweep, self.hydra_context, self.task_function)
        if in_process:
            stopped_by = LocalWorkers(sweep, worker).run()
        else:  # the configured launcher, running worker jobs instead of single trials
            launcher = Plugins.instance().instantiate_launcher(
                hydra_context=self.hydra_context, task_function=worker, config=self.config
            )
            stopped_by = run_worker_jobs(sweep, launcher)
        if stopped_by is not None:
            for trial in sweep.fail_abandoned():  # a worker stopped before it could record its trial
                say(f"trial {trial.number} marked FAIL (interrupted), retried on resume")
            raise SweepInterrupted(stopped_by)
        return _finish(sweep)


def _finish(sweep: Any) -> Any:
    """The study report and best.yaml, then the sweep's last line (and its exit 2 if max_failures stopped it)."""
    from trainscope.runs.study import report_at_end

    report_at_end(sweep.study, sweep.sweep_dir)
    return sweep.finish()
