"""One process's share of an Optuna sweep: open the study, claim trials, launch them, record how they end.

Used by the `trainscope_optuna` Hydra sweeper; every process working on a study (the sweep, its worker
jobs (`trainscope.sweep.workers`), a resumed sweep, hand-started cooperating sweeps) runs this same loop
against the storage.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, Trial, TrialState

from trainscope.config.overrides import hydra_quote
from trainscope.core.errors import ConfigError, first_line
from trainscope.core.run_dir import RunStatus
from trainscope.sweep.guarded_launcher import GuardedLauncher
from trainscope.sweep.jobs import report_failed_jobs
from trainscope.sweep.results import results_line, study_results, write_results
from trainscope.sweep.search_space import (
    describe_domain,
    differing_parameter,
    grid_search_space,
    grid_size,
    parse_search_space,
    search_space_domains,
)
from trainscope.sweep.settings import OptunaSettings
from trainscope.sweep.storage import dashboard_command, resolve_storage
from trainscope.sweep.study import (
    FAIL_REASON_ATTR,
    METRICS_STUDY_ATTR,
    MONITOR_STUDY_ATTR,
    SEARCH_SPACE_STUDY_ATTR,
    STATUS_ATTR,
    claim_trial,
    count_trials,
    fail_abandoned_trials,
    fail_as_interrupted,
    is_failure,
    study_storage,
    trials_counted,
    trials_running_elsewhere,
)
from trainscope.sweep.sweep_dir import claim_sweep_dir, optuna_owner
from trainscope.sweep.trial_resume import resume_overrides, run_to_resume
from trainscope.sweep.verdict import TrialVerdict, judge_job, record_trial_in_metrics
from trainscope.trial.channel import TrialAddress
from trainscope.trial.handle import PRUNER_STUDY_ATTR, RUN_DIR_ATTR
from trainscope.trial.storage import StorageError, open_storage, redact


def say(message: str) -> None:
    print(f"[optuna] {message}", flush=True)


class _Heartbeat:
    """Keeps an RDB trial alive while its job runs; a dead sweep's trials then go stale and are retried."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"optuna-heartbeat-{trial_id}", daemon=True)

    def _beat(self) -> None:
        interval = self._storage.get_heartbeat_interval()  # type: ignore[attr-defined]
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 - a missed beat must not kill the trial
                say(f"heartbeat of trial {self._trial_id} not recorded: {first_line(error)}")
            if self._stop.wait(interval):
                return

    def __enter__(self) -> _Heartbeat:
        if is_heartbeat_enabled(self._storage):
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _as_list(value: Any) -> list[Any]:
    if OmegaConf.is_list(value) or isinstance(value, list | tuple):
        return list(value)
    return [value]


