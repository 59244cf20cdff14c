"""The Optuna sweeper: ask a trial, launch it as a Hydra job, tell the study how it ended, repeat.

One trial at a time per process, through the configured launcher (`initial_job_idx` = trial number, so
`hydra.job.num` and the run directory `<num>_<overrides>` are unique across processes). `n_jobs > 1`
starts `n_jobs - 1` worker processes running this same command on the same study: Hydra launchers run
jobs in synchronous batches (a slow trial idles the others, and the sampler waits for a whole batch),
while independent workers ask a new trial the moment one finishes, and reuse the exact path by which
hand-started sweeps cooperate on one storage.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

WORKER_ENV = "TRAINSCOPE_OPTUNA_WORKER"
DEADLINE_ENV = "TRAINSCOPE_OPTUNA_DEADLINE"


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
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.launcher = GuardedLauncher(launcher, hydra_context.config_loader, config)  # never into another run

    def sweep(self, arguments: list[str]) -> Any:
        from trainscope.cli.errors import exit_on_user_error

        try:
            with exit_on_user_error():
                return self._sweep(arguments)
        except KeyboardInterrupt as stop:
            from trainscope.core.interruption import exit_code_of

            print("[optuna] interrupted: rerun the same command to continue the study", file=sys.stderr, flush=True)
            raise SystemExit(exit_code_of(stop)) from None

    def _sweep(self, arguments: list[str]) -> Any:
        # Imported here: Hydra imports every plugin module on each start, even for `--help`.
        from trainscope.sweep.experiment import group_names
        from trainscope.sweep.runner import OptunaSweep

        assert self.config is not None
        worker_index = int(os.environ.get(WORKER_ENV, "0"))
        deadline = os.environ.get(DEADLINE_ENV)
        sweep = OptunaSweep(self.settings, self.config, arguments, worker_index=worker_index)
        if deadline is not None:
            sweep.deadline = float(deadline)
        sweep.start(groups=group_names(self.config, self.hydra_context.config_loader))
        workers = self._start_workers(sweep) if worker_index == 0 else []
        try:
            sweep.run_trials(self.launcher)
        finally:
            self._wait_for_workers(workers)
        if worker_index != 0:
            return None
        return sweep.finish()

    def _start_workers(self, sweep: Any) -> list[tuple[subprocess.Popen[bytes], Path]]:
        """Run this same command `n_jobs - 1` more times on the same study and sweep directory."""
        from trainscope.config.overrides import hydra_quote
        from trainscope.sweep.runner import say

        workers: list[tuple[subprocess.Popen[bytes], Path]] = []
        extra = [
            f"hydra.sweep.dir={hydra_quote(sweep.sweep_dir)}",
            f"hydra.sweeper.study_name={hydra_quote(sweep.study_name)}",
            f"hydra.sweeper.storage={hydra_quote(sweep.storage)}",
        ]
        command = [sys.executable, *sys.orig_argv[1:], *extra]
        for index in range(1, sweep.n_jobs):
            log_path = Path(sweep.sweep_dir) / f"optuna_worker_{index}.log"
            env = {**os.environ, WORKER_ENV: str(index)}
            if sweep.deadline is not None:
                env[DEADLINE_ENV] = repr(sweep.deadline)
            with open(log_path, "ab") as log_file:
                process = subprocess.Popen(
                    command, stdout=log_file, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
                )
            workers.append((process, log_path))
        if workers:
            say(f"{len(workers)} worker processes started (logs: {Path(sweep.sweep_dir) / 'optuna_worker_*.log'})")
        return workers

    @staticmethod
    def _wait_for_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        for process, log_path in workers:
            try:
                code = process.wait()
            except KeyboardInterrupt:
                process.send_signal(signal.SIGINT)
                process.wait()
                raise
            if code not in (0, 2):
                from trainscope.sweep.runner import say

                # 2: a user-facing error the worker explained in its log
                say(f"worker process {process.pid} exited with code {code}; see {log_path}")


def _die_with_parent() -> None:
    """Workers end with the sweep (even on SIGKILL), so their running trials count as interrupted."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
