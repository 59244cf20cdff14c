"""`build_task`: the run's task from the `task` config group (`conf/task/<name>.yaml`), in one line on a mistake."""

from __future__ import annotations

import importlib.util

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

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
    except MissingMandatoryValue as error:
        key = (
            f"task.{error.full_key}"
            if error.full_key and not str(error.full_key).startswith("task")
            else error.full_key
        )
        raise ConfigError(f"task={_name(cfg)} needs {key}: set it on the command line ({key}=...)") from None
    except TrainscopeError:
        raise
    except Exception as error:  # an interpolation Hydra could not resolve
        raise ConfigError(f"task={_name(cfg)} cannot be built: {first_line(error)}") from None
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={target} returned a {type(task).__name__}, not a trainscope.tasks.Task")
    return task


def _name(cfg: DictConfig) -> str:
    """The task option as the user chose it (`custom`), else its `_target_`."""
    chosen = OmegaConf.select(cfg, "hydra.runtime.choices.task", default=None)
    if chosen is None and HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get("task")
    return str(chosen) if chosen else str(OmegaConf.select(cfg, "task._target_", default="?"))
