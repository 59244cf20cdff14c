"""Ctrl-C and SIGTERM in an Optuna sweep: stop after the current training step, save, record, exit 130/143.

The sweep's own trial loop and each worker stop their work on the first signal (`stopping_on_signals`); a sweep
waiting for its workers passes the signal on to them instead (`forwarding_signals`). Either way the sweep then
raises `SweepInterrupted`, which the sweeper turns into the exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from trainscope.sweep.optuna.messages import PREFIX

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def on_stop_signals(action: Callable[[int], None]) -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM call `action(signum)`; yields the signals seen so far.

    Off the main thread signals cannot be handled: nothing changes there.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        action(signum)

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        yield seen
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class Stop:
    """Which signal stopped the work inside `stopping_on_signals`, if one did."""

    signal_number: int | None = None


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[Stop]:
    """SIGINT and SIGTERM stop the work inside, whatever it is doing; the signal is recorded, not raised.

    A trial that is training replaces these handlers with its own (stop after the step, checkpoint); a
    signal anywhere else (claiming, composing, building the model) unwinds the trial, which the runner
    records as interrupted and retries once. The recorded signal is the one the training run saw, else the
    one caught here.
    """
    stop = Stop()
    with on_stop_signals(_raise_keyboard_interrupt) as seen:
        try:
            yield stop
        except KeyboardInterrupt as error:
            run_signal = getattr(error.__cause__, "signal_number", None)  # a RunInterrupted behind it
            stop.signal_number = int(run_signal or (seen[-1] if seen else signal.SIGINT))


def _raise_keyboard_interrupt(signum: int) -> None:
    raise KeyboardInterrupt


class SweepInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped the sweep after every running trial was saved and recorded."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


def forwarding_signals(forward: Callable[[int], None]) -> contextlib.AbstractContextManager[list[int]]:
    """While the sweep waits for its workers, pass SIGINT/SIGTERM on to them (`forward(signum)`) once each.

    The workers then stop after their current training step, save and record their trials, and return;
    the sweep exits with 128 + the signal number. A second signal is passed on again (workers exit at once).
    """

    def announce_and_forward(signum: int) -> None:
        name = signal.Signals(signum).name
        os.write(2, f"\n{PREFIX} {name}: stopping every worker after its current step\n".encode())
        forward(signum)

    return on_stop_signals(announce_and_forward)
