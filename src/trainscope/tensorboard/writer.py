"""The run's one TensorBoard writer: every scalar, image and HParams record of a run goes through it.

Events land directly in the run directory (one run directory = one TensorBoard run), so curves and
the HParams session of a run stay together.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter


class RunWriter:
    """Wraps `SummaryWriter` (as `.writer`); flushes on a wall-clock interval so a live TensorBoard sees new points."""

    def __init__(self, run_dir: Path, flush_secs: float = 5.0, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(log_dir=str(run_dir), flush_secs=flush_secs, purge_step=purge_step)
        self.flush_secs = flush_secs
        self._last_flush = time.monotonic()

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def scalars(self, metrics: Mapping[str, float], step: int) -> None:
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """Flush when `flush_secs` passed: cheap to call often, keeps TensorBoard within seconds of the run."""
        if time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()

    def flush(self) -> None:
        self.writer.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.writer.close()


def per_group_tags(base: str, values: list[Any]) -> dict[str, Any]:
    """`{base: value}` for one optimizer param group, `{base/group<i>: value, ...}` for several."""
    if len(values) == 1:
        return {base: values[0]}
    return {f"{base}/group{index}": value for index, value in enumerate(values)}
