"""What the loop needs from the config, typed, read from the composed config in one place."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

BatchLimit = int | float | None
"""All batches (None), an int count, or a float fraction in (0, 1] (as Lightning's limit_*_batches)."""


@dataclass(frozen=True)
class TrainerSettings:
    """The loop's settings: the `trainer` and `logging` keys it reads, and the metric the plateau schedule watches."""

    max_epochs: int
    log_every_n_steps: int
    precision: str = "32"
    grad_clip: float | None = None
    limit_train_batches: BatchLimit = None
    limit_val_batches: BatchLimit = None
    channels_last: bool = False
    compile: bool | str | None = False
    monitor_metric: str = "val/acc"
    progress_bar: bool = True

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TrainerSettings:
        """The settings of a composed (and validated) run config."""
        trainer = cfg.trainer
        return cls(
            max_epochs=int(trainer.max_epochs),
            log_every_n_steps=int(cfg.logging.log_every_n_steps),
            precision=str(trainer.precision),
            grad_clip=None if trainer.grad_clip is None else float(trainer.grad_clip),
            limit_train_batches=trainer.limit_train_batches,
            limit_val_batches=trainer.limit_val_batches,
            channels_last=bool(trainer.get("channels_last", False)),
            compile=trainer.get("compile", False),
            monitor_metric=str(cfg.monitor.metric),
            progress_bar=bool(cfg.logging.progress_bar),
        )
