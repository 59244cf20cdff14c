"""Sweep jobs never write into another run: a job whose run directory already holds a run is not started.

Both sweepers (grid and Optuna) hand their jobs to `GuardedLauncher.launch` instead of Hydra's launcher.
Each job's run directory (`hydra.sweep.dir`/`hydra.sweep.subdir`, as the launcher will resolve it) is
checked before any job of the batch starts; a taken one becomes a failed job whose return value is the
one-line `RunDirTaken` reason (printed now), and nothing in that directory is touched. A job whose overrides
say `resume=<its own run dir>` continues that run there (a grid rerun, an Optuna retry of an interrupted
trial), the same rule as for `python train.py resume=`. The free jobs run through the configured launcher
with their own job numbers, so the directory names stay as they would be. A job that Hydra's own launcher
cannot set up (its directory or train.log cannot be created: a disk that filled up during the sweep) fails in
one line, and the sweep goes on.

Composing a job's config is the dearest step of a trial on a small model (about half a second for this config
tree), and the check composes each job before Hydra's own launcher composes it again: the config the check
composed is handed to that launcher (`ComposedOnce`) instead of being composed twice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hydra.core.config_loader import ConfigLoader
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict

from trainscope.adapters.hydra_private import basic_launcher, settled_job, use_config_loader
from trainscope.core.errors import RunDirError
from trainscope.core.run_dir import RunDirTaken, check_run_dir_free


class GuardedLauncher:
    """`launcher.launch`, except that jobs whose run directory holds a run fail without starting."""

    def __init__(self, launcher: Launcher, config_loader: ConfigLoader, config: DictConfig) -> None:
        self.launcher, self.config_loader, self.config = launcher, config_loader, config
        self.composed: ComposedOnce | None = None
        if isinstance(launcher, basic_launcher()):  # it composes here, in this process (others compose in the job)
            self.composed = ComposedOnce(config_loader)
            use_config_loader(launcher, self.composed)

    def launch(
        self, batch: Sequence[Sequence[str]], initial_job_idx: int, settled: Mapping[int, JobReturn] | None = None
    ) -> list[JobReturn]:
        """Run the jobs of `batch` in order; raises, before any job runs, if one's overrides do not compose.

        `settled` maps positions in `batch` of jobs that must not start to the JobReturn standing for each
        (a grid rerun's kept runs); they are not checked.
        """
        not_started: dict[int, JobReturn] = dict(settled or {})
        for position, overrides in enumerate(batch):
            if position in not_started:
                continue
            job_config = self._job_config(overrides, initial_job_idx + position)
            run_dir = _run_dir(job_config)
            try:
                check_run_dir_free(run_dir, "hydra.sweep.dir", resume=job_config.get("resume"))
            except RunDirTaken as error:
                print(f"error: {error}", file=sys.stderr, flush=True)
                not_started[position] = settled_job(overrides, run_dir, JobStatus.FAILED, error)

        results: list[JobReturn] = []
        start = 0  # first job of the current stretch of jobs that start
        for position in [*sorted(not_started), len(batch)]:
            if start < position:
                results += self._launch(batch[start:position], initial_job_idx + start)
            if position in not_started:
                results.append(not_started[position])
            start = position + 1
        if self.composed is not None:
            self.composed.forget()  # those of jobs that did not start (kept, refused)
        return results

    def _launch(self, jobs: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        """The launcher's results for `jobs`. Hydra's own launcher runs them here, one at a time: it creates
        each job's directory and opens its train.log before the task runs, so an OSError there (a disk that
        filled up during the sweep) would end the whole sweep with a traceback. It fails that job instead, in
        one line, as a failure inside the task does, and the sweep goes on."""
        if not isinstance(self.launcher, basic_launcher()):
            return list(self.launcher.launch(jobs, initial_job_idx=initial_job_idx))
        results: list[JobReturn] = []
        for offset, overrides in enumerate(jobs):
            try:
                results += self.launcher.launch([overrides], initial_job_idx=initial_job_idx + offset)
            except OSError as error:
                run_dir = self.job_run_dir(overrides, initial_job_idx + offset)
                failure = RunDirError(
                    f"could not set up the run directory {run_dir} ({error.strerror or error}); the job did not "
                    "start: free disk space (or make it writable), then rerun the sweep to run it"
                )
                print(f"error: {failure}", file=sys.stderr, flush=True)
                results.append(settled_job(overrides, run_dir, JobStatus.FAILED, failure))
        return results

    def job_run_dir(self, overrides: Sequence[str], job_num: int) -> Path:
        """The run directory the launcher will give this job (composing its config, as the launcher does).

        Raises, as Hydra does, when an override does not compose: a typo fails before any job runs.
        """
        return _run_dir(self._job_config(overrides, job_num))

    def _job_config(self, overrides: Sequence[str], job_num: int) -> DictConfig:
        job_config = self.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(job_config):
            job_config.hydra.job.id = job_num
            job_config.hydra.job.num = job_num
        if self.composed is not None:
            self.composed.hand_over(self.config, overrides, job_config)
        return job_config


class ComposedOnce:
    """A config loader that hands a job config composed ahead of time to the launcher composing it next.

    Everything else goes to the wrapped loader. A config is handed over once (popped), for the same master
    config and the same overrides, so the launcher never sees a config another job changed.
    """

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader
        self.ready: dict[tuple[int, tuple[str, ...]], DictConfig] = {}

    def hand_over(self, master_config: DictConfig, overrides: Sequence[str], job_config: DictConfig) -> None:
        self.ready[(id(master_config), tuple(overrides))] = job_config

    def forget(self) -> None:
        self.ready.clear()

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        ready = self.ready.pop((id(master_config), tuple(sweep_overrides)), None)
        if ready is None:
            return self.loader.load_sweep_config(master_config, sweep_overrides)
        return ready

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)


def _run_dir(job_config: DictConfig) -> Path:
    hydra_config = HydraConfig.instance()
    saved = hydra_config.cfg
    hydra_config.set_config(job_config)  # `${hydra:...}` and `${hydra.job.num}` resolve as in run_job
    try:
        return Path(os.path.abspath(Path(str(job_config.hydra.sweep.dir)) / str(job_config.hydra.sweep.subdir)))
    finally:
        hydra_config.cfg = saved
        OmegaConf.set_readonly(job_config.hydra, None)  # as composed: set_config made it read-only
