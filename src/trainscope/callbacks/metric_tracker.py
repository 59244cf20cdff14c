"""Which value of a metric is better: one rule shared by checkpointing, early stopping and the loop."""

from __future__ import annotations

import math

from trainscope.core.errors import ConfigError


class MetricTracker:
    """Remembers the best value of one metric under a mode ("max" or "min")."""

    def __init__(self, metric: str, mode: str = "max", min_delta: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise ConfigError(f"mode for {metric} must be 'max' or 'min', got {mode!r}")
        self.metric = metric
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best: float | None = None

    def is_better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, metrics: dict[str, float]) -> bool:
        """Take the metric from `metrics`; True when it improved on the best so far."""
        if self.metric not in metrics:
            raise ConfigError(
                f"monitored metric {self.metric!r} is not logged; logged metrics: {', '.join(sorted(metrics))}"
            )
        value = metrics[self.metric]
        if self.is_better(value):
            self.best = value
            return True
        return False
