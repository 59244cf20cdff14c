"""`hydra/sweeper=trainscope_grid`: Hydra's basic grid (`a=1,2 b=x,y`, `range(...)`, `choice(...)`), except

- a failed run (exception, NaN loss) is recorded as failed and every other run, in every batch, still runs;
- rerun with the same `hydra.sweep.dir`, it continues: finished runs are kept, interrupted ones resume from
  their checkpoint, failed ones run again (`trainscope.sweep.grid.rerun`); two sweeps never share the directory;
- a job whose run directory holds another run is not started and counts as failed (`GuardedLauncher`);
- SIGTERM/Ctrl-C: the running job saves a checkpoint, the sweep says how many runs finished, exit 143/130;
- the sweep root gets one HParams experiment declaration naming the swept hyperparameters before any run;
- the sweep ends with one line, `multirun: 5 succeeded, 1 failed (<run dir>)`, and exits 1 if any failed.

Hydra's own basic sweeper re-raises the first failure after its batch, with no report line, and with
`max_batch_size` set never runs the later batches.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from trainscope.adapters.hydra_private import basic_sweeper, params_overrides
from trainscope.sweep.grid.settings import GridSettings

if TYPE_CHECKING:
    from trainscope.sweep.grid.rerun import PlannedJob


@dataclass
class TrainscopeGridSweeperConf(GridSettings):
    """`hydra/sweeper=trainscope_grid`: the keys are `GridSettings`' (trainscope.sweep.grid.settings)."""

    _target_: str = "hydra_plugins.trainscope_grid_sweeper.grid_sweeper.TrainscopeGridSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="trainscope_grid", node=TrainscopeGridSweeperConf, provider="trainscope"
)


class TrainscopeGridSweeper(basic_sweeper()):  # type: ignore[misc]  # the class this plugin scan defined
    """Hydra's basic sweeper that runs the whole grid whatever fails, and summarizes it."""

    def __init__(self, **settings: Any) -> None:
        """`settings`: the keys of `GridSettings`, as Hydra composed them."""
        self.settings = GridSettings(**settings)
        super().__init__(max_batch_size=self.settings.max_batch_size, params=self.settings.params)

    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        # Imported here, not at module level: Hydra imports every plugin module on each start (even
        # `--help`), and this pulls in torch through TensorBoard's writer.
        from trainscope.cli.errors import exit_on_user_error
        from trainscope.core.run_dir import display_path
        from trainscope.runs.sweep_aggregate import experiment_metrics, report_aggregate_at_end
        from trainscope.sweep.experiment import declare_experiment, grid_domains, group_names
        from trainscope.sweep.grid.report import finish_grid_sweep, interrupted_exit
        from trainscope.sweep.grid.rerun import Action, kept_job, plan_job
        from trainscope.sweep.guarded_launcher import GuardedLauncher
        from trainscope.sweep.jobs import report_failed_jobs
        from trainscope.sweep.objectives import hparams_metrics
        from trainscope.sweep.sweep_dir import GRID_OWNER, claim_sweep_dir

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        config_loader = self.hydra_context.config_loader
        overrides = OverridesParser.create(config_loader=config_loader).parse_overrides(
            [*params_overrides(self), *arguments]
        )
        self.overrides = self.split_arguments(overrides, self.max_batch_size)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        with exit_on_user_error():
            claim_sweep_dir(sweep_dir, GRID_OWNER, exclusive=True, fix="choose another hydra.sweep.dir for this grid")
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        domains = grid_domains(overrides)
        declare_experiment(
            self.config,
            domains,
            experiment_metrics(domains, hparams_metrics(self.config)),  # the runs' task's columns
            groups=group_names(self.config, config_loader),
        )

        launcher = GuardedLauncher(self.launcher, config_loader, self.config)  # never into another run's dir
        returns: list[list[JobReturn]] = []
        planned: list[PlannedJob] = []
        initial_job_idx = 0
        try:
            while not self.is_done():
                batch = self.get_job_batch()
                # Composes every job's config first: a typo in an override fails before any run, as in Hydra.
                jobs = [
                    plan_job(job, launcher.job_run_dir(job, number), self.settings.rerun_failed)
                    for number, job in enumerate(batch, start=initial_job_idx)
                ]
                planned += jobs
                for job in jobs:
                    if job.action != Action.RUN:
                        said = "kept (it ended before)" if job.action == Action.KEEP else "resuming from its checkpoint"
                        print(f"multirun: {display_path(job.run_dir)}: {said}", flush=True)
                kept = {position: kept_job(job) for position, job in enumerate(jobs) if job.action == Action.KEEP}
                results = launcher.launch([job.overrides for job in jobs], initial_job_idx, settled=kept)
                report_failed_jobs(results)  # never read `return_value` of a failed job: it re-raises
                initial_job_idx += len(batch)
                returns.append(results)
        except KeyboardInterrupt as stop:
            # The interrupted run already saved a checkpoint and printed its resume command.
            raise SystemExit(interrupted_exit(stop, planned, sweep_dir)) from None

        report_aggregate_at_end(sweep_dir)  # mean ± std over the seeds, when the grid swept trainer.seed
        finish_grid_sweep((job for batch in returns for job in batch), planned)
        return returns
