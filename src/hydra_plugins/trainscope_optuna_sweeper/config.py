"""Config of `hydra/sweeper=trainscope_optuna` and its `sampler` and `pruner` groups.

Sampler and pruner are config groups, so `hydra/sweeper/sampler=random` replaces the whole node and no
key of the previous option is left behind (the official plugin's `sampler._target_=...` switch left
e.g. `seed` on a sampler that does not take it). The seed is `hydra.sweeper.seed`; every sampler also
takes the official plugin's `sampler.seed`, which wins when set. The sweeper passes the seed plus the
number of trials so far, so resumed and cooperating sweeps do not replay each other's proposals.

The official `hydra-optuna-sweeper` keys are accepted (`max_failure_rate`, `search_space`,
`custom_search_space`, sampler `nsgaii`), so its configs run with `hydra/sweeper: trainscope_optuna`;
`trainscope.sweep.settings` says how each maps onto ours.

This module only declares dataclasses: Hydra imports every plugin module on each start (even `--help`).
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

PROVIDER = "trainscope"


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    group: bool = False
    constant_liar: bool = True  # parallel trials do not all propose the same point


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed


@dataclass
class GridSamplerConf:
    """Every combination of the (discrete) params, once; `n_trials` is capped at the grid size."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed
    sigma0: float | None = None
    n_startup_trials: int = 1
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    use_separable_cma: bool = False
    with_margin: bool = False


@dataclass
class GPSamplerConf:
    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class NSGAIISamplerConf:
    """Multi-objective genetic search (several `optimized_metric` / `direction` entries)."""

    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed
    population_size: int = 50
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


@dataclass
class QMCSamplerConf:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: int | None = None  # the official plugin's spelling of hydra.sweeper.seed
    qmc_type: str = "sobol"
    scramble: bool = False
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class MOTPESamplerConf:
    """The official plugin's `motpe`: removed in Optuna 4; kept so the sweep says so in one line."""

    _target_: str = "optuna.samplers.MOTPESampler"


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    """Stop a trial whose best value so far is worse than the median of earlier trials at that epoch."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class TrainscopeOptunaSweeperConf:
    _target_: str = "hydra_plugins.trainscope_optuna_sweeper.sweeper.TrainscopeOptunaSweeper"
    _recursive_: bool = False  # sampler and pruner stay configs: jobs rebuild the pruner from them
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = None
    pruner: Any = None
    # "maximize"/"minimize", or one per entry of a list `optimized_metric` (multi-objective); null: as the runs'
    # task says the metric is better (val/acc_best: maximize, val/rmse_best: minimize), else maximize.
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
    # Database storages only: seconds between a running trial's heartbeats; a trial silent for longer than
    # the grace period belonged to a dead worker and is retried once; a lost connection is waited out
    # for reconnect_timeout seconds.
    heartbeat_interval: int = 30
    heartbeat_grace_period: int = 120
    reconnect_timeout: float = 300
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


def _register() -> None:
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="trainscope_optuna", node=TrainscopeOptunaSweeperConf, provider=PROVIDER)
    samplers = {
        "tpe": TPESamplerConf,
        "random": RandomSamplerConf,
        "grid": GridSamplerConf,
        "cmaes": CmaEsSamplerConf,
        "gp": GPSamplerConf,
        "nsga2": NSGAIISamplerConf,
        "nsgaii": NSGAIISamplerConf,  # the official plugin's name
        "qmc": QMCSamplerConf,
        "motpe": MOTPESamplerConf,
    }
    for name, node in samplers.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider=PROVIDER)
    pruners = {
        "none": NopPrunerConf,
        "median": MedianPrunerConf,
        "hyperband": HyperbandPrunerConf,
        "successive_halving": SuccessiveHalvingPrunerConf,
    }
    for name, node in pruners.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider=PROVIDER)


_register()
