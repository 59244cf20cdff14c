"""Text and graph entries written once at the start: the resolved config, the model summary, the graph."""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView

log = logging.getLogger(__name__)

MAX_SUMMARY_ROWS = 60


def config_markdown(cfg: DictConfig) -> str:
    """The resolved config as YAML in a code block (unresolved if an interpolation cannot be resolved here)."""
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:  # e.g. ${hydra:...} outside a Hydra run: show the config as written
        text = OmegaConf.to_yaml(cfg)
    return f"```yaml\n{text}```"


def model_summary_markdown(model: nn.Module) -> str:
    """Parameter counts per layer as a Markdown table, with the totals first."""
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    lines = [
        f"**{type(model).__name__}**: {total:,} parameters ({trainable:,} trainable)",
        "",
        "| layer | type | parameters |",
        "| --- | --- | ---: |",
    ]
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if name and any(True for _ in module.parameters(recurse=False))
    ]
    for name, module in layers[:MAX_SUMMARY_ROWS]:
        count = sum(parameter.numel() for parameter in module.parameters(recurse=False))
        lines.append(f"| {name} | {type(module).__name__} | {count:,} |")
    if len(layers) > MAX_SUMMARY_ROWS:
        lines.append(f"| ... {len(layers) - MAX_SUMMARY_ROWS} more | | |")
    return "\n".join(lines)


class RunText(Callback):
    """`config/resolved` and `model/summary` text entries at the start of a run."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def on_fit_start(self, trainer: TrainerView) -> None:
        if trainer.state.global_step > 0:
            return  # a resumed run already wrote them
        writer = trainer.tensorboard.writer
        writer.add_text("config/resolved", config_markdown(self.cfg), 0)
        writer.add_text("model/summary", model_summary_markdown(trainer.model), 0)


class ModelGraph(Callback):
    """The model's graph (`add_graph`) in TensorBoard's Graphs tab, traced with one validation batch (a training
    batch when there is no validation split)."""

    def on_fit_start(self, trainer: TrainerView) -> None:
        if trainer.state.global_step > 0:
            return
        with torch.random.fork_rng(devices=[]):  # a DataLoader draws its base seed: keep the run's RNG as is
            batch = next(iter(trainer.data.val if len(trainer.data.val) else trainer.data.train))
        inputs, _ = trainer.task.split_batch(batch)
        was_training = trainer.model.training
        trainer.model.eval()
        try:
            if isinstance(inputs, dict):
                raise TypeError("the model takes a dict batch as keywords, which add_graph cannot trace")
            trainer.tensorboard.writer.add_graph(trainer.model, inputs[:1])
        except Exception as error:  # tracing fails for some models; the graph is optional
            log.warning("could not write the model graph (%s); set logging.graph=false", error)
        finally:
            trainer.model.train(was_training)
