"""What a sweep records at its root before any run starts, for its runs' HParams sessions.

`declare_experiment` records the swept keys (the runs' short names and the columns shown first) and the metric
columns every run declares (`trainscope.tensorboard.hparams`: each session declares the experiment itself, so
TensorBoard shows the same columns whichever folder and whichever run it reads first). Used by both sweepers
(grid and Optuna).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from trainscope.config.flatten import is_hparam_key
from trainscope.config.overrides import override_value
from trainscope.config.run_names import write_swept_keys
from trainscope.core.run_dir import display_path
from trainscope.sweep.objectives import hparams_metrics
from trainscope.tensorboard.hparams import Domain, write_sweep_metrics


def group_names(config: DictConfig, config_loader: ConfigLoader | None = None) -> list[str]:
    """Names of the config groups: the primary config's choices, plus every top-level group on disk."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    names = set(choices.keys())
    if config_loader is not None:
        names.update(config_loader.list_groups(""))
    return sorted(str(name) for name in names)


def hparam_domains(
    config: DictConfig, domains: Mapping[str, Domain], groups: Iterable[str] | None = None
) -> dict[str, Domain]:
    """The swept keys (with their domains) that runs will report as hyperparameters, in sweep order.

    Keys are override keys (`model`, `optimizer.lr`); `hparams.include`/`exclude` of the sweep's config
    apply, so a column is declared exactly when the runs write a value for it.
    """
    include = list(OmegaConf.select(config, "hparams.include", default=None) or ["*"])
    exclude = list(OmegaConf.select(config, "hparams.exclude", default=None) or [])
    groups = list(groups) if groups is not None else group_names(config)
    return {key: domain for key, domain in domains.items() if is_hparam_key(key, groups, include, exclude)}


def grid_domains(overrides: Sequence[Override]) -> dict[str, Domain]:
    """Discrete domains of a grid's sweep overrides (`a=1,2`, `choice(...)`, `range(...)`, `glob(...)`)."""
    domains: dict[str, Domain] = {}
    for override in overrides:
        if override.is_hydra_override() or override.is_delete() or not override.is_discrete_sweep():
            continue
        domains[override.key_or_group] = [override_value(value) for value in override.sweep_iterator()]
    return domains


def declare_experiment(
    config: DictConfig,
    domains: Mapping[str, Domain],
    metrics: Sequence[str] | None = None,
    groups: Iterable[str] | None = None,
) -> dict[str, Domain]:
    """Record at `hydra.sweep.dir` the swept keys and the metric columns of the sweep's runs; returns the swept
    hyperparameters (the swept keys the runs report as hyperparameters, with their domains).

    `metrics` default to the columns of the runs' task (`trainscope.sweep.objectives.hparams_metrics`). No event
    file is written at the sweep root: it would be a run of its own (`.`) in TensorBoard's run list.
    """
    sweep_dir = Path(config.hydra.sweep.dir)
    write_swept_keys(sweep_dir, domains)
    # The sweep's first line: the folder that shows every run of the sweep side by side, not one run's.
    print(
        f"sweep directory: {display_path(sweep_dir)}  |  watch it live: tensorboard --logdir {display_path(sweep_dir)}"
    )
    write_sweep_metrics(sweep_dir, hparams_metrics(config) if metrics is None else metrics)
    return hparam_domains(config, domains, groups)
