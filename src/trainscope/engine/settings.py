"""What the loop needs from the config, typed, read from the composed config in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import DictConfig

from trainscope.config.groups.logging import LoggingConfig
from trainscope.config.groups.trainer import TrainerConfig


@dataclass(frozen=True)
class TrainerSettings:
    """The loop's settings: the typed `trainer` and `logging` groups, and the metric the plateau schedule watches."""

    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    monitor_metric: str = field(kw_only=True)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TrainerSettings:
        """The settings of a composed (and validated) run config."""
        return cls(
            TrainerConfig.from_config(cfg.trainer),
            LoggingConfig.from_config(cfg.logging),
            monitor_metric=str(cfg.monitor.metric),
        )
