"""Ctrl-C and SIGTERM: stop after the current step, keep a checkpoint, say how to resume.

The first SIGINT or SIGTERM only records the signal; the loop sees it at its next hook (after the
current optimizer step), stops through `trainer.request_stop(..., status=RunStatus.INTERRUPTED)`, and the run
writes a checkpoint, `metrics.json` and TensorBoard before exiting with 128 + the signal number (130 for
Ctrl-C, 143 for SIGTERM). A second signal exits at once, without a checkpoint.

The handler itself does no logging and no buffered I/O: a signal can arrive while the main thread is
inside a write to stdout/stderr (the progress bar writes constantly), and re-entering that stream
would raise. It writes its one acknowledgement line with `os.write` and leaves the rest to the hooks.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from trainscope.core.callback import Callback
from trainscope.core.interruption import exit_code_for
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(Callback):
    """Turns the first SIGINT/SIGTERM into an "interrupted" stop after the current step.

    `install()` replaces the process's handlers (main thread only; elsewhere signals keep their
    default behaviour), `restore()` puts the previous ones back.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopOnSignal:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not in the main thread: SIGINT/SIGTERM keep their default handlers")
            return self
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal_number is not None:
            os.write(2, f"\n{name} again: exiting now, without a checkpoint\n".encode())
            os._exit(exit_code_for(signum))
        self.signal_number = signum
        os.write(
            2,
            f"\n{name}: stopping after the current step and saving a checkpoint "
            "(send it again to exit at once)\n".encode(),
        )

    def _stop_if_signalled(self, trainer: TrainerView) -> None:
        if self.signal_number is not None and not trainer.stopping:
            name = signal.Signals(self.signal_number).name
            trainer.request_stop(f"interrupted by {name}", status=RunStatus.INTERRUPTED)

    def on_fit_start(self, trainer: TrainerView) -> None:
        self._stop_if_signalled(trainer)

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        self._stop_if_signalled(trainer)

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        self._stop_if_signalled(trainer)  # a signal during validation: the epoch completes first
