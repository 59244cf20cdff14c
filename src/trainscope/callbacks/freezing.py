"""`finetune.freeze` and its schedule: which parameters train, and from when.

Every parameter is in the optimizer from the start; a frozen one has `requires_grad=False`, so it gets no gradient,
and torch's optimizers skip a parameter without one (no step, no weight decay, no state). Unfreezing is then only
`requires_grad=True`: the optimizer picks the parameter up at the next step, its other parameters' state intact.
Which parameters are frozen is a function of the epoch and the step alone, so a resumed run (`resume=`, mid-epoch
too) freezes exactly what the uninterrupted run froze at that point, with nothing to keep in the checkpoint.

This callback owns the model's `requires_grad` flags and, with `finetune.freeze_bn`, the train/eval mode of frozen
BatchNorm layers: the one thing outside the loop that changes the model (documented in docs/fine-tuning.md). It is
also a health check (`health/frozen`): nothing trainable stops the run before its first step (a `finetune.freeze`
that covers every parameter is refused earlier, as a config error), and a frozen parameter that changed anyway (a
callback or the model itself updated it) is reported.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from trainscope.callbacks.health import HealthCheck
from trainscope.config.groups.finetune import FinetuneConfig
from trainscope.core.errors import ConfigError
from trainscope.core.view import TrainerView
from trainscope.models.lora import transposed_layers
from trainscope.models.parts import layer_groups, select_parameters

log = logging.getLogger(__name__)

PARAMETERS_TEXT = "finetune/parameters"


class Freezing(HealthCheck):
    """Freezes `config.freeze` of `model` and unfreezes it as `config` schedules (all at once or gradually)."""

    name = "frozen"

    def __init__(self, config: FinetuneConfig, model: nn.Module) -> None:
        super().__init__()
        self.config = config
        frozen = set(select_parameters(model, config.freeze or (), "finetune.freeze"))
        parameters = dict(model.named_parameters())
        if frozen and frozen == set(parameters) and not self.unfreezes_at_start(config):
            raise ConfigError(
                f"finetune.freeze={','.join(config.freeze or ())} freezes every parameter of {type(model).__name__}, "
                "so nothing would train; freeze fewer (finetune.freeze=backbone leaves the head)"
            )
        # Unfreezing order: layer groups from the output side; every frozen parameter in exactly one group.
        self.groups = [
            [parameters[name] for name in group if name in frozen] for group in reversed(layer_groups(model))
        ]
        self.groups = [group for group in self.groups if group]
        self.batch_norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
        self.lora_transposed = transposed_layers(model)  # for `trainscope-export merged=true`
        self.unfrozen_groups: int | None = None  # how many groups train now; None before the first application
        self.versions: dict[int, int] = {}  # each frozen parameter's version counter when it was frozen

    def state_dict(self) -> dict[str, Any]:
        """Nothing the schedule needs (it follows the epoch and step); what an export of LoRA weights needs."""
        return {"lora_transposed": self.lora_transposed}

    @staticmethod
    def unfreezes_at_start(config: FinetuneConfig) -> bool:
        return config.unfreeze_at_epoch == 0 or config.unfreeze_at_step == 0

    def unfrozen_at(self, epoch: int, step: int) -> int:
        """How many layer groups train after `epoch` epochs and `step` steps."""
        at, now = (
            (self.config.unfreeze_at_epoch, epoch)
            if self.config.unfreeze_at_epoch is not None
            else (self.config.unfreeze_at_step, step)
        )
        if at is None or now < at:
            return 0
        if self.config.unfreeze_every is None:
            return len(self.groups)
        return min(len(self.groups), 1 + (now - at) // self.config.unfreeze_every)

    def apply(self, trainer: TrainerView) -> None:
        """Set the flags for the loop's current epoch and step; log the counts when they changed."""
        count = self.unfrozen_at(trainer.state.epoch, trainer.state.global_step)
        if count != self.unfrozen_groups:
            for index, group in enumerate(self.groups):
                for parameter in group:
                    parameter.requires_grad_(index < count)
            self.versions = {id(p): p._version for group in self.groups[count:] for p in group}
            first = self.unfrozen_groups is None
            self.unfrozen_groups = count
            self.announce(trainer, "start" if first else f"unfrozen {count} of {len(self.groups)} layer groups")
        self.set_batch_norm_modes(trainer.model)

    def set_batch_norm_modes(self, model: nn.Module) -> None:
        """With `freeze_bn`, a BatchNorm whose parameters are all frozen runs in eval mode: its statistics stay."""
        if not self.config.freeze_bn:
            return
        for module in self.batch_norms:
            frozen = not any(parameter.requires_grad for parameter in module.parameters())
            module.train(model.training and not frozen)

    def announce(self, trainer: TrainerView, when: str) -> None:
        """The trainable and frozen counts, total and per top-level module: in the log and TensorBoard's Text tab."""
        model = trainer.model
        rows = [(name or type(model).__name__, *_counts(module)) for name, module in _top_level(model)]
        trainable, total = _counts(model)
        log.info(
            "parameters (%s): %s of %s trainable, %s frozen | %s",
            when,
            f"{trainable:,}",
            f"{total:,}",
            f"{total - trainable:,}",
            "  ".join(f"{name} {done:,}/{count:,}" for name, done, count in rows),
        )
        table = "\n".join(f"| {name} | {done:,} | {count - done:,} |" for name, done, count in rows)
        trainer.tensorboard.writer.add_text(
            PARAMETERS_TEXT,
            f"**{when}**: {trainable:,} of {total:,} parameters trainable\n\n"
            f"| module | trainable | frozen |\n| --- | --- | --- |\n{table}",
            trainer.state.global_step,
        )
        if trainable == 0:  # a model that froze itself, or adapters on nothing: no step could be taken
            self.fail(
                trainer,
                "nothing trains: every parameter is frozen",
                "freeze fewer parameters (finetune.freeze), or check that the model leaves some requires_grad=True",
            )

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.apply(trainer)

    def on_train_epoch_start(self, trainer: TrainerView) -> None:
        self.apply(trainer)  # after the loop's model.train(): frozen BatchNorms go back to eval mode

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        if self.config.unfreeze_at_step is not None:
            self.apply(trainer)

    def check_epoch(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        changed = [
            name
            for name, parameter in trainer.model.named_parameters()
            if id(parameter) in self.versions and parameter._version != self.versions[id(parameter)]
        ]
        if changed:
            self.report(
                trainer,
                f"{len(changed)} frozen parameters changed during training ({', '.join(changed[:3])})",
                "check what updates them (a callback, the model's forward, an optimizer given them directly)",
            )
            self.versions.update({id(p): p._version for p in trainer.model.parameters() if id(p) in self.versions})


def _counts(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters of `module`."""
    parameters = list(module.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def _top_level(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's top-level modules that hold parameters (through a wrapper of a single module, HF's)."""
    children = [(name, child) for name, child in model.named_children() if any(True for _ in child.parameters())]
    if len(children) == 1 and not any(True for _ in model.parameters(recurse=False)):
        prefix, only = children[0]
        return [(f"{prefix}.{name}", child) for name, child in _top_level(only)] or children
    return children or [("", model)]
