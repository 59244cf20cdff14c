"""`hydra.sweeper` of `hydra/sweeper=trainscope_optuna`, checked once, with the official plugin's spellings.

The sweeper's config dataclass (`hydra_plugins/trainscope_optuna_sweeper/config.py`) declares the keys
and their types; Hydra instantiates the sweeper with them and `OptunaSettings.from_sweeper_config`
turns them into plain values the runner uses. Keys of the official `hydra-optuna-sweeper` (1.3/1.4)
are accepted so its configs run unchanged but for the sweeper name:

- `sampler.seed` (official) is `hydra.sweeper.seed` (ours); set, it wins;
- `max_failure_rate` (official: failed / finished trials above which the sweep stops) replaces our
  count `max_failures` when set;
- `search_space` (the official plugin's deprecated dict form) adds distributions before `params`;
- `custom_search_space` names a function `(cfg, optuna_trial)` that suggests more parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from trainscope.core.errors import ConfigError
from trainscope.trial.storage import DatabaseSettings

DIRECTIONS = ("maximize", "minimize")


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _directions(direction: Any) -> list[str]:
    """The directions as a list; [] when unset (the sweep then takes the task's, `sweep.objectives`)."""
    if direction is None:
        return []
    raw = direction if isinstance(direction, list | tuple) else [direction]
    directions = [str(getattr(d, "name", d)).lower() for d in raw]
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise ConfigError(f"hydra.sweeper.direction must be maximize or minimize, got {bad[0]!r}")
    return directions


def _database_settings(values: Mapping[str, Any]) -> DatabaseSettings:
    defaults = DatabaseSettings()
    settings = DatabaseSettings(
        heartbeat_interval=values.get("heartbeat_interval", defaults.heartbeat_interval),
        heartbeat_grace_period=values.get("heartbeat_grace_period", defaults.heartbeat_grace_period),
        reconnect_timeout=values.get("reconnect_timeout", defaults.reconnect_timeout),
    )
    settings.check()
    return settings


@dataclass(frozen=True)
class OptunaSettings:
    """What one sweep runs with: `sampler`/`pruner` stay `{_target_: ..., kwargs}` configs (jobs rebuild
    the pruner from the study), `directions` is always a list, the rest as `config.py` documents it."""

    sampler: dict[str, Any]
    pruner: dict[str, Any]
    directions: list[str]
    n_trials: int
    n_jobs: int
    study_name: str | None
    storage: str | None
    seed: int | None
    max_failures: int | None
    max_failure_rate: float | None
    timeout: float | None
    pruning_metric: str | None
    params: dict[str, Any]
    search_space: dict[str, Any]
    custom_search_space: str | None
    database: DatabaseSettings  # heartbeats and reconnecting, for studies in a database server

    @classmethod
    def from_sweeper_config(cls, values: Mapping[str, Any]) -> OptunaSettings:
        """The settings from the sweeper's (composed, type-checked) config keys."""
        values = {key: _plain(value) for key, value in values.items()}
        sampler = dict(values.get("sampler") or {})
        if sampler.get("_target_") == "optuna.samplers.MOTPESampler":
            raise ConfigError(
                "the 'motpe' sampler was removed in Optuna 4.0: use hydra/sweeper/sampler=tpe "
                "(TPESampler handles several objectives) or nsga2"
            )
        sampler_seed = sampler.pop("seed", None)
        seed = sampler_seed if sampler_seed is not None else values.get("seed")
        n_trials = int(values["n_trials"])
        if n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials must be a positive integer, got {n_trials}")
        n_jobs = int(values.get("n_jobs") or 1)  # null: one at a time
        if n_jobs < 1:  # not joblib's -1 = "every core": each worker trains on its own cores or GPU
            raise ConfigError(f"hydra.sweeper.n_jobs (trials at once) must be a positive integer, got {n_jobs}")
        rate = values.get("max_failure_rate")
        if rate is not None and not 0.0 <= float(rate) <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate must be between 0.0 and 1.0, got {rate}")
        return cls(
            sampler=sampler,
            pruner=dict(values.get("pruner") or {}),
            directions=_directions(values.get("direction")),
            n_trials=n_trials,
            n_jobs=n_jobs,
            study_name=values.get("study_name"),
            storage=None if values.get("storage") is None else str(values["storage"]),
            seed=None if seed is None else int(seed),
            max_failures=None if values.get("max_failures") is None else int(values["max_failures"]),
            max_failure_rate=None if rate is None else float(rate),
            timeout=None if values.get("timeout") is None else float(values["timeout"]),
            pruning_metric=values.get("pruning_metric"),
            params=dict(values.get("params") or {}),
            search_space=dict(values.get("search_space") or {}),
            custom_search_space=values.get("custom_search_space"),
            database=_database_settings(values),
        )

    @property
    def pruning(self) -> bool:
        """Whether a pruner other than NopPruner is configured."""
        return bool(self.pruner) and not str(self.pruner.get("_target_", "")).endswith("NopPruner")

    @property
    def is_grid(self) -> bool:
        """GridSampler takes its grid from the search space, and the grid caps `n_trials`."""
        return str(self.sampler.get("_target_", "")).endswith("GridSampler")
