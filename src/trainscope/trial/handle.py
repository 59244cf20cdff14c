"""A running trial seen from the job that trains it: report intermediate values, ask whether to stop.

The job opens the study from the storage itself, so this works the same whether the trial runs in the
sweeper's process, in a launcher's worker or in another `python app.py -m` sharing the storage. The
pruner lives on the study object of the process that asks `should_prune`, so it is rebuilt here from
the config the sweeper stored in the study's user attributes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from trainscope.trial.attributes import PRUNER_STUDY_ATTR, RUN_DIR_ATTR
from trainscope.trial.channel import TrialAddress
from trainscope.trial.database import DatabaseSettings
from trainscope.trial.storage import open_storage


class Trial:
    """One trial of a study: `report(value, step)`, `should_prune()`, `number`, `pruning_metric`."""

    def __init__(self, address: TrialAddress, optuna_trial: optuna.trial.Trial, pruner_name: str) -> None:
        self.address = address
        self.optuna_trial = optuna_trial
        self.pruner_name = pruner_name

    @property
    def number(self) -> int:
        """The trial's number in its study (0, 1, ...), as the sweeper prints it and run dirs start."""
        return self.address.number

    @property
    def pruning_metric(self) -> str | None:
        """The metric the sweep prunes on (`hydra.sweeper.pruning_metric` or the single optimized one)."""
        return self.address.pruning_metric

    def report(self, value: float, step: int) -> None:
        """Record `value` as the trial's intermediate value at `step` (e.g. epochs completed).

        A NaN or infinite value is not recorded: the pruner would compare it with real values.
        """
        if math.isfinite(value):
            self.optuna_trial.report(float(value), step=int(step))

    def should_prune(self) -> bool:
        """Whether the sweep's pruner stops this trial now (always False with `pruner=none`)."""
        return self.optuna_trial.should_prune()


def build_pruner(config: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    """The pruner a `hydra/sweeper/pruner` option describes; none: NopPruner."""
    if not config:
        return optuna.pruners.NopPruner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return instantiate(dict(config))


def open_trial(address: TrialAddress) -> Trial:
    """Open the trial `address` names in its study, with the study's pruner, and record the job's run dir.

    The sweep that started this job did reach the storage, so an outage here is waited out, not fatal.
    """
    settings = (
        DatabaseSettings()
        if address.reconnect_timeout is None
        else DatabaseSettings(reconnect_timeout=address.reconnect_timeout)
    )
    storage = open_storage(address.storage, settings, heartbeat=False, wait_for_server=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    probe = optuna.load_study(study_name=address.study_name, storage=storage)
    pruner_config = probe.user_attrs.get(PRUNER_STUDY_ATTR)
    study = optuna.load_study(
        study_name=address.study_name,
        storage=storage,
        pruner=build_pruner(pruner_config),
        sampler=optuna.samplers.RandomSampler(),  # never samples here; avoids building a TPE sampler
    )
    trial = optuna.trial.Trial(study, address.trial_id)
    if HydraConfig.initialized():  # findable from the study while it runs, even if its worker dies
        trial.set_user_attr(RUN_DIR_ATTR, HydraConfig.get().runtime.output_dir)
    pruner_name = str((pruner_config or {}).get("_target_", "NopPruner")).rsplit(".", 1)[-1]
    return Trial(address, trial, pruner_name)
