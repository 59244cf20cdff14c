"""Build the run's parts from the composed config with `hydra.utils.instantiate`."""

from __future__ import annotations

import inspect
import logging
import random
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from trainscope.config.groups.optimizer import OptimizerConfig, SchedulerConfig
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.core.errors import ConfigError, TrainscopeError, first_line
from trainscope.data.text import TextData, check_model_fits_text
from trainscope.distributed.process_group import device_for, process_group
from trainscope.engine.param_groups import optimizer_groups
from trainscope.engine.steps import epochs_to_train, steps_per_epoch, total_steps
from trainscope.models.build import build_model
from trainscope.models.init_from import load_initial_weights
from trainscope.models.lora import with_adapters
from trainscope.tasks import Task, build_task

log = logging.getLogger(__name__)


def select_device(requested: str) -> torch.device:
    """`auto` takes CUDA when present; asking for CUDA on a machine without it is a config error.

    In a distributed run `auto` and `cuda` mean this process's own GPU, `cuda:<local_rank>`.
    """
    requested = device_for(requested, process_group())
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={requested} but CUDA is not available; use trainer.device=auto or cpu")
    return device


def seed_everything(seed: int, deterministic: bool, cudnn_benchmark: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = cudnn_benchmark and not deterministic
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def build_data_and_model(cfg: DictConfig, initial_weights: bool = False) -> tuple[torch.device, Any, nn.Module, Task]:
    """The seeded device, data module, model and task of `cfg`: one recipe for training and `eval.py`.

    `initial_weights`: load `model.init_from` (a new run does; a resumed run and `eval.py` load their own checkpoint).

    Every rank seeds alike, so all build the same model (DDP also broadcasts rank 0's weights) and draw the same
    global shuffle, of which each reads its own shard. The task is built first (the data delivers the targets it
    needs), bound to the data, and the model's outputs on the first training batch are checked against it: a
    task that does not fit the data or the model is one line before anything is written.
    """
    group = process_group()
    trainer = TrainerConfig.from_config(cfg.trainer)
    device = select_device(trainer.device)
    seed_everything(trainer.seed, trainer.deterministic, trainer.cudnn_benchmark)
    task = build_task(cfg)
    data = instantiate(
        cfg.data,
        device=device,
        seed=trainer.seed,
        rank=group.rank,
        world_size=group.world_size,
        targets=task.targets,
        _convert_="all",
    )
    with torch.random.fork_rng(devices=[]):  # reading targets may start a DataLoader, which draws a seed
        task.bind(data)
    model = build_model(
        cfg.model,
        data.input_shape,
        task.output_size,
        # text data sizes a language model: its vocabulary and context (null in conf/model/{gpt,hf}.yaml)
        vocab_size=getattr(data, "vocab_size", None),
        block_size=getattr(data, "block_size", None),
    )
    if initial_weights and cfg.model.get("init_from"):
        load_initial_weights(model, str(cfg.model.init_from))
    model = with_adapters(model, cfg.get("finetune")).to(device)  # after init_from: adapters on pretrained weights
    if isinstance(data, TextData):
        check_model_fits_text(
            int(getattr(model, "vocab_size", data.vocab_size)), getattr(model, "block_size", None), data
        )
    if trainer.channels_last and data.image_inputs:
        model = model.to(memory_format=torch.channels_last)  # 4-D weights only; the trainer converts inputs
    check_first_batch(task, model, data)
    return device, data, model, task


MODEL_RETURNS = "model returns"
"""How each task's shape check starts its message (`tasks/`), before the model's class is named in it."""


@torch.no_grad()
def check_first_batch(task: Task, model: nn.Module, data: Any) -> None:
    """Run the model on the first training batch and let the task refuse outputs that cannot fit the targets.

    In eval mode (batch norm statistics stay untouched) and with the RNG state put back, so the run trains
    exactly as without the check.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            batch = next(iter(data.train.iter_from(0)), None)
            if batch is None:
                return
            inputs, targets = task.split_batch(batch)
            named = f"model ({type(model).__module__}.{type(model).__qualname__})"  # the user's class, by name
            try:
                outputs = task.forward(model, inputs)
            except TrainscopeError:
                raise
            except Exception as error:  # the user's model: one line naming the batch it got, not a traceback
                raise ConfigError(
                    f"the {named} failed on the first training batch ({_describe(inputs)}): "
                    f"{type(error).__name__}: {first_line(error)}"
                ) from None
            try:
                task.check_batch(outputs, targets)
            except ConfigError as error:  # the task's shape check says "model returns [B, 3], ... needs [B, 4]"
                message = str(error)
                if not message.startswith(MODEL_RETURNS):
                    raise
                raise ConfigError(f"{named} returns{message.removeprefix(MODEL_RETURNS)}") from None
    finally:
        model.train(was_training)


def _describe(inputs: Any) -> str:
    if isinstance(inputs, torch.Tensor):
        return f"inputs {list(inputs.shape)} {str(inputs.dtype).removeprefix('torch.')}"
    if isinstance(inputs, dict):
        described = (f"{key}={_describe(value).removeprefix('inputs ')}" for key, value in inputs.items())
        return "inputs " + ", ".join(described)
    return f"inputs of type {type(inputs).__name__}"


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameters, in the groups of `optimizer.param_groups` and
    `optimizer.layer_decay` (`trainscope.engine.param_groups`), weight decay applied by `optimizer.weight_decay_on`
    (`trainscope.engine.weight_decay`: `all`, or `matrices` only)."""
    optimizer_cfg: dict[str, Any] = OmegaConf.to_container(cfg.optimizer, resolve=True)  # type: ignore[assignment]
    # trainscope's own keys, not the optimizer's
    weight_decay_on = optimizer_cfg.pop("weight_decay_on", OptimizerConfig.weight_decay_on)
    groups = optimizer_groups(
        model,
        lr=optimizer_cfg.get("lr"),
        weight_decay=float(optimizer_cfg.get("weight_decay", 0.0)),
        weight_decay_on=weight_decay_on,
        groups=optimizer_cfg.pop("param_groups", None),
        layer_decay=optimizer_cfg.pop("layer_decay", None),
    )
    return instantiate(optimizer_cfg)(groups)


def build_scheduler(cfg: DictConfig, optimizer: torch.optim.Optimizer, source_length: int) -> tuple[Any, str]:
    """The lr scheduler and when it steps ("epoch" or "step"); (None, "epoch") for `scheduler=none`.

    Schedules that need the run's length (OneCycleLR's total_steps, steps_per_epoch, epochs) get it in optimizer
    steps from the training source's `source_length` batches and the trainer config (`trainscope.engine.steps`),
    so their YAML never repeats those numbers.
    """
    scheduler_cfg = OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else {}
    if not scheduler_cfg:
        return None, "epoch"
    interval = scheduler_cfg.pop("interval", SchedulerConfig.interval)  # checked by trainscope.config.schema
    factory = instantiate(scheduler_cfg)
    trainer = TrainerConfig.from_config(cfg.trainer)
    run_length = {
        "total_steps": total_steps(trainer, source_length),
        "steps_per_epoch": steps_per_epoch(trainer, source_length),
        "epochs": epochs_to_train(trainer, source_length),
    }
    accepted = inspect.signature(factory.func).parameters
    extra = {key: value for key, value in run_length.items() if key in accepted and key not in factory.keywords}
    if "total_steps" in extra:  # OneCycleLR takes total_steps or (epochs, steps_per_epoch), not both
        extra = {"total_steps": extra["total_steps"]}
    return factory(optimizer, **extra), interval


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
