"""Config of `hydra/sweeper=trainscope_optuna` and its `sampler` and `pruner` groups.

Sampler and pruner are config groups, so `hydra/sweeper/sampler=random` replaces the whole node and no
key of the previous option is left behind (the official plugin's `sampler._target_=...` switch left
e.g. `seed` on a sampler that does not take it). The seed is `hydra.sweeper.seed`; every sampler also
takes the official plugin's `sampler.seed`, which wins when set. The sweeper passes the seed plus the
number of trials so far, so resumed and cooperating sweeps do not replay each other's proposals.

The official `hydra-optuna-sweeper` keys are accepted (`max_failure_rate`, `search_space`,
`custom_search_space`, sampler `nsgaii`), so its configs run with `hydra/sweeper: trainscope_optuna`;
`trainscope.sweep.optuna.settings` declares the sweeper's own keys and says how each maps onto ours.

This module only declares dataclasses: Hydra imports every plugin module on each start (even `--help`), and
`OptunaSettings` imports neither optuna nor torch.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from trainscope.sweep.optuna.settings import OptunaSettings

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
class TrainscopeOptunaSweeperConf(OptunaSettings):
    """`hydra/sweeper=trainscope_optuna`: the keys are `OptunaSettings`' (trainscope.sweep.optuna.settings);
    this adds what Hydra needs to build the sweeper and the default sampler and pruner options."""

    _target_: str = "hydra_plugins.trainscope_optuna_sweeper.sweeper.TrainscopeOptunaSweeper"
    _recursive_: bool = False  # sampler and pruner stay configs: jobs rebuild the pruner from them
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "none"}])


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
