"""The run's one TensorBoard writer: every scalar, image and HParams record of a run goes through it.

Events land directly in the run directory (one run directory = one TensorBoard run), so curves and
the HParams session of a run stay together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from trainscope.adapters.tensorboard_private import SilentSummaryWriter, is_event_writer_thread

_default_thread_excepthook = threading.excepthook


def _quiet_event_writer_threads(args: threading.ExceptHookArgs) -> None:
    """Let TensorBoard's writer thread fail silently: it only stores its error (a full disk) and dies, and the
    run's next write raises that same error in the main thread, which reports it in one line. Without this,
    Python prints the thread's traceback as well."""
    if not is_event_writer_thread(args.thread):
        _default_thread_excepthook(args)


threading.excepthook = _quiet_event_writer_threads


class RunWriter:
    """Wraps `SummaryWriter` (as `.writer`); flushes on a wall-clock interval so a live TensorBoard sees new points.

    With `enabled=False` (every rank but 0 of a distributed run) it has the same interface and writes nothing, so
    callbacks and the HParams session log the same way on every rank and the run has one event file.
    """

    def __init__(
        self, run_dir: Path, flush_secs: float = 5.0, purge_step: int | None = None, enabled: bool = True
    ) -> None:
        writer_class = SummaryWriter if enabled else SilentSummaryWriter
        self.writer = writer_class(log_dir=str(run_dir), flush_secs=flush_secs, purge_step=purge_step)
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
