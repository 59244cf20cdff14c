"""The Optuna sweeper: Hydra's entry to `trainscope.sweep.optuna.run` (plan, open the study, run trials, report).

Thin on purpose: Hydra imports every plugin module on each start (even `--help`), so trainscope's sweep code
is imported only when a sweep runs.
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
        """`settings`: the keys of `OptunaSettings` (trainscope.sweep.optuna.settings), as Hydra composed them."""
        from trainscope.cli.errors import exit_on_user_error
        from trainscope.sweep.optuna.settings import OptunaSettings

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
        from trainscope.runs.study import report_at_end
        from trainscope.sweep.optuna.run import run_sweep
        from trainscope.sweep.optuna.signals import SweepInterrupted

        assert self.config is not None
        try:
            with exit_on_user_error():
                return run_sweep(
                    self.settings,
                    arguments,
                    config=self.config,
                    hydra_context=self.hydra_context,
                    task_function=self.task_function,
                    launcher=self.launcher,
                    # the study report and best.yaml (trainscope.runs, above the sweep), before the last line
                    at_end=lambda session: report_at_end(session.study, session.plan.sweep_dir),
                )
        except OSError as error:
            from trainscope.core.errors import RunDirError, is_disk_full, report_user_error

            if not is_disk_full(error):
                raise
            # Mid-append to the study's journal (or any file of the sweep): one line. The rerun repairs a torn
            # record, retries the trial that was running and recovers a finished one from its run directory.
            report_user_error(
                RunDirError(
                    f"disk full while the sweep wrote {error.filename or 'its Optuna study'} ({error.strerror}); "
                    "free disk space, then rerun the same command to continue the study"
                )
            )
        except (SweepInterrupted, KeyboardInterrupt) as error:
            # Every running trial saved itself and was recorded; SIGTERM exits 143, Ctrl-C 130.
            print("[optuna] interrupted: rerun the same command to continue the study", file=sys.stderr, flush=True)
            raise SystemExit(exit_code_for(getattr(error, "signal_number", None))) from None
