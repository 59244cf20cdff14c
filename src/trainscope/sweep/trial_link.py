"""The training run's side of an Optuna trial: report each epoch's metric, ask whether to stop.

The sweeper passes `optuna_trial={storage, study_name, trial_id, number, monitor}` to each job. The job
opens the study from that storage itself, so pruning works the same whether the trial runs in the
sweeper's process, in a launcher's worker or in another `python train.py -m` sharing the storage. The
pruner lives on the study object of the process that asks `should_prune`, so it is rebuilt here from the
config the sweeper stored in the study's user attributes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from trainscope.core.errors import ConfigError
from trainscope.sweep.storage import open_storage
from trainscope.sweep.study import PRUNER_STUDY_ATTR


@dataclass
class TrialLink:
    """One running trial of a study, seen from the job that trains it."""

    trial: optuna.trial.Trial
    number: int
    monitor: str | None
    pruner_name: str

    def report(self, value: float, epoch: int) -> None:
        """Record `value` as the trial's intermediate value at `epoch` (1-based epochs completed)."""
        if math.isfinite(value):
            self.trial.report(float(value), step=int(epoch))

    def should_prune(self) -> bool:
        return self.trial.should_prune()


def build_pruner(config: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    """The pruner a `hydra/sweeper/pruner` option describes (`{_target_: ..., kwargs}`); none: NopPruner."""
    if not config:
        return optuna.pruners.NopPruner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return instantiate(dict(config))


def connect_trial(optuna_trial_cfg: DictConfig | Mapping[str, Any] | None) -> TrialLink | None:
    """Open the trial the sweeper assigned to this job; None when the run is not an Optuna trial."""
    if optuna_trial_cfg is None:
        return None
    cfg = OmegaConf.to_container(optuna_trial_cfg) if isinstance(optuna_trial_cfg, DictConfig) else optuna_trial_cfg
    missing = [key for key in ("storage", "study_name", "trial_id") if cfg.get(key) is None]
    if missing:
        raise ConfigError(f"optuna_trial.{missing[0]} is missing; optuna_trial is set by the Optuna sweeper only")
    storage = open_storage(str(cfg["storage"]))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    probe = optuna.load_study(study_name=str(cfg["study_name"]), storage=storage)
    pruner_config = probe.user_attrs.get(PRUNER_STUDY_ATTR)
    study = optuna.load_study(
        study_name=str(cfg["study_name"]),
        storage=storage,
        pruner=build_pruner(pruner_config),
        sampler=optuna.samplers.RandomSampler(),  # never samples here; avoids building a TPE sampler
    )
    trial = optuna.trial.Trial(study, int(cfg["trial_id"]))
    pruner_name = str((pruner_config or {}).get("_target_", "NopPruner")).rsplit(".", 1)[-1]
    return TrialLink(
        trial=trial,
        number=int(cfg.get("number", trial.number)),
        monitor=cfg.get("monitor"),
        pruner_name=pruner_name,
    )
