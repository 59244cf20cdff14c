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


EPOCH_TAG = "train/epoch"
"""The epoch counter's tag (the epoch history's `epoch`): in the `train` group, not a card group of its own that
TensorBoard's Scalars tab would open on (groups sort by name; `epoch` came first)."""


def _quiet_event_writer_threads(args: threading.ExceptHookArgs) -> None:
    """Let TensorBoard's writer thread fail silently: it only stores its error (a full disk) and dies, and the
    run's next write raises that same error in the main thread, which reports it in one line. Without this,
    Python prints the thread's traceback as well."""
    if not is_event_writer_thread(args.thread):
        _default_thread_excepthook(args)


threading.excepthook = _quiet_event_writer_threads


class _RecordingSummaryWriter(SummaryWriter):
    """A SummaryWriter that also keeps, while asked to, the last value of every scalar it writes (`metrics.csv`).

    Callbacks write scalars through the run's writer (`RunWriter.scalar`) or straight into it
    (`writer.add_scalar`); recording here sees both.
    """

    recorded: dict[str, float] | None = None

    def add_scalar(self, tag: str, scalar_value: Any, *args: Any, **kwargs: Any) -> None:
        super().add_scalar(tag, scalar_value, *args, **kwargs)
        if self.recorded is not None:
            self.recorded[tag] = float(scalar_value)


class RunWriter:
    """Wraps `SummaryWriter` (as `.writer`); flushes on a wall-clock interval so a live TensorBoard sees new points.

    With `enabled=False` (every rank but 0 of a distributed run) it has the same interface and writes nothing, so
    callbacks and the HParams session log the same way on every rank and the run has one event file.
    """

    def __init__(
        self, run_dir: Path, flush_secs: float = 5.0, purge_step: int | None = None, enabled: bool = True
    ) -> None:
        writer_class = _RecordingSummaryWriter if enabled else SilentSummaryWriter
        self.writer = writer_class(log_dir=str(run_dir), flush_secs=flush_secs, purge_step=purge_step)
        self.flush_secs = flush_secs
        self._last_flush = time.monotonic()

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def scalars(self, metrics: Mapping[str, float], step: int) -> None:
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)
        self.maybe_flush()

    def record_scalars(self) -> None:
        """From now on keep every scalar written (its last value per tag), until `recorded_scalars`.

        A writer that writes nothing (`enabled=False`) records nothing either.
        """
        if isinstance(self.writer, _RecordingSummaryWriter):
            self.writer.recorded = {}

    def recorded_scalars(self) -> dict[str, float]:
        """The scalars written since `record_scalars`, by tag; recording stops."""
        if not isinstance(self.writer, _RecordingSummaryWriter):
            return {}
        recorded, self.writer.recorded = self.writer.recorded or {}, None
        return recorded

    def maybe_flush(self) -> None:
        """Flush when `flush_secs` passed: cheap to call often, keeps TensorBoard within seconds of the run."""
        if time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()

    def flush(self) -> None:
        self.writer.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.writer.close()


def per_group_tags(base: str, values: list[Any], names: list[str | None] | None = None) -> dict[str, Any]:
    """`{base/<name>: value}` for optimizer param groups that have names (`optimizer.param_groups`: the first group
    of each name, its halves share the value); else `{base: value}` when every group has the same value (one group,
    or the decayed and undecayed halves of `optimizer.weight_decay_on=matrices`), `{base/group<i>: value, ...}` when
    they differ."""
    if names and any(names):
        tags: dict[str, Any] = {}
        for index, (name, value) in enumerate(zip(names, values, strict=True)):
            tags.setdefault(f"{base}/{name or f'group{index}'}", value)
        return tags
    if len(set(values)) == 1:
        return {base: values[0]}
    return {f"{base}/group{index}": value for index, value in enumerate(values)}
