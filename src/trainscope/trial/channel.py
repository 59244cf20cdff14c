"""The environment variables that tell a job it is an Optuna trial (`trainscope.trial.current` reads them).

The sweeper sets them per job with `hydra.job.env_set.<VAR>=<value>` (a `hydra.*` override: it never
reaches the app's config, `.hydra/overrides.yaml` or `hydra.job.override_dirname`). Hydra's `run_job`,
which every launcher calls, sets them while the task function runs and restores the environment after.
A job started by hand (or resumed with `resume=<run dir>`) has none of them and is no trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trainscope.config.yaml_files import load_plain_yaml, plain_select
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import SAVED_HYDRA_CONFIG

STORAGE_VAR = "TRAINSCOPE_TRIAL_STORAGE"
STUDY_VAR = "TRAINSCOPE_TRIAL_STUDY"
TRIAL_ID_VAR = "TRAINSCOPE_TRIAL_ID"
NUMBER_VAR = "TRAINSCOPE_TRIAL_NUMBER"
PRUNING_METRIC_VAR = "TRAINSCOPE_TRIAL_PRUNING_METRIC"
RECONNECT_TIMEOUT_VAR = "TRAINSCOPE_TRIAL_RECONNECT_TIMEOUT"
REQUIRED_VARS = (STORAGE_VAR, STUDY_VAR, TRIAL_ID_VAR, NUMBER_VAR)


@dataclass(frozen=True)
class TrialAddress:
    """Where a running trial lives: enough for any process to open it in the study's storage.

    `trial_id` is the storage key (what `optuna.trial.Trial` needs), `number` the per-study index users
    see; `pruning_metric` is the metric the sweep prunes on (None: nothing to report); `reconnect_timeout`
    the seconds the sweep waits out an unavailable database, so its job gives up no later than it does.
    """

    storage: str
    study_name: str
    trial_id: int
    number: int
    pruning_metric: str | None = None
    reconnect_timeout: float | None = None

    def env(self) -> dict[str, str]:
        """The variables the sweeper sets for this trial's job."""
        return {
            STORAGE_VAR: self.storage,
            STUDY_VAR: self.study_name,
            TRIAL_ID_VAR: str(self.trial_id),
            NUMBER_VAR: str(self.number),
            PRUNING_METRIC_VAR: self.pruning_metric or "",
            RECONNECT_TIMEOUT_VAR: "" if self.reconnect_timeout is None else repr(self.reconnect_timeout),
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TrialAddress | None:
        """The trial `environ` names; None when it names none; ConfigError when it is half set."""
        present = [var for var in REQUIRED_VARS if environ.get(var)]
        if not present:
            return None
        missing = [var for var in REQUIRED_VARS if not environ.get(var)]
        if missing:
            raise ConfigError(
                f"{present[0]} is set but {missing[0]} is not: the trial environment variables are set by the "
                "trainscope_optuna sweeper only; unset them to run outside a sweep"
            )
        try:
            trial_id, number = int(environ[TRIAL_ID_VAR]), int(environ[NUMBER_VAR])
            reconnect_timeout = float(environ[RECONNECT_TIMEOUT_VAR]) if environ.get(RECONNECT_TIMEOUT_VAR) else None
        except ValueError as error:
            raise ConfigError(
                f"{TRIAL_ID_VAR} and {NUMBER_VAR} must be integers, {RECONNECT_TIMEOUT_VAR} a number: {error}"
            ) from error
        return cls(
            storage=environ[STORAGE_VAR],
            study_name=environ[STUDY_VAR],
            trial_id=trial_id,
            number=number,
            pruning_metric=environ.get(PRUNING_METRIC_VAR) or None,
            reconnect_timeout=reconnect_timeout,
        )


def recorded_trial(run_dir: Path) -> TrialAddress | None:
    """The trial a run directory was launched as (its `.hydra/hydra.yaml` keeps `hydra.job.env_set`)."""
    try:
        env_set = plain_select(load_plain_yaml(run_dir / SAVED_HYDRA_CONFIG), "hydra.job.env_set")
        recorded = env_set if isinstance(env_set, dict) else {}
        return TrialAddress.from_env({str(k): str(v) for k, v in recorded.items()})
    except (OSError, ValueError, ConfigError):
        return None
