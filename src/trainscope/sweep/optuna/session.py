"""One process's share of an Optuna sweep, once its study is open: claim trials, launch them, record how they end.

`SweepSession.open(plan)` claims the sweep directory, opens (or creates) the study and checks that it is the
plan's (directions, search space); the session then always holds that open study. Every process working on a
study (the sweep, its workers (`trainscope.sweep.optuna.workers`), a resumed sweep, hand-started cooperating
sweeps) runs this same loop against the storage.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from trainscope.adapters.hydra_private import job_error
from trainscope.adapters.optuna_private import is_heartbeat_enabled, study_storage, trial_id
from trainscope.config.overrides import hydra_quote
from trainscope.core.errors import ConfigError, first_line
from trainscope.core.run_dir import RunStatus
from trainscope.sweep.guarded_launcher import GuardedLauncher
from trainscope.sweep.jobs import report_failed_jobs
from trainscope.sweep.optuna.heartbeat import Heartbeat
from trainscope.sweep.optuna.job_line import CHANNEL_PREFIX, job_line_without_channel
from trainscope.sweep.optuna.messages import say
from trainscope.sweep.optuna.plan import SweepPlan
from trainscope.sweep.optuna.results import results_line, study_results, write_results
from trainscope.sweep.optuna.search_space import describe_domain, differing_parameter, search_space_domains
from trainscope.sweep.optuna.study import (
    claim_trial,
    count_trials,
    fail_abandoned_trials,
    fail_as_interrupted,
    is_failure,
    trials_counted,
    trials_running_elsewhere,
)
from trainscope.sweep.optuna.trial_resume import resume_overrides, run_to_resume
from trainscope.sweep.optuna.verdict import TrialVerdict, judge_job, record_trial_in_metrics
from trainscope.sweep.sweep_dir import claim_sweep_dir, optuna_owner
from trainscope.trial.attributes import (
    FAIL_REASON_ATTR,
    METRICS_STUDY_ATTR,
    MONITOR_STUDY_ATTR,
    PRUNER_STUDY_ATTR,
    RUN_DIR_ATTR,
    SEARCH_SPACE_STUDY_ATTR,
    STATUS_ATTR,
    fail_reason_study_attr,
)
from trainscope.trial.channel import TrialAddress
from trainscope.trial.storage import StorageError, dashboard_command, open_storage, redact

# How often a process whose trials are all claimed looks whether the trials running elsewhere have ended.
WAIT_POLL_SECONDS = 1.0


class SweepSession:
    """The plan's study, open: `open` makes one; `study` is the study itself, never missing."""

    def __init__(self, plan: SweepPlan, study: optuna.Study, abandoned: list[FrozenTrial]) -> None:
        self.plan = plan
        self.study = study
        self.abandoned = abandoned  # RUNNING trials of killed sweeps that `open` failed (and queued again)
        self._waiting = False

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, plan: SweepPlan) -> SweepSession:
        """Create or load the plan's study (a worker only opens it); fail the trials of killed sweeps."""
        claim_sweep_dir(  # held until this process ends: no other study's runs in this directory
            plan.sweep_dir,
            optuna_owner(plan.study_name, redact(plan.storage)),
            exclusive=False,
            fix=f"choose another hydra.sweep.dir for study '{plan.study_name}'",
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(plan.storage, plan.settings)
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=plan.study_name,
                directions=plan.directions,
                sampler=plan.make_sampler(0),
                load_if_exists=True,
            )
        except ValueError as error:  # e.g. an existing study with other directions
            raise ConfigError(f"study '{plan.study_name}' in {redact(plan.storage)}: {first_line(error)}") from error
        except Exception as error:  # noqa: BLE001 - a locked or unreachable database
            raise StorageError(
                f"cannot open study '{plan.study_name}' in Optuna storage '{redact(plan.storage)}': "
                f"{first_line(error)}; check hydra.sweeper.storage"
            ) from error
        existing = [d.name.lower() for d in study.directions]
        if existing != plan.directions:
            raise ConfigError(
                f"study '{plan.study_name}' in {redact(plan.storage)} was created with direction {existing}, "
                f"not {plan.directions}; set hydra.sweeper.study_name to start a new study"
            )
        _check_search_space(plan, study)
        _set_study_attr(study, PRUNER_STUDY_ATTR, plan.settings.pruner_config)
        _set_study_attr(study, METRICS_STUDY_ATTR, plan.metric_names)
        _set_study_attr(study, MONITOR_STUDY_ATTR, plan.pruning_metric)
        _set_study_attr(study, SEARCH_SPACE_STUDY_ATTR, search_space_domains(plan.space.distributions))
        if study.metric_names is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(plan.metric_names)
        return cls(plan, study, fail_abandoned_trials(study))

    def announce(self, groups: Sequence[str] | None = None) -> None:
        """The sweep's first lines (where the study is, how far it got) and the HParams experiment declaration."""
        plan = self.plan
        for trial in self.abandoned:
            say(f"trial {trial.number} was left RUNNING by a killed sweep: marked FAIL, retried once")
        counts = count_trials(self.study.get_trials(deepcopy=False))
        objectives = ", ".join(f"{d} {m}" for d, m in zip(plan.directions, plan.metric_names, strict=True))
        say(
            f"study '{plan.study_name}' ({objectives}): {counts.finished} of {plan.n_trials} trials done, "
            f"storage: {redact(plan.storage)}"
        )
        say(f"dashboard: {dashboard_command(redact(plan.storage))}")
        self._declare_experiment(groups)

    def _declare_experiment(self, groups: Sequence[str] | None) -> None:
        """The HParams experiment declaration at the sweep root: each sampled key's domain."""
        from trainscope.config.overrides import override_value
        from trainscope.sweep.experiment import declare_experiment
        from trainscope.sweep.objectives import hparams_metrics
        from trainscope.tensorboard.hparams import Interval

        parser = OverridesParser.create()
        domains: dict[str, Any] = {}
        for name, distribution in self.plan.space.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                domains[name] = [
                    override_value(parser.parse_override(f"x={choice}").value()) for choice in distribution.choices
                ]
            elif isinstance(distribution, IntDistribution | FloatDistribution):
                domains[name] = Interval(distribution.low, distribution.high)
        metrics = hparams_metrics(self.plan.config)
        metrics += [m for m in self.plan.metric_names if m not in metrics]
        declare_experiment(self.plan.config, domains, metrics, groups=groups)

    # ---------------------------------------------------------------- the study's state
    def fail_abandoned(self) -> list[FrozenTrial]:
        """Fail (and retry once) the RUNNING trials whose worker died; returns them."""
        return fail_abandoned_trials(self.study)

    def finished_trials(self) -> int:
        return count_trials(self.study.get_trials(deepcopy=False)).finished

    def workers_wanted(self) -> int:
        """`n_jobs`, but no more workers than trials the study still needs (a rerun may need only one)."""
        counted = trials_counted(self.study.get_trials(deepcopy=False))
        return max(1, min(self.plan.settings.trials_at_once, self.plan.n_trials - counted))

    def needs_trials(self) -> bool:
        """Whether the study still needs trials to reach `n_trials` (and no timeout or failure limit stops it)."""
        if self.plan.past_deadline() or self.failure_limit() is not None:
            return False
        return trials_counted(self.study.get_trials(deepcopy=False)) < self.plan.n_trials

    def failure_limit(self) -> str | None:
        """How the failed trials exceed `max_failure_rate` (when set) or `max_failures`; None if they do not."""
        counts = count_trials(self.study.get_trials(deepcopy=False))
        rate = self.plan.settings.max_failure_rate
        if rate is not None:
            if counts.failed and counts.failed / counts.finished > rate:
                share = f"{counts.failed} of {counts.finished} trials failed"
                return f"{share}, above hydra.sweeper.max_failure_rate={rate}"
            return None
        limit = self.plan.settings.max_failures
        if limit is not None and counts.failed >= limit:
            return f"{counts.failed} trials failed, reaching hydra.sweeper.max_failures={limit}"
        return None

    # ---------------------------------------------------------------- trials
    def run_trials(self, launcher: GuardedLauncher) -> None:
        """Claim and run trials until the study needs none (or the timeout or a failure limit stops it)."""
        plan = self.plan
        self.check_search_keys(launcher)
        while True:
            if plan.past_deadline():
                say("hydra.sweeper.timeout reached: no new trial starts")
                return
            if self.failure_limit() is not None:
                return
            trial = claim_trial(self.study, plan.storage, plan.space.distributions, plan.n_trials, plan.make_sampler)
            if trial is None:
                if self.wait_for_trials_elsewhere():
                    continue
                return
            if plan.configure_trial is not None:
                try:
                    plan.configure_trial(plan.config, trial)
                except Exception as error:  # noqa: BLE001 - the user's function fails this trial, not the sweep
                    reason = f"custom_search_space raised {type(error).__name__}: {first_line(error)}"
                    self.record(trial, TrialVerdict(TrialState.FAIL, RunStatus.FAILED.value, None, reason=reason))
                    continue
            self.run_trial(launcher, trial)

    def check_search_keys(self, launcher: GuardedLauncher) -> None:
        """A search key no trial can apply (`optimizer.lrr`, `model.sizes.1` of a one-entry list) is one error
        before the first trial, not a failed trial per sample (and exit 0 when they stay under max_failures).

        Samples are composed into the app's config as a trial's job would be: the i-th choice of every categorical
        (i up to the longest one's length, so `model=choice(mlp,cnn)` with a key only `mlp` has is tried with
        `mlp`), the low end of every range. Only when none composes is it an error.
        """
        distributions = self.plan.space.distributions
        rounds = max([len(d.choices) for d in distributions.values() if isinstance(d, CategoricalDistribution)] or [1])
        failure: HydraException | None = None
        for index in range(rounds):
            probe = {name: _some_value(distribution, index) for name, distribution in distributions.items()}
            try:
                launcher.config_loader.load_sweep_config(launcher.config, self.plan.space.trial_overrides(probe))
                return
            except HydraException as error:
                failure = failure or error
        if failure is not None:
            raise ConfigError(
                f"no trial could run: a search key does not fit the app's config ({first_line(failure).rstrip('.')})"
                "; fix that key in hydra.sweeper.params or on the command line"
            )

    def wait_for_trials_elsewhere(self) -> bool:
        """With heartbeats, stay while other workers' trials run: if one's worker died, this one retries it.

        Returns False when no trial runs elsewhere (the study is done) or on a storage without heartbeats.
        """
        storage = study_storage(self.study)
        running = trials_running_elsewhere(self.study) if is_heartbeat_enabled(storage) else []
        if not running:
            return False
        if not self._waiting:
            numbers = ", ".join(str(t.number) for t in running)
            say(
                f"all {self.plan.n_trials} trials claimed; waiting for trials {numbers} running elsewhere "
                "(a dead worker's trial is retried here after the heartbeat grace period)"
            )
            self._waiting = True
        # Look again soon (one storage read), not a heartbeat interval later: the sweep ends as soon as the last
        # trial elsewhere does. A dead worker's trial still waits out the grace period (claim_trial fails it then).
        time.sleep(min(WAIT_POLL_SECONDS, storage.get_heartbeat_interval()))  # type: ignore[attr-defined]
        return True

    def trial_overrides(self, trial: Trial) -> list[str]:
        """The job's overrides: the sampled values, and the trial's address as `hydra.job.env_set` entries.

        The address reaches the job only as environment variables (`trainscope.trial`): nothing is added
        to the app's config, its saved overrides or its run directory name.
        """
        plan = self.plan
        address = TrialAddress(
            plan.storage,
            plan.study_name,
            trial_id(trial),
            trial.number,
            plan.pruning_metric,
            plan.settings.reconnect_timeout,
        )
        channel = [f"{CHANNEL_PREFIX}{name}={hydra_quote(value)}" for name, value in address.env().items()]
        interrupted = run_to_resume(study_storage(self.study).get_trial(trial_id(trial)), plan.sweep_dir, plan.config)
        if interrupted is None:
            return [*plan.space.trial_overrides(trial.params), *channel]
        say(f"trial {trial.number} continues the interrupted run {interrupted} from its checkpoint")
        return [*plan.space.trial_overrides(trial.params), *channel, *resume_overrides(interrupted)]

    def run_trial(self, launcher: GuardedLauncher, trial: Trial) -> None:
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        say(f"trial {trial.number} started: {params}")
        storage = study_storage(self.study)
        try:
            overrides = self.trial_overrides(trial)
            with Heartbeat(storage, trial_id(trial)), job_line_without_channel(overrides):
                (job,) = launcher.launch([overrides], initial_job_idx=trial.number)
        except KeyboardInterrupt:
            frozen = storage.get_trial(trial_id(trial))
            run_dir = frozen.user_attrs.get(RUN_DIR_ATTR)  # set by the job when it opened its trial
            reason = "interrupted: the sweep was stopped (Ctrl-C or SIGTERM); retried on resume"
            self._record_interrupted(frozen, Path(run_dir) if run_dir else None, reason)
            say(f"trial {trial.number} interrupted; rerun the same command to continue the study")
            raise
        except HydraException as error:  # e.g. a sampled value that does not merge into the app's config
            reason = f"its config could not be composed: {first_line(error)}"
            self.record(trial, TrialVerdict(TrialState.FAIL, RunStatus.FAILED.value, None, reason=reason))
            return
        lost_storage = job_error(job)
        if job.status == JobStatus.FAILED and isinstance(lost_storage, StorageError):
            # The study was unavailable past reconnect_timeout: not the trial's fault, and the sweep stops.
            with contextlib.suppress(Exception):  # recorded now if the storage is back, else by the rerun
                frozen = storage.get_trial(trial_id(trial))
                fail_as_interrupted(self.study, frozen, f"interrupted: {lost_storage}")
            raise lost_storage
        verdict = judge_job(job, self.plan.metric_names)
        if verdict.state != TrialState.PRUNED:  # an app stops a pruned trial by raising optuna.TrialPruned
            report_failed_jobs([job], one_line=True)  # a crash: one line; its traceback in the trial's log
        try:
            self.record(trial, verdict)
        except optuna.exceptions.UpdateFinishedTrialError:
            say(
                f"trial {trial.number} was failed by another worker while it ran (no heartbeat for "
                f"hydra.sweeper.heartbeat_grace_period={self.plan.settings.heartbeat_grace_period} s); "
                f"its configuration is retried, this result is not counted ({verdict.run_dir})"
            )

    def record(self, trial: Trial, verdict: TrialVerdict) -> None:
        storage = study_storage(self.study)
        key = trial_id(trial)
        if verdict.own_run_dir is not None:  # never another run's directory this trial was refused from
            storage.set_trial_user_attr(key, RUN_DIR_ATTR, str(verdict.own_run_dir))
        storage.set_trial_user_attr(key, STATUS_ATTR, verdict.run_status)
        where = f"({verdict.run_dir})" if verdict.run_dir is not None else "(no run directory)"
        if verdict.interrupted:
            reason = f"interrupted: {verdict.reason or 'stopped by a signal'}; retried once"
            self._record_interrupted(storage.get_trial(key), verdict.own_run_dir, reason)
            say(f"trial {trial.number} interrupted {where}")
            raise KeyboardInterrupt
        if verdict.state == TrialState.FAIL:
            reason = verdict.reason
            storage.set_trial_user_attr(key, FAIL_REASON_ATTR, reason)
            self.study.set_user_attr(fail_reason_study_attr(trial.number), reason)
            self.tell(trial, state=TrialState.FAIL)
            say(f"trial {trial.number} FAIL: {reason} {where}")
        elif verdict.state == TrialState.PRUNED:
            self.tell(trial, state=TrialState.PRUNED)
            steps = len(storage.get_trial(key).intermediate_values)
            say(f"trial {trial.number} PRUNED after {steps} reports: {verdict.reason} {where}")
        else:
            assert verdict.values is not None
            self.tell(trial, verdict.values)
            shown = ", ".join(f"{m}={v:.6g}" for m, v in zip(self.plan.metric_names, verdict.values, strict=True))
            say(f"trial {trial.number} COMPLETE: {shown} {where}")
        record_trial_in_metrics(verdict.own_run_dir, trial.number, verdict.state, verdict.reason)

    def _record_interrupted(self, trial: FrozenTrial, run_dir: Path | None, reason: str) -> None:
        """FAIL as interrupted in the study (retried once, not counted) and in its run's metrics.json."""
        fail_as_interrupted(self.study, trial, reason)
        record_trial_in_metrics(run_dir, trial.number, TrialState.FAIL, reason)

    def tell(self, trial: Trial, values: Sequence[float] | None = None, state: TrialState | None = None) -> None:
        try:
            self.study.tell(trial, values, state=state)
        except RuntimeError as error:
            # GridSampler calls `study.stop()` once the grid is done, which only works inside
            # `study.optimize`; the trial's state is stored before that, and n_trials ends the sweep.
            if "Study.stop" not in str(error):
                raise

    # ---------------------------------------------------------------- finish
    def finish(self) -> dict[str, Any]:
        """Write optimization_results.yaml, print the final line; exit 2 if max_failures stopped the sweep."""
        plan = self.plan
        results = study_results(
            self.study, n_trials=plan.n_trials, metric_names=plan.metric_names, storage=plan.storage
        )
        path = write_results(plan.sweep_dir, results)
        print(results_line(results, path), flush=True)
        counts = results["counts"]
        stopped_early = counts["complete"] + counts["pruned"] + counts["failed"] < plan.n_trials
        limit = self.failure_limit()
        if limit is not None and stopped_early:
            failed = [t for t in self.study.get_trials(deepcopy=False) if is_failure(t)]
            last = max(failed, key=lambda t: t.number)
            raise ConfigError(
                f"the sweep stopped: {limit} (last: trial {last.number}: {last.user_attrs.get(FAIL_REASON_ATTR)}); "
                "fix the cause or raise that limit, then rerun the same command to continue the study"
            )
        return results


def _check_search_space(plan: SweepPlan, study: optuna.Study) -> None:
    """A study keeps one search space: a sweep joining it with another one is refused before any trial."""
    recorded = study.user_attrs.get(SEARCH_SPACE_STUDY_ATTR)
    domains = search_space_domains(plan.space.distributions)
    name = differing_parameter(recorded, domains) if recorded is not None else None
    if name is not None:
        raise ConfigError(
            f"study '{plan.study_name}' in {redact(plan.storage)} samples {name} from "
            f"{describe_domain(recorded.get(name))}, this sweep from {describe_domain(domains.get(name))}; "
            "a study keeps one search space: use the study's, or set hydra.sweeper.study_name to start a new study"
        )


def _set_study_attr(study: optuna.Study, key: str, value: Any) -> None:
    if study.user_attrs.get(key) != value:
        study.set_user_attr(key, value)


def _some_value(distribution: Any, index: int) -> Any:
    """A value the distribution can sample: its `index`-th choice (cycling), or its low end."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[index % len(distribution.choices)]
    return distribution.low
