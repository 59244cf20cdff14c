"""What a sweep of trainscope runs watches follows the runs' task: the HParams columns and the directions.

A regression sweep declares `val/r2`, `val/rmse` (not accuracy) and minimizes `val/rmse_best` without being told;
a config without a `task` (an app that is not trainscope's `train.py`) keeps the classification columns and
`maximize`, as before tasks existed.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from trainscope.tasks import Task, build_task
from trainscope.tensorboard.hparams import DEFAULT_METRICS, metric_columns

DIRECTION_OF_MODE = {"max": "maximize", "min": "minimize"}


def _task(config: DictConfig) -> Task | None:
    if OmegaConf.select(config, "task._target_", default=None) is None:
        return None
    return build_task(config)


def hparams_metrics(config: DictConfig) -> list[str]:
    """The scalar tags a sweep's HParams table shows for the runs `config` describes, in column order."""
    task = _task(config)
    if task is None:
        return list(DEFAULT_METRICS)
    return metric_columns(task.hparams_metrics())


def default_directions(config: DictConfig, metric_names: Sequence[str]) -> list[str]:
    """`maximize`/`minimize` for each optimized metric, as the task says its metric is better; `maximize` for a
    metric the task does not know (set `hydra.sweeper.direction` for those)."""
    task = _task(config)
    modes = [task.mode(name) if task is not None else None for name in metric_names]
    return [DIRECTION_OF_MODE.get(mode or "max", "maximize") for mode in modes]