class OptunaSweep:
    def __init__(self, settings: OptunaSettings, config: DictConfig, arguments: Sequence[str]) -> None:
        self.settings = settings
        self.config = config
        self.arguments = list(arguments)
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.n_trials = settings.n_trials
        self.n_jobs = settings.n_jobs
        self.seed = settings.seed
        self.deadline = None if settings.timeout is None else time.time() + settings.timeout
        self.directions = list(settings.directions)
        self.metric_names = self._metric_names(config)
        if not self.directions:  # hydra.sweeper.direction unset: as the runs' task says each metric is better
            from trainscope.sweep.objectives import default_directions  # builds the task: imports torch

            self.directions = default_directions(config, self.metric_names)
        if len(self.directions) == 1 and len(self.metric_names) > 1:
            self.directions *= len(self.metric_names)
        if len(self.directions) != len(self.metric_names):
            raise ConfigError(
                f"hydra.sweeper.direction has {len(self.directions)} entries but optimized_metric has "
                f"{len(self.metric_names)} ({self.metric_names}); give one direction per metric"
            )

        self.space = parse_search_space(settings.params, arguments, settings.search_space)
        self.configure_trial = self._custom_search_space(settings.custom_search_space)
        self.sampler_config = settings.sampler
        self.pruner_config = settings.pruner
        if settings.pruning and len(self.metric_names) > 1:
            raise ConfigError(
                f"hydra/sweeper/pruner needs a single optimized_metric, got {self.metric_names}; "
                "use hydra/sweeper/pruner=none for multi-objective sweeps"
            )
        self.grid: dict[str, list[Any]] | None = None
        if settings.is_grid:
            self.grid = grid_search_space(self.space.distributions)
            self.n_trials = min(self.n_trials, grid_size(self.grid))

        choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
        self.study_name = str(
            settings.study_name or choices.get("hparams_search") or OmegaConf.select(config, "hydra.job.name")
        )
        self.storage = resolve_storage(settings.storage, self.sweep_dir)
        self.database_settings = settings.database
        self.pruning_metric = settings.pruning_metric or (self.metric_names[0] if len(self.metric_names) == 1 else None)
        self.study: optuna.Study | None = None
        self.abandoned: list[FrozenTrial] = []
        self.stop_reason = ""
        self._waiting = False

    def _metric_names(self, config: DictConfig) -> list[str]:
        """The app's `optimized_metric` (trainscope's convention), else `objective` / `objective_<i>`."""
        named = OmegaConf.select(config, "optimized_metric", default=None)
        if named is not None:
            return [str(m) for m in _as_list(named)]
        if len(self.directions) == 1:
            return ["objective"]
        return [f"objective_{index}" for index in range(len(self.directions))]

    @staticmethod
    def _custom_search_space(path: str | None) -> Any:
        """The `custom_search_space` function `(cfg, optuna_trial) -> None`, or None."""
        if not path:
            return None
        try:
            return get_method(path)
        except Exception as error:  # noqa: BLE001 - an unimportable module or a missing function
            raise ConfigError(f"hydra.sweeper.custom_search_space={path}: {first_line(error)}") from error

    # ---------------------------------------------------------------- study
    def make_sampler(self, trials_so_far: int) -> BaseSampler:
        """The configured sampler, seeded with seed + trials so far (see `claim_trial`).

        The grid sampler keeps the plain seed: it maps trial numbers to points of a grid shuffled by it.
        """
        kwargs: dict[str, Any] = {"seed": None if self.seed is None else self.seed + trials_so_far}
        if self.grid is not None:
            kwargs.update(search_space=self.grid, seed=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return instantiate(self.sampler_config, **kwargs)

    def start(self, groups: Sequence[str] | None = None) -> optuna.Study:
        """Open the study, say where it is and how far it got, and declare the HParams experiment."""
        study = self.open()
        for trial in self.abandoned:
            say(f"trial {trial.number} was left RUNNING by a killed sweep: marked FAIL, retried once")
        counts = count_trials(study.get_trials(deepcopy=False))
        objectives = ", ".join(f"{d} {m}" for d, m in zip(self.directions, self.metric_names, strict=True))
        say(
            f"study '{self.study_name}' ({objectives}): {counts.finished} of {self.n_trials} trials done, "
            f"storage: {redact(self.storage)}"
        )
        say(f"dashboard: {dashboard_command(redact(self.storage))}")
        self._declare_experiment(groups)
        return study

    def open(self) -> optuna.Study:
        """Create or load the study (a worker job only opens it); fail the trials of killed sweeps."""
        claim_sweep_dir(  # held until this process ends: no other study's runs in this directory
            self.sweep_dir,
            optuna_owner(self.study_name, redact(self.storage)),
            exclusive=False,
            fix=f"choose another hydra.sweep.dir for study '{self.study_name}'",
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(self.storage, self.database_settings)
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=self.study_name,
                directions=self.directions,
                sampler=self.make_sampler(0),
                load_if_exists=True,
            )
        except ValueError as error:  # e.g. an existing study with other directions
            raise ConfigError(f"study '{self.study_name}' in {redact(self.storage)}: {first_line(error)}") from error
        except Exception as error:  # noqa: BLE001 - a locked or unreachable database
            raise StorageError(
                f"cannot open study '{self.study_name}' in Optuna storage '{redact(self.storage)}': "
                f"{first_line(error)}; check hydra.sweeper.storage"
            ) from error
        existing = [d.name.lower() for d in study.directions]
        if existing != self.directions:
            raise ConfigError(
                f"study '{self.study_name}' in {redact(self.storage)} was created with direction {existing}, "
                f"not {self.directions}; set hydra.sweeper.study_name to start a new study"
            )
        self.study = study
        self._check_search_space()
        self._set_study_attr(PRUNER_STUDY_ATTR, self.pruner_config)
        self._set_study_attr(METRICS_STUDY_ATTR, self.metric_names)
        self._set_study_attr(MONITOR_STUDY_ATTR, self.pruning_metric)
        self._set_study_attr(SEARCH_SPACE_STUDY_ATTR, search_space_domains(self.space.distributions))
        if study.metric_names is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.metric_names)

        self.abandoned = fail_abandoned_trials(study)
        return study

    def _check_search_space(self) -> None:
        """A study keeps one search space: a sweep joining it with another one is refused before any trial."""
        assert self.study is not None
        recorded = self.study.user_attrs.get(SEARCH_SPACE_STUDY_ATTR)
        domains = search_space_domains(self.space.distributions)
        name = differing_parameter(recorded, domains) if recorded is not None else None
        if name is not None:
            raise ConfigError(
                f"study '{self.study_name}' in {redact(self.storage)} samples {name} from "
                f"{describe_domain(recorded.get(name))}, this sweep from {describe_domain(domains.get(name))}; "
                "a study keeps one search space: use the study's, or set hydra.sweeper.study_name to start a new study"
            )

    def fail_abandoned(self) -> list[FrozenTrial]:
        """Fail (and retry once) the RUNNING trials whose worker died; returns them."""
        assert self.study is not None
        return fail_abandoned_trials(self.study)

    def finished_trials(self) -> int:
        assert self.study is not None
        return count_trials(self.study.get_trials(deepcopy=False)).finished

    def workers_wanted(self) -> int:
        """`n_jobs`, but no more workers than trials the study still needs (a rerun may need only one)."""
        assert self.study is not None
        counted = trials_counted(self.study.get_trials(deepcopy=False))
        return max(1, min(self.n_jobs, self.n_trials - counted))

    def needs_trials(self) -> bool:
        """Whether the study still needs trials to reach `n_trials` (and no timeout or failure limit stops it)."""
        assert self.study is not None
        if (self.deadline is not None and time.time() >= self.deadline) or self.failure_limit() is not None:
            return False
        return trials_counted(self.study.get_trials(deepcopy=False)) < self.n_trials

    def _set_study_attr(self, key: str, value: Any) -> None:
        assert self.study is not None
        if self.study.user_attrs.get(key) != value:
            self.study.set_user_attr(key, value)

    def _declare_experiment(self, groups: Sequence[str] | None) -> None:
        """The HParams experiment declaration at the sweep root: each sampled key's domain."""
        from trainscope.sweep.experiment import declare_experiment, override_value
        from trainscope.sweep.objectives import hparams_metrics
        from trainscope.tensorboard.hparams import Interval

        parser = OverridesParser.create()
        domains: dict[str, Any] = {}
        for name, distribution in self.space.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                domains[name] = [
                    override_value(parser.parse_override(f"x={choice}").value()) for choice in distribution.choices
                ]
            elif isinstance(distribution, IntDistribution | FloatDistribution):
                domains[name] = Interval(distribution.low, distribution.high)
        metrics = hparams_metrics(self.config)
        metrics += [m for m in self.metric_names if m not in metrics]
        declare_experiment(self.config, domains, metrics, groups=groups)

    # --------------------------------------------------------------- trials
    def failure_limit(self) -> str | None:
        """How the failed trials exceed `max_failure_rate` (when set) or `max_failures`; None if they do not."""
        assert self.study is not None
        counts = count_trials(self.study.get_trials(deepcopy=False))
        rate = self.settings.max_failure_rate
        if rate is not None:
            if counts.failed and counts.failed / counts.finished > rate:
                share = f"{counts.failed} of {counts.finished} trials failed"
                return f"{share}, above hydra.sweeper.max_failure_rate={rate}"
            return None
        limit = self.settings.max_failures
        if limit is not None and counts.failed >= limit:
            return f"{counts.failed} trials failed, reaching hydra.sweeper.max_failures={limit}"
        return None

    def run_trials(self, launcher: GuardedLauncher) -> None:
        assert self.study is not None
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                self.stop_reason = "timeout"
                say("hydra.sweeper.timeout reached: no new trial starts")
                return
            if self.failure_limit() is not None:
                self.stop_reason = "failures"
                return
            trial = claim_trial(self.study, self.storage, self.space.distributions, self.n_trials, self.make_sampler)
            if trial is None:
                if self.wait_for_trials_elsewhere():
                    continue
                return
            if self.configure_trial is not None:
                try:
                    self.configure_trial(self.config, trial)
                except Exception as error:  # noqa: BLE001 - the user's function fails this trial, not the sweep
                    reason = f"custom_search_space raised {type(error).__name__}: {first_line(error)}"
                    self.record(trial, TrialVerdict(TrialState.FAIL, RunStatus.FAILED.value, None, reason=reason))
                    continue
            self.run_trial(launcher, trial)

    def wait_for_trials_elsewhere(self) -> bool:
        """With heartbeats, stay while other workers' trials run: if one's worker died, this one retries it.

        Returns False when no trial runs elsewhere (the study is done) or on a storage without heartbeats.
        """
        assert self.study is not None
        storage = study_storage(self.study)
        running = trials_running_elsewhere(self.study) if is_heartbeat_enabled(storage) else []
        if not running:
            return False
        if not self._waiting:
            numbers = ", ".join(str(t.number) for t in running)
            say(
                f"all {self.n_trials} trials claimed; waiting for trials {numbers} running elsewhere "
                "(a dead worker's trial is retried here after the heartbeat grace period)"
            )
            self._waiting = True
        time.sleep(storage.get_heartbeat_interval())  # type: ignore[attr-defined]
        return True

    def trial_overrides(self, trial: Trial) -> list[str]:
        """The job's overrides: the sampled values, and the trial's address as `hydra.job.env_set` entries.

        The address reaches the job only as environment variables (`trainscope.trial`): nothing is added
        to the app's config, its saved overrides or its run directory name.
        """
        assert self.study is not None
        address = TrialAddress(
            self.storage,
            self.study_name,
            trial._trial_id,
            trial.number,
            self.pruning_metric,
            self.database_settings.reconnect_timeout,
        )
        channel = [f"++hydra.job.env_set.{name}={hydra_quote(value)}" for name, value in address.env().items()]
        interrupted = run_to_resume(study_storage(self.study).get_trial(trial._trial_id), self.sweep_dir, self.config)
        if interrupted is None:
            return [*self.space.trial_overrides(trial.params), *channel]
        say(f"trial {trial.number} continues the interrupted run {interrupted} from its checkpoint")
        return [*self.space.trial_overrides(trial.params), *channel, *resume_overrides(interrupted)]

    def run_trial(self, launcher: GuardedLauncher, trial: Trial) -> None:
        assert self.study is not None
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        say(f"trial {trial.number} started: {params}")
        storage = study_storage(self.study)
        try:
            with _Heartbeat(storage, trial._trial_id):
                (job,) = launcher.launch([self.trial_overrides(trial)], initial_job_idx=trial.number)
        except KeyboardInterrupt:
            frozen = study_storage(self.study).get_trial(trial._trial_id)
            run_dir = frozen.user_attrs.get(RUN_DIR_ATTR)  # set by the job when it opened its trial
            reason = "interrupted: the sweep was stopped (Ctrl-C or SIGTERM); retried on resume"
            self._record_interrupted(frozen, Path(run_dir) if run_dir else None, reason)
            say(f"trial {trial.number} interrupted; rerun the same command to continue the study")
            raise
        except HydraException as error:  # e.g. a sampled value that does not merge into the app's config
            reason = f"its config could not be composed: {first_line(error)}"
            self.record(trial, TrialVerdict(TrialState.FAIL, RunStatus.FAILED.value, None, reason=reason))
            return
        if job.status == JobStatus.FAILED and isinstance(job._return_value, StorageError):
            # The study was unavailable past reconnect_timeout: not the trial's fault, and the sweep stops.
            with contextlib.suppress(Exception):  # recorded now if the storage is back, else by the rerun
                frozen = study_storage(self.study).get_trial(trial._trial_id)
                fail_as_interrupted(self.study, frozen, f"interrupted: {job._return_value}")
            raise job._return_value
        verdict = judge_job(job, self.metric_names)
        if verdict.state != TrialState.PRUNED:  # an app stops a pruned trial by raising optuna.TrialPruned
            report_failed_jobs([job])  # a crash (not a TrainscopeError) keeps its traceback
        try:
            self.record(trial, verdict)
        except optuna.exceptions.UpdateFinishedTrialError:
            say(
                f"trial {trial.number} was failed by another worker while it ran (no heartbeat for "
                f"hydra.sweeper.heartbeat_grace_period={self.database_settings.heartbeat_grace_period} s); "
                f"its configuration is retried, this result is not counted ({verdict.run_dir})"
            )

    def record(self, trial: Trial, verdict: TrialVerdict) -> None:
        assert self.study is not None
        storage = study_storage(self.study)
        trial_id = trial._trial_id
        if verdict.own_run_dir is not None:  # never another run's directory this trial was refused from
            storage.set_trial_user_attr(trial_id, RUN_DIR_ATTR, str(verdict.own_run_dir))
        storage.set_trial_user_attr(trial_id, STATUS_ATTR, verdict.run_status)
        where = f"({verdict.run_dir})" if verdict.run_dir is not None else "(no run directory)"
        if verdict.interrupted:
            reason = f"interrupted: {verdict.reason or 'stopped by a signal'}; retried once"
            self._record_interrupted(storage.get_trial(trial_id), verdict.own_run_dir, reason)
            say(f"trial {trial.number} interrupted {where}")
            raise KeyboardInterrupt
        if verdict.state == TrialState.FAIL:
            reason = verdict.reason
            storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
            self.study.set_user_attr(f"fail_reason/trial_{trial.number}", reason)
            self.tell(trial, state=TrialState.FAIL)
            say(f"trial {trial.number} FAIL: {reason} {where}")
        elif verdict.state == TrialState.PRUNED:
            self.tell(trial, state=TrialState.PRUNED)
            steps = len(storage.get_trial(trial_id).intermediate_values)
            say(f"trial {trial.number} PRUNED after {steps} reports: {verdict.reason} {where}")
        else:
            assert verdict.values is not None
            self.tell(trial, verdict.values)
            shown = ", ".join(f"{m}={v:.6g}" for m, v in zip(self.metric_names, verdict.values, strict=True))
            say(f"trial {trial.number} COMPLETE: {shown} {where}")
        record_trial_in_metrics(verdict.own_run_dir, trial.number, verdict.state, verdict.reason)

    def _record_interrupted(self, trial: FrozenTrial, run_dir: Path | None, reason: str) -> None:
        """FAIL as interrupted in the study (retried once, not counted) and in its run's metrics.json."""
        assert self.study is not None
        fail_as_interrupted(self.study, trial, reason)
        record_trial_in_metrics(run_dir, trial.number, TrialState.FAIL, reason)

    def tell(self, trial: Trial, values: Sequence[float] | None = None, state: TrialState | None = None) -> None:
        assert self.study is not None
        try:
            self.study.tell(trial, values, state=state)
        except RuntimeError as error:
            # GridSampler calls `study.stop()` once the grid is done, which only works inside
            # `study.optimize`; the trial's state is stored before that, and n_trials ends the sweep.
            if "Study.stop" not in str(error):
                raise

    # --------------------------------------------------------------- finish
    def finish(self) -> dict[str, Any]:
        """Write optimization_results.yaml, print the final line; exit 2 if max_failures stopped the sweep."""
        assert self.study is not None
        results = study_results(
            self.study, n_trials=self.n_trials, metric_names=self.metric_names, storage=self.storage
        )
        path = write_results(self.sweep_dir, results)
        print(results_line(results, path), flush=True)
        counts = results["counts"]
        stopped_early = counts["complete"] + counts["pruned"] + counts["failed"] < self.n_trials
        limit = self.failure_limit()
        if limit is not None and stopped_early:
            failed = [t for t in self.study.get_trials(deepcopy=False) if is_failure(t)]
            last = max(failed, key=lambda t: t.number)
            raise ConfigError(
                f"the sweep stopped: {limit} (last: trial {last.number}: {last.user_attrs.get(FAIL_REASON_ATTR)}); "
                "fix the cause or raise that limit, then rerun the same command to continue the study"
            )
        return results
