"""`hydra/sweeper=trainscope_grid`: Hydra's basic grid (`a=1,2 b=x,y`, `range(...)`, `choice(...)`), except

- a failed run (exception, NaN loss) is recorded as failed and every other run, in every batch, still runs;
- a job whose run directory already holds a run is not started and counts as failed (`GuardedLauncher`);
- the sweep root gets one HParams experiment declaration naming the swept hyperparameters before any run;
- the sweep ends with one line, `multirun: 5 succeeded, 1 failed (<run dir>)`, and exits 1 if any failed.

Hydra's own basic sweeper re-raises the first failure after its batch, with no report line, and with
`max_batch_size` set never runs the later batches.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf


@dataclass
class TrainscopeGridSweeperConf:
    _target_: str = "hydra_plugins.trainscope_grid_sweeper.grid_sweeper.TrainscopeGridSweeper"
    # Jobs handed to the launcher at once (null: all); later batches run even when a job failed.
    max_batch_size: int | None = None
    # Sweep overrides from the config, e.g. {optimizer.lr: "0.1,0.01"}; command-line ones come after.
    params: dict[str, str] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="trainscope_grid", node=TrainscopeGridSweeperConf, provider="trainscope"
)


class TrainscopeGridSweeper(BasicSweeper):
    """Hydra's basic sweeper that runs the whole grid whatever fails, and summarizes it."""

    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        # Imported here, not at module level: Hydra imports every plugin module on each start (even
        # `--help`), and this pulls in torch through TensorBoard's writer.
        from trainscope.sweep.experiment import declare_experiment, grid_domains, group_names
        from trainscope.sweep.grid_report import finish_grid_sweep
        from trainscope.sweep.guarded_launcher import GuardedLauncher
        from trainscope.sweep.jobs import report_failed_jobs

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        config_loader = self.hydra_context.config_loader
        overrides = OverridesParser.create(config_loader=config_loader).parse_overrides(
            [*self._parse_config(), *arguments]
        )
        self.overrides = self.split_arguments(overrides, self.max_batch_size)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        declare_experiment(self.config, grid_domains(overrides), groups=group_names(self.config, config_loader))

        launcher = GuardedLauncher(self.launcher, config_loader, self.config)  # never into another run's dir
        returns: list[list[JobReturn]] = []
        initial_job_idx = 0
        try:
            while not self.is_done():
                batch = self.get_job_batch()
                # Composes every job's config first: a typo in an override fails before any run, as in Hydra.
                results = launcher.launch(batch, initial_job_idx=initial_job_idx)
                report_failed_jobs(results)  # never read `return_value` of a failed job: it re-raises
                initial_job_idx += len(batch)
                returns.append(results)
        except KeyboardInterrupt:
            # The interrupted run already saved a checkpoint and printed its resume command.
            finished = sum(len(results) for results in returns)
            print(f"multirun: interrupted after {finished} finished runs", file=sys.stderr, flush=True)
            raise SystemExit(130) from None

        finish_grid_sweep(job for batch in returns for job in batch)
        return returns
