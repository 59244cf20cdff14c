"""`build_task`: the run's task from the `task` config group (`conf/task/<name>.yaml`), in one line on a mistake."""

from __future__ import annotations

import importlib.util

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from trainscope.core.errors import ConfigError, TrainscopeError, first_line
from trainscope.tasks.base import Task
from trainscope.tasks.classification import Classification


def build_task(cfg: DictConfig) -> Task:
    """The task `cfg.task` names; classification for a config without one (a run made before tasks existed)."""
    task_cfg = cfg.get("task") if isinstance(cfg, DictConfig) else None
    if task_cfg is None:
        return Classification()
    target = task_cfg.get("_target_")
    try:
        task = instantiate(task_cfg, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        if isinstance(cause, TrainscopeError):  # our own one-line message, not Hydra's wrapper
            raise cause from None
        hint = ""
        if "torchmetrics" in str(error) and importlib.util.find_spec("torchmetrics") is None:
            hint = "; install torchmetrics: pip install 'trainscope[metrics]'"
        raise ConfigError(f"task={_name(cfg)} cannot be built: {first_line(cause)}{hint}") from None
    except TrainscopeError:
        raise
    except Exception as error:  # an interpolation or a missing value (`???`) Hydra reports itself
        raise ConfigError(f"task={_name(cfg)} cannot be built: {first_line(error)}") from None
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={target} returned a {type(task).__name__}, not a trainscope.tasks.Task")
    return task


def _name(cfg: DictConfig) -> str:
    choices = OmegaConf.select(cfg, "hydra.runtime.choices.task", default=None)
    return str(choices) if choices else str(OmegaConf.select(cfg, "task._target_", default="?"))
