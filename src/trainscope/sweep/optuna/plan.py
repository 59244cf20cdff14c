"""What an Optuna sweep will do, checked before anything opens: objectives, search space, study, budget.

`SweepPlan.build` turns the sweeper's settings, the sweep's config and its command-line arguments into one
checked, immutable plan, raising a one-line ConfigError for anything wrong (a direction per metric, a search
space entry, a custom search space function, a grid sampler over an interval). Every process working on the
study builds the same plan: the sweep itself and each of its workers. Opening the study is the next step
(`trainscope.sweep.optuna.session`), so no code ever holds a plan whose study may or may not be open.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.samplers import BaseSampler
from optuna.trial import Trial

from trainscope.core.errors import ConfigError, first_line
from trainscope.sweep.optuna.search_space import SearchSpace, grid_search_space, grid_size, parse_search_space
from trainscope.sweep.optuna.settings import OptunaSettings
from trainscope.trial.storage import resolve_storage

ConfigureTrial = Callable[[DictConfig, Trial], None]
"""A `custom_search_space` function: `(cfg, optuna_trial) -> None`, suggesting more parameters."""


def deadline_after(timeout: float | None) -> float | None:
    """The wall-clock time after which no new trial starts (`hydra.sweeper.timeout` from now); None: never."""
    return None if timeout is None else time.time() + timeout


@dataclass(frozen=True)
class SweepPlan:
    """The checked plan of one sweep; `build` makes it."""

    settings: OptunaSettings
    config: DictConfig  # the sweep's config (its `hydra.sweep.dir` as the sweep resolved it)
    arguments: list[str]  # the sweep's command-line overrides (search space entries and fixed values)
    sweep_dir: Path
    metric_names: list[str]  # the objectives, in order
    directions: list[str]  # one per objective
    space: SearchSpace
    configure_trial: ConfigureTrial | None
    grid: dict[str, list[Any]] | None  # GridSampler's search space, or None for other samplers
    n_trials: int  # `hydra.sweeper.n_trials`, capped at the grid's size
    study_name: str
    storage: str  # absolute journal path or RDB URL: every job reaches it from any working directory
    pruning_metric: str | None
    deadline: float | None  # no new trial starts after it (`deadline_after`)

    @classmethod
    def build(
        cls, settings: OptunaSettings, config: DictConfig, arguments: Sequence[str], *, deadline: float | None
    ) -> SweepPlan:
        """The plan, or a one-line ConfigError naming what is wrong; `deadline` is the sweep's (`deadline_after`)."""
        directions = settings.directions
        metric_names = _metric_names(config, max(len(directions), 1))
        if not directions:  # hydra.sweeper.direction unset: as the runs' task says each metric is better
            from trainscope.sweep.objectives import default_directions  # builds the task: imports torch

            directions = default_directions(config, metric_names)
        if len(directions) == 1 and len(metric_names) > 1:
            directions *= len(metric_names)
        if len(directions) != len(metric_names):
            raise ConfigError(
                f"hydra.sweeper.direction has {len(directions)} entries but optimized_metric has "
                f"{len(metric_names)} ({metric_names}); give one direction per metric"
            )
        space = parse_search_space(settings.params or {}, arguments, settings.search_space or {})
        configure_trial = _custom_search_space(settings.custom_search_space)
        if settings.pruning and len(metric_names) > 1:
            raise ConfigError(
                f"hydra/sweeper/pruner needs a single optimized_metric, got {metric_names}; "
                "use hydra/sweeper/pruner=none for multi-objective sweeps"
            )
        grid = grid_search_space(space.distributions) if settings.is_grid else None
        n_trials = settings.n_trials if grid is None else min(settings.n_trials, grid_size(grid))
        choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        return cls(
            settings=settings,
            config=config,
            arguments=list(arguments),
            sweep_dir=sweep_dir,
            metric_names=metric_names,
            directions=directions,
            space=space,
            configure_trial=configure_trial,
            grid=grid,
            n_trials=n_trials,
            study_name=str(
                settings.study_name or choices.get("hparams_search") or OmegaConf.select(config, "hydra.job.name")
            ),
            storage=resolve_storage(settings.storage, sweep_dir),
            pruning_metric=settings.pruning_metric or (metric_names[0] if len(metric_names) == 1 else None),
            deadline=deadline,
        )

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def make_sampler(self, trials_so_far: int) -> BaseSampler:
        """The configured sampler, seeded with seed + trials so far (see `claim_trial`).

        The grid sampler keeps the plain seed: it maps trial numbers to points of a grid shuffled by it.
        """
        seed = self.settings.sampler_seed
        kwargs: dict[str, Any] = {"seed": None if seed is None else seed + trials_so_far}
        if self.grid is not None:
            kwargs.update(search_space=self.grid, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return instantiate(self.settings.sampler_config, **kwargs)


def _metric_names(config: DictConfig, directions: int) -> list[str]:
    """The app's `optimized_metric` (trainscope's convention), else `objective` / `objective_<i>`."""
    named = OmegaConf.select(config, "optimized_metric", default=None)
    if named is not None:
        return [str(m) for m in _as_list(named)]
    if directions == 1:
        return ["objective"]
    return [f"objective_{index}" for index in range(directions)]


def _as_list(value: Any) -> list[Any]:
    if OmegaConf.is_list(value) or isinstance(value, list | tuple):
        return list(value)
    return [value]


def _custom_search_space(path: str | None) -> ConfigureTrial | None:
    """The `custom_search_space` function `(cfg, optuna_trial) -> None`, or None."""
    if not path:
        return None
    try:
        return get_method(path)
    except Exception as error:  # noqa: BLE001 - an unimportable module or a missing function
        raise ConfigError(f"hydra.sweeper.custom_search_space={path}: {first_line(error)}") from error
