"""Trials in parallel: `n_jobs` workers, each pulling trials from the study until it is done.

A Hydra launcher runs a fixed batch of jobs and returns when the whole batch is done, so launching one
trial per job would idle every worker until the slowest trial of its batch ends. Instead the sweeper
launches `n_jobs` long-lived *worker jobs* in one batch (Optuna's own recipe for SLURM job arrays), and
each runs trial after trial against the study's storage (`OptunaSweep.run_trials`) until the study has
`n_trials`: a worker whose trial ended asks for the next one at once.

The worker job is a picklable task function, `TrialWorker`, shipped by the launcher like any Hydra task
(joblib: to local processes, submitit: to local processes or SLURM jobs). Inside it every trial is one
ordinary Hydra job of the app (composed from the sweep's config, run with `run_job`), so the trial
channel (`hydra.job.env_set`), run directories and job logging are those of the one-process sweep.

Through a launcher: `trainscope.sweep.optuna.workers.launcher_jobs`. With Hydra's default `basic` launcher, which runs
jobs one after another in the sweep's own process, the sweeper starts the workers as local processes
itself (`trainscope.sweep.optuna.workers.local`), fed the pickled worker, so it never depends on how the sweep
itself was started. This module is the worker itself, and the signal handling both paths share.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

from trainscope.sweep.optuna.settings import OptunaSettings
from trainscope.sweep.optuna.study import process_identity

WORKER_DIR_PREFIX = "optuna_worker_"
WORKER_FILE = "worker.json"
"""In each worker's directory: the worker's host and pid (`process_identity`), so the sweep can pass a Ctrl-C or
SIGTERM on."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def worker_dir(sweep_dir: Path, index: int) -> Path:
    return sweep_dir / f"{WORKER_DIR_PREFIX}{index}"


@dataclass(frozen=True)
class WorkerReport:
    """What a worker job returns: whether a signal stopped it (its running trial was then saved and recorded)."""

    signal_number: int | None = None


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


@dataclass
class TrialWorker:
    """The task function of a worker job: run trials of the study until it needs no more.

    Carries what a worker in another process needs: the sweep's settings and config (sweep directory
    made absolute), the search space arguments, the app's task function and Hydra context, and Hydra's
    global state (config store, plugins) for processes the sweeper starts itself.
    """

    settings: OptunaSettings
    config: DictConfig
    arguments: list[str]
    hydra_context: HydraContext
    task_function: TaskFunction
    deadline: float | None
    singleton_state: dict[Any, Any]

    def __call__(self, cfg: DictConfig) -> WorkerReport:
        """Run as a launcher's job: the job number is the worker's index, its output dir the worker dir."""
        index = int(HydraConfig.get().job.num)
        return self.run(index, Path(HydraConfig.get().runtime.output_dir))

    def run(self, index: int, directory: Path) -> WorkerReport:
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        from trainscope.sweep.guarded_launcher import GuardedLauncher
        from trainscope.sweep.optuna.session import OptunaSweep

        directory.mkdir(parents=True, exist_ok=True)
        (directory / WORKER_FILE).write_text(json.dumps(process_identity()))
        basic = BasicLauncher()  # each trial: one Hydra job of the app, in this process
        basic.setup(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        launcher = GuardedLauncher(basic, self.hydra_context.config_loader, self.config)  # never into another run
        sweep = OptunaSweep(self.settings, self.config, self.arguments)
        sweep.deadline = self.deadline
        old_cwd = os.getcwd()
        with stopping_on_signals() as stop:
            try:
                os.chdir(str(self.config.hydra.runtime.cwd))  # trials see the sweep's working directory
                sweep.open()
                sweep.run_trials(launcher)
            finally:
                os.chdir(old_cwd)
        return WorkerReport(stop.signal_number)


def make_worker(sweep: Any, hydra_context: HydraContext, task_function: TaskFunction) -> TrialWorker:
    """The worker for `sweep` (an `OptunaSweep` that has opened its study), with its sweep dir pinned.

    The sweep dir is an interpolation that creates a fresh directory when resolved anew (`unique_dir`),
    and a worker job may run in another working directory: every worker and trial gets the absolute path.
    """
    config = copy.deepcopy(sweep.config)
    with read_write(config), open_dict(config):
        config.hydra.sweep.dir = str(sweep.sweep_dir)
    return TrialWorker(
        settings=sweep.settings,
        config=config,
        arguments=list(sweep.arguments),
        hydra_context=hydra_context,
        task_function=task_function,
        deadline=sweep.deadline,
        singleton_state=Singleton.get_state(),
    )


def forwarding_signals(forward: Callable[[int], None]) -> contextlib.AbstractContextManager[list[int]]:
    """While the sweep waits for its workers, pass SIGINT/SIGTERM on to them (`forward(signum)`) once each.

    The workers then stop after their current training step, save and record their trials, and return;
    the sweep exits with 128 + the signal number. A second signal is passed on again (workers exit at once).
    """

    def announce_and_forward(signum: int) -> None:
        name = signal.Signals(signum).name
        os.write(2, f"\n[optuna] {name}: stopping every worker after its current step\n".encode())
        forward(signum)

    return on_stop_signals(announce_and_forward)
