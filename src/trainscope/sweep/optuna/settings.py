"""`hydra.sweeper` of `hydra/sweeper=trainscope_optuna`: every key, its type and default, written once.

`OptunaSettings` is the sweeper's config: `hydra_plugins/trainscope_optuna_sweeper/config.py` registers it with
Hydra's ConfigStore (adding only `_target_` and the sampler/pruner defaults), so Hydra type-checks each key;
Hydra builds the sweeper with the composed keys and `OptunaSettings.from_sweeper_config` checks their ranges
in one line each. The rest of the sweep reads the settings from here, never a copy. Keys of the official
`hydra-optuna-sweeper` (1.3/1.4) are accepted so its configs run unchanged but for the sweeper name:

- `sampler.seed` (official) is `hydra.sweeper.seed` (ours); set, it wins;
- `max_failure_rate` (official: failed / finished trials above which the sweep stops) replaces our
  count `max_failures` when set;
- `search_space` (the official plugin's deprecated dict form) adds distributions before `params`;
- `custom_search_space` names a function `(cfg, optuna_trial)` that suggests more parameters.

This module imports neither optuna nor torch: Hydra imports the config dataclass on every start, even `--help`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from trainscope.core.errors import ConfigError
from trainscope.trial.database import DatabaseSettings

DIRECTIONS = ("maximize", "minimize")


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


@dataclass
class OptunaSettings(DatabaseSettings):
    """The keys of `hydra.sweeper` (the database ones, `heartbeat_*` and `reconnect_timeout`, are inherited).

    `sampler` and `pruner` are the `hydra/sweeper/sampler` and `hydra/sweeper/pruner` options, kept as
    `{_target_: ..., kwargs}` configs (jobs rebuild the pruner from the study).
    """

    sampler: Any = None  # typed by the chosen option's own dataclass (config.py)
    pruner: Any = None
    # "maximize"/"minimize", or one per entry of a list `optimized_metric` (multi-objective): a str or a list,
    # which OmegaConf cannot type as one field. null: as the runs' task says each metric is better
    # (val/acc_best: maximize, val/rmse_best: minimize; `trainscope.sweep.objectives`), else maximize.
    direction: Any = None
    # Trials that count: complete, pruned and failed ones; trials a killed sweep left behind do not.
    n_trials: int = 20
    # Trials at once: n_jobs worker jobs (hydra/launcher places them) each pull trials until the study is done.
    n_jobs: int = 1
    # Defaults to the hparams_search option (or the job name); with `storage` it identifies the study.
    study_name: str | None = None
    # null: a journal file `optuna_journal.log` in the sweep dir; or a file path, or an RDB URL
    # (sqlite:///study.db, postgresql://user:password@host/db).
    storage: str | None = None
    seed: int | None = 0
    # The sweep stops once this many trials failed (raised, NaN/Inf objective, health checks); null: never.
    max_failures: int | None = 3
    # The official plugin's limit: the sweep stops once failed / finished trials exceeds it (0.0: the first
    # failure; 1.0: never). Set, it replaces max_failures.
    max_failure_rate: float | None = None
    # Seconds after which no new trial starts (running ones finish); null: no limit.
    timeout: float | None = None
    # Metric reported to the pruner each epoch; null: the (single) optimized_metric.
    pruning_metric: str | None = None
    # Search space in the official plugin's syntax: interval(...), tag(log, interval(...)), range(...),
    # choice(...), a,b,c; plain values are passed to every trial unchanged.
    params: dict[str, Any] | None = None
    # The official plugin's deprecated dict form, {key: {type: int|float|categorical, low, high, step, log,
    # choices}}; `params` and command-line entries win on the same key.
    search_space: dict[str, Any] | None = None
    # Dotted path of a function (cfg, optuna_trial) -> None that suggests more parameters per trial
    # (trial.suggest_float("+w", 0, 1): the name is the override key).
    custom_search_space: str | None = None

    @classmethod
    def from_sweeper_config(cls, values: Mapping[str, Any]) -> OptunaSettings:
        """The settings from the sweeper's (composed, type-checked) keys, checked: a bad value is one line."""
        settings = cls(**{key: _plain(value) for key, value in values.items()})
        settings.check()
        return settings

    def check(self) -> None:
        """Raise a one-line ConfigError naming the first bad value."""
        if self.sampler_config.get("_target_") == "optuna.samplers.MOTPESampler":
            raise ConfigError(
                "the 'motpe' sampler was removed in Optuna 4.0: use hydra/sweeper/sampler=tpe "
                "(TPESampler handles several objectives) or nsga2"
            )
        if self.n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials must be a positive integer, got {self.n_trials}")
        if self.n_jobs is not None and self.n_jobs < 1:  # not joblib's -1 = "every core", nor 0 = "none"
            raise ConfigError(f"hydra.sweeper.n_jobs (trials at once) must be a positive integer, got {self.n_jobs}")
        rate = self.max_failure_rate
        if rate is not None and not 0.0 <= float(rate) <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate must be between 0.0 and 1.0, got {rate}")
        bad = [d for d in self.directions if d not in DIRECTIONS]
        if bad:
            raise ConfigError(f"hydra.sweeper.direction must be maximize or minimize, got {bad[0]!r}")
        super().check()

    @property
    def directions(self) -> list[str]:
        """`direction` as a list, lower case (one entry per objective, or one for all); [] when unset."""
        if self.direction is None:
            return []
        raw = self.direction if isinstance(self.direction, list | tuple) else [self.direction]
        return [str(getattr(d, "name", d)).lower() for d in raw]

    @property
    def trials_at_once(self) -> int:
        """`n_jobs`; null: one at a time (0 and below are refused by `check`: each worker trains on its own
        cores or GPU, so "every core" or "none" has no meaning here)."""
        return 1 if self.n_jobs is None else int(self.n_jobs)

    @property
    def sampler_config(self) -> dict[str, Any]:
        """The sampler option without its `seed`: the sweep passes the seed plus the trials so far."""
        return {key: value for key, value in (self.sampler or {}).items() if key != "seed"}

    @property
    def sampler_seed(self) -> int | None:
        """`sampler.seed` (the official spelling) when set, else `seed`."""
        seed = (self.sampler or {}).get("seed")
        seed = self.seed if seed is None else seed
        return None if seed is None else int(seed)

    @property
    def pruner_config(self) -> dict[str, Any]:
        return dict(self.pruner or {})

    @property
    def pruning(self) -> bool:
        """Whether a pruner other than NopPruner is configured."""
        return bool(self.pruner) and not str(self.pruner_config.get("_target_", "")).endswith("NopPruner")

    @property
    def is_grid(self) -> bool:
        """GridSampler takes its grid from the search space, and the grid caps `n_trials`."""
        return str(self.sampler_config.get("_target_", "")).endswith("GridSampler")
