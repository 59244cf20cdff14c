"""Ctrl-C and SIGTERM: stop after the current step, keep a checkpoint, say how to resume.

The first SIGINT or SIGTERM only records the signal; the loop sees it at its next hook (after the
current optimizer step), stops through `trainer.request_stop(..., status=RunStatus.INTERRUPTED)`, and the run
writes a checkpoint, `metrics.json` and TensorBoard before exiting with 128 + the signal number (130 for
Ctrl-C, 143 for SIGTERM). A second signal exits at once, without a checkpoint.

The handler itself does no logging and no buffered I/O: a signal can arrive while the main thread is
inside a write to stdout/stderr (the progress bar writes constantly), and re-entering that stream
would raise. It writes its one acknowledgement line with `os.write` and leaves the rest to the hooks.

`train.py` installs it as soon as the run's directory exists, so a signal during start-up (building the data
and the model) is seen too: the run stops before its first step, with a step-0 checkpoint (resumable) and
`interrupted` in metrics.json. During the test phase there is no step to finish: a signal cuts it at once
(`cutting_at_once`), the run is recorded `interrupted` and `resume=` runs the test phase again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from trainscope.core.callback import Callback
from trainscope.core.interruption import exit_code_for
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class PhaseCut(BaseException):
    """A signal during a phase that is cut at once (`StopOnSignal.cutting_at_once`); a BaseException, as
    KeyboardInterrupt is, so no `except Exception` of the code it interrupts swallows it."""

    def __init__(self, signal_number: int) -> None:
        self.signal_number = signal_number
        super().__init__(signal.Signals(signal_number).name)


class StopOnSignal(Callback):
    """Turns the first SIGINT/SIGTERM into an "interrupted" stop after the current step.

    `install()` replaces the process's handlers (main thread only; elsewhere signals keep their
    default behaviour), `restore()` puts the previous ones back.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}
        self._cut_at_once = False  # the test phase: nothing is left to save, so a signal ends it at once

    @contextlib.contextmanager
    def cutting_at_once(self) -> Iterator[None]:
        """Within this block a first signal (or one that came before it) raises `PhaseCut` at once.

        For the test phase: training is over and its last checkpoint written, so there is no step to finish
        and nothing to save; a cluster's SIGTERM must not wait for a long test set.
        """
        if self.signal_number is not None:
            raise PhaseCut(self.signal_number)
        self._cut_at_once = True
        try:
            yield
        finally:
            self._cut_at_once = False

    def install(self) -> StopOnSignal:
        if self._previous:
            return self  # installed at the start of the run already (`trainscope.cli.train`)
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
        if self._cut_at_once:
            self._cut_at_once = False
            raise PhaseCut(signum)
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
        # A signal since the run started (installed by the entrypoint, before the data and model were built):
        # the run stops before its first step, with a checkpoint to resume from.
        if self.signal_number is not None and not trainer.stopping:
            name = signal.Signals(self.signal_number).name
            trainer.request_stop(f"interrupted by {name} during start-up", status=RunStatus.INTERRUPTED)

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        self._stop_if_signalled(trainer)

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        self._stop_if_signalled(trainer)  # a signal during validation: the epoch completes first
