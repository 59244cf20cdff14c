"""Sweep jobs never write into another run: a job whose run directory already holds a run is not started.

Both sweepers (grid and Optuna) hand their jobs to `GuardedLauncher.launch` instead of Hydra's launcher.
Each job's run directory (`hydra.sweep.dir`/`hydra.sweep.subdir`, as the launcher will resolve it) is
checked before any job of the batch starts; a taken one becomes a failed job whose return value is the
one-line `RunDirTaken` reason (printed now), and nothing in that directory is touched. A job whose overrides
say `resume=<its own run dir>` continues that run there (a grid rerun, an Optuna retry of an interrupted
trial), the same rule as for `python train.py resume=`. The free jobs run through the configured launcher
with their own job numbers, so the directory names stay as they would be.
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
from omegaconf import DictConfig, open_dict

from trainscope.adapters.hydra_private import settled_job
from trainscope.core.run_dir import RunDirTaken, check_run_dir_free


class GuardedLauncher:
    """`launcher.launch`, except that jobs whose run directory holds a run fail without starting."""

    def __init__(self, launcher: Launcher, config_loader: ConfigLoader, config: DictConfig) -> None:
        self.launcher, self.config_loader, self.config = launcher, config_loader, config

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
                results += self.launcher.launch(batch[start:position], initial_job_idx=initial_job_idx + start)
            if position in not_started:
                results.append(not_started[position])
            start = position + 1
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
        return job_config


def _run_dir(job_config: DictConfig) -> Path:
    hydra_config = HydraConfig.instance()
    saved = hydra_config.cfg
    hydra_config.set_config(job_config)  # `${hydra:...}` and `${hydra.job.num}` resolve as in run_job
    try:
        return Path(os.path.abspath(Path(str(job_config.hydra.sweep.dir)) / str(job_config.hydra.sweep.subdir)))
    finally:
        hydra_config.cfg = saved

