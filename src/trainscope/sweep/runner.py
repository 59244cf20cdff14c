"""One process's share of an Optuna sweep: open the study, claim trials, launch them, record how they end.

Used by the `trainscope_optuna` Hydra sweeper; every process working on a study (the sweep, its worker
processes, a resumed sweep, hand-started cooperating sweeps) runs this same loop against the storage.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import Trial, TrialState

from trainscope.config.overrides import hydra_quote
from trainscope.core.errors import ConfigError, first_line
from trainscope.sweep.guarded_launcher import GuardedLauncher
from trainscope.sweep.outcome import TrialOutcome, judge_job, record_in_run_summary
from trainscope.sweep.results import study_results, summary_line, write_results
from trainscope.sweep.search_space import (
    grid_search_space,
    grid_size,
    parse_search_space,
    search_space_domains,
)
from trainscope.sweep.storage import (
    HEARTBEAT_INTERVAL_SECONDS,
    StorageError,
    dashboard_command,
    open_storage,
    redact,
    resolve_storage,
)
from trainscope.sweep.study import (
    FAIL_REASON_ATTR,
    METRICS_STUDY_ATTR,
    MONITOR_STUDY_ATTR,
    PRUNER_STUDY_ATTR,
    RUN_DIR_ATTR,
    SEARCH_SPACE_STUDY_ATTR,
    STATUS_ATTR,
    claim_trial,
    count_trials,
    fail_abandoned_trials,
    fail_as_interrupted,
    is_failure,
    study_storage,
)
from trainscope.sweep.summary import report_failed_jobs

DIRECTIONS = ("maximize", "minimize")


def say(message: str) -> None:
    print(f"[optuna] {message}", flush=True)


class _Heartbeat:
    """Keeps an RDB trial alive while its job runs; a dead sweep's trials then go stale and are retried."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"optuna-heartbeat-{trial_id}", daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 - a missed beat must not kill the trial
                say(f"heartbeat of trial {self._trial_id} not recorded: {first_line(error)}")
            if self._stop.wait(HEARTBEAT_INTERVAL_SECONDS):
                return

    def __enter__(self) -> _Heartbeat:
        if getattr(self._storage, "heartbeat_interval", None):
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
    def __init__(self, config: DictConfig, arguments: Sequence[str], worker_index: int = 0) -> None:
        sweeper = config.hydra.sweeper
        self.config = config
        self.worker_index = worker_index
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.n_trials = int(sweeper.n_trials)
        self.n_jobs = max(1, int(sweeper.n_jobs))
        self.seed = None if sweeper.seed is None else int(sweeper.seed)
        self.max_failures = None if sweeper.max_failures is None else int(sweeper.max_failures)
        self.deadline = None if sweeper.timeout is None else time.time() + float(sweeper.timeout)
        if self.n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials must be a positive integer, got {self.n_trials}")

        self.metric_names = [
            str(m) for m in _as_list(OmegaConf.select(config, "optimized_metric", default="objective"))
        ]
        self.directions = [str(d).lower() for d in _as_list(sweeper.direction)]
        if len(self.directions) == 1 and len(self.metric_names) > 1:
            self.directions *= len(self.metric_names)
        bad = [d for d in self.directions if d not in DIRECTIONS]
        if bad:
            raise ConfigError(f"hydra.sweeper.direction must be maximize or minimize, got {bad[0]!r}")
        if len(self.directions) != len(self.metric_names):
            raise ConfigError(
                f"hydra.sweeper.direction has {len(self.directions)} entries but optimized_metric has "
                f"{len(self.metric_names)} ({self.metric_names}); give one direction per metric"
            )

        self.space = parse_search_space(
            OmegaConf.to_container(sweeper.params, resolve=True) if sweeper.params is not None else None, arguments
        )
        if not self.space.distributions:
            raise ConfigError(
                "the search space is empty: set hydra.sweeper.params, e.g. optimizer.lr: tag(log, interval(1e-4, 1e-1))"
            )
        self.sampler_config = OmegaConf.to_container(sweeper.sampler, resolve=True) if sweeper.sampler else {}
        self.pruner_config = OmegaConf.to_container(sweeper.pruner, resolve=True) if sweeper.pruner else {}
        self.pruning = not str(self.pruner_config.get("_target_", "")).endswith("NopPruner") and bool(
            self.pruner_config
        )
        if self.pruning and len(self.metric_names) > 1:
            raise ConfigError(
                f"hydra/sweeper/pruner needs a single optimized_metric, got {self.metric_names}; "
                "use hydra/sweeper/pruner=none for multi-objective sweeps"
            )
        self.grid: dict[str, list[Any]] | None = None
        if str(self.sampler_config.get("_target_", "")).endswith("GridSampler"):
            self.grid = grid_search_space(self.space.distributions)
            self.n_trials = min(self.n_trials, grid_size(self.grid))

        choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
        self.study_name = str(
            sweeper.study_name or choices.get("hparams_search") or OmegaConf.select(config, "hydra.job.name")
        )
        self.storage = resolve_storage(sweeper.storage, self.sweep_dir)
        self.pruning_metric = sweeper.pruning_metric or (self.metric_names[0] if len(self.metric_names) == 1 else None)
        self.study: optuna.Study | None = None
        self.stop_reason = ""

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
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(self.storage)
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
        self._set_study_attr(PRUNER_STUDY_ATTR, self.pruner_config)
        self._set_study_attr(METRICS_STUDY_ATTR, self.metric_names)
        self._set_study_attr(MONITOR_STUDY_ATTR, self.pruning_metric)
        self._set_study_attr(SEARCH_SPACE_STUDY_ATTR, search_space_domains(self.space.distributions))
        if study.metric_names is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.metric_names)

        abandoned = fail_abandoned_trials(study)
        if self.worker_index == 0:
            for trial in abandoned:
                say(f"trial {trial.number} was left RUNNING by a killed sweep: marked FAIL, retried once")
            counts = count_trials(study.get_trials(deepcopy=False))
            objectives = ", ".join(f"{d} {m}" for d, m in zip(self.directions, self.metric_names, strict=True))
            say(
                f"study '{self.study_name}' ({objectives}): {counts.finished} of {self.n_trials} trials done, "
                f"storage: {redact(self.storage)}"
            )
            say(f"dashboard: {dashboard_command(redact(self.storage))}")
            self._write_experiment_summary(groups)
        return study

    def _set_study_attr(self, key: str, value: Any) -> None:
        assert self.study is not None
        if self.study.user_attrs.get(key) != value:
            self.study.set_user_attr(key, value)

    def _write_experiment_summary(self, groups: Sequence[str] | None) -> None:
        """The HParams experiment summary at the sweep root, declaring each sampled key's domain."""
        from trainscope.sweep.summary import override_value, write_sweep_experiment
        from trainscope.tensorboard.hparams import DEFAULT_METRICS, Interval

        parser = OverridesParser.create()
        domains: dict[str, Any] = {}
        for name, distribution in self.space.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                domains[name] = [
                    override_value(parser.parse_override(f"x={choice}").value()) for choice in distribution.choices
                ]
            elif isinstance(distribution, IntDistribution | FloatDistribution):
                domains[name] = Interval(distribution.low, distribution.high)
        metrics = list(DEFAULT_METRICS)
        metrics += [m for m in self.metric_names if m not in metrics]
        write_sweep_experiment(self.config, domains, metrics, groups=groups)

    # --------------------------------------------------------------- trials
    def failures(self) -> int:
        assert self.study is not None
        return sum(is_failure(t) for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))

    def run_trials(self, launcher: GuardedLauncher) -> None:
        assert self.study is not None
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                self.stop_reason = "timeout"
                say("hydra.sweeper.timeout reached: no new trial starts")
                return
            if self.max_failures is not None and self.failures() >= self.max_failures:
                self.stop_reason = "max_failures"
                return
            trial = claim_trial(self.study, self.storage, self.space.distributions, self.n_trials, self.make_sampler)
            if trial is None:
                return
            self.run_trial(launcher, trial)

    def trial_overrides(self, trial: Trial) -> list[str]:
        link = {
            "storage": hydra_quote(self.storage),
            "study_name": hydra_quote(self.study_name),
            "trial_id": str(trial._trial_id),
            "number": str(trial.number),
            "monitor": hydra_quote(self.pruning_metric) if self.pruning_metric else "null",
        }
        link_override = "++optuna_trial={" + ",".join(f"{k}:{v}" for k, v in link.items()) + "}"
        # The job reports each epoch to the trial through this callback (excluded from run dir names).
        callback_override = (
            "++callbacks.optuna_pruning={_target_:trainscope.sweep.pruning.OptunaPruningCallback,"
            "optuna_trial:'${optuna_trial}'}"
        )
        return [*self.space.trial_overrides(trial.params), link_override, callback_override]

    def run_trial(self, launcher: GuardedLauncher, trial: Trial) -> TrialOutcome:
        assert self.study is not None
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        say(f"trial {trial.number} started: {params}")
        storage = study_storage(self.study)
        try:
            with _Heartbeat(storage, trial._trial_id):
                (job,) = launcher.launch([self.trial_overrides(trial)], initial_job_idx=trial.number)
        except KeyboardInterrupt:
            frozen = study_storage(self.study).get_trial(trial._trial_id)
            fail_as_interrupted(self.study, frozen, "interrupted: the sweep was stopped (Ctrl-C); retried on resume")
            say(f"trial {trial.number} interrupted; rerun the same command to continue the study")
            raise
        report_failed_jobs([job])  # a crash (not a TrainscopeError) keeps its traceback
        outcome = judge_job(job, self.metric_names)
        self.record(trial, outcome)
        return outcome

    def record(self, trial: Trial, outcome: TrialOutcome) -> None:
        assert self.study is not None
        storage = study_storage(self.study)
        trial_id = trial._trial_id
        storage.set_trial_user_attr(trial_id, RUN_DIR_ATTR, str(outcome.run_dir))
        storage.set_trial_user_attr(trial_id, STATUS_ATTR, outcome.run_status)
        where = f"({outcome.run_dir})"
        if outcome.interrupted:
            reason = f"interrupted: {outcome.reason or 'stopped by a signal'}; retried once"
            fail_as_interrupted(self.study, storage.get_trial(trial_id), reason)
            record_in_run_summary(outcome.run_dir, trial.number, TrialState.FAIL, reason)
            say(f"trial {trial.number} interrupted {where}")
            raise KeyboardInterrupt
        if outcome.state == TrialState.FAIL:
            reason = outcome.reason
            storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
            self.study.set_user_attr(f"fail_reason/trial_{trial.number}", reason)
            self.tell(trial, state=TrialState.FAIL)
            say(f"trial {trial.number} FAIL: {reason} {where}")
        elif outcome.state == TrialState.PRUNED:
            self.tell(trial, state=TrialState.PRUNED)
            steps = len(storage.get_trial(trial_id).intermediate_values)
            say(f"trial {trial.number} PRUNED after {steps} epochs: {outcome.reason} {where}")
        else:
            assert outcome.values is not None
            self.tell(trial, outcome.values)
            shown = ", ".join(f"{m}={v:.6g}" for m, v in zip(self.metric_names, outcome.values, strict=True))
            say(f"trial {trial.number} COMPLETE: {shown} {where}")
        if outcome.owns_run_dir:
            record_in_run_summary(outcome.run_dir, trial.number, outcome.state, outcome.reason)

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
        print(summary_line(results, path), flush=True)
        counts = results["counts"]
        stopped_early = counts["complete"] + counts["pruned"] + counts["failed"] < self.n_trials
        if self.max_failures is not None and counts["failed"] >= self.max_failures and stopped_early:
            failed = [t for t in self.study.get_trials(deepcopy=False) if is_failure(t)]
            last = max(failed, key=lambda t: t.number)
            raise ConfigError(
                f"the sweep stopped: {counts['failed']} trials failed, reaching hydra.sweeper.max_failures="
                f"{self.max_failures} (last: trial {last.number}: {last.user_attrs.get(FAIL_REASON_ATTR)}); "
                "fix the cause or raise max_failures, then rerun the same command to continue the study"
            )
        return results
