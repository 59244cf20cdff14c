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

With Hydra's default `basic` launcher, which runs jobs one after another in the sweep's own process,
the sweeper starts the worker jobs as local processes itself (`LocalWorkers`): `python -m
trainscope.sweep.worker_process`, fed the pickled worker on stdin, so it never depends on how the sweep
itself was started (a script, pytest, a notebook, `hydra.main` in another program).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

from trainscope.core.errors import ConfigError, TrainscopeError, first_line, report_user_error
from trainscope.core.interruption import exit_code_for
from trainscope.sweep.runner import say
from trainscope.sweep.settings import OptunaSettings
from trainscope.sweep.study import OWNER_ATTR

WORKER_DIR_PREFIX = "optuna_worker_"
WORKER_FILE = "worker.json"
"""In each worker's directory: the worker's host and pid, so the sweep can pass a Ctrl-C or SIGTERM on."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def worker_dir(sweep_dir: Path, index: int) -> Path:
    return sweep_dir / f"{WORKER_DIR_PREFIX}{index}"


@dataclass(frozen=True)
class WorkerReport:
    """What a worker job returns: how many trials it ran and whether a signal stopped it."""

    index: int
    host: str
    pid: int
    trials: int
    signal_number: int | None = None  # SIGINT/SIGTERM stopped it: its running trial was saved and recorded


@contextlib.contextmanager
def signals_interrupt() -> Iterator[list[int]]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in this worker, whatever it is doing; yields the signals seen.

    A trial that is training replaces these handlers with its own (stop after the step, checkpoint); a
    signal anywhere else (claiming, composing, building the model) unwinds the trial, which the runner
    records as interrupted and retries once. Off the main thread signals cannot be handled: nothing changes.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield seen
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def signal_of(error: BaseException, seen: Sequence[int]) -> int:
    """The signal that stopped a worker: the one its training run saw, else the one its handler caught."""
    run_signal = getattr(error.__cause__, "signal_number", None)
    return int(run_signal or (seen[-1] if seen else signal.SIGINT))


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

        from trainscope.sweep.runner import OptunaSweep

        directory.mkdir(parents=True, exist_ok=True)
        identity = {"host": socket.gethostname(), "pid": os.getpid()}
        (directory / WORKER_FILE).write_text(json.dumps(identity))
        launcher = BasicLauncher()  # each trial: one Hydra job of the app, in this process
        launcher.setup(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        sweep = OptunaSweep(self.settings, self.config, self.arguments)
        sweep.deadline = self.deadline
        old_cwd = os.getcwd()
        with signals_interrupt() as seen:
            try:
                os.chdir(str(self.config.hydra.runtime.cwd))  # trials see the sweep's working directory
                sweep.open()
                sweep.run_trials(launcher)
            except KeyboardInterrupt as error:
                return WorkerReport(index, identity["host"], identity["pid"], sweep.trials_run, signal_of(error, seen))
            finally:
                os.chdir(old_cwd)
        return WorkerReport(index, identity["host"], identity["pid"], sweep.trials_run)


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


def worker_job_overrides(sweep: Any, index: int) -> list[str]:
    """A worker job's overrides: the sweep's fixed ones (which may pick the sweeper, e.g. `hparams_search=`,
    so the job's config composes like the sweep's), its own directory (its log and `worker.json`) and no
    `.hydra/` copy (it is no run)."""
    from trainscope.config.overrides import hydra_quote

    return [
        *sweep.space.fixed_overrides.values(),
        f"hydra.sweep.dir={hydra_quote(str(sweep.sweep_dir))}",
        f"hydra.sweep.subdir={WORKER_DIR_PREFIX}{index}",
        "hydra.output_subdir=null",
    ]


# ------------------------------------------------------------------------------------------- signals
@contextlib.contextmanager
def forwarding_signals(forward: Any) -> Iterator[list[int]]:
    """While the sweep waits for its workers, pass SIGINT/SIGTERM on to them (`forward(signum)`) once each.

    The workers then stop after their current training step, save and record their trials, and return;
    the sweep exits with 128 + the signal number. A second signal is passed on again (workers exit at once).
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        os.write(
            2, f"\n[optuna] {signal.Signals(signum).name}: stopping every worker after its current step\n".encode()
        )
        forward(signum)

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        yield seen
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def signal_workers_on_this_host(sweep_dir: Path, signum: int) -> None:
    """Send `signum` to this sweep's workers on this machine that run in another process group.

    Workers in the sweep's own process group (joblib's pool) already got a signal sent to the group (a
    terminal's Ctrl-C, `kill -TERM -<pgid>`, systemd, `scancel`); sending it again would make their
    training runs exit at once, without a checkpoint.
    """
    host = socket.gethostname()
    for path in sweep_dir.glob(f"{WORKER_DIR_PREFIX}*/{WORKER_FILE}"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            identity = json.loads(path.read_text())
            pid = int(identity["pid"])
            if identity["host"] == host and pid != os.getpid() and os.getpgid(pid) != os.getpgrp():
                os.kill(pid, signum)


# ------------------------------------------------------------------------------------ through a launcher
def run_worker_jobs(sweep: Any, launcher: Launcher) -> int | None:
    """Launch `n_jobs` worker jobs through the configured Hydra launcher (set up with a `TrialWorker` as its
    task function) and wait for them.

    Returns the signal that stopped the sweep, or None. While they run, a dead worker's trial is
    reported (and retried once) as soon as it is noticed; when the batch returns with trials still to
    run (a worker died) and it made progress, a new batch of workers is launched.
    """
    with forwarding_signals(lambda signum: signal_workers_on_this_host(sweep.sweep_dir, signum)) as seen:
        while True:
            finished_before = sweep.finished_trials()
            overrides = [worker_job_overrides(sweep, index) for index in range(sweep.n_jobs)]
            problems: list[str] = []
            with watching_for_dead_workers(sweep):
                try:
                    jobs: Sequence[JobReturn] = launcher.launch(overrides, initial_job_idx=0)
                except Exception as error:  # noqa: BLE001 - e.g. joblib's TerminatedWorkerError
                    problems.append(f"{type(error).__name__}: {first_line(error)}")
                    jobs = []
            signals = [report_worker_job(job, problems) for job in jobs]
            for problem in problems:
                say(f"a worker job ended abnormally: {problem}")
            stopped = seen or [s for s in signals if s is not None]
            if stopped:
                return stopped[0]
            fail_abandoned_trials_of_dead_workers(sweep)  # e.g. joblib ends its whole pool when one worker dies
            if not sweep.needs_trials():
                return None
            if sweep.finished_trials() == finished_before:
                why = problems[0] if problems else "no error"
                raise ConfigError(
                    f"the sweep's worker jobs ended without finishing a trial ({why}); "
                    "check the launcher's settings and logs"
                )
            say(f"the study still needs trials after its workers ended: launching {sweep.n_jobs} new worker jobs")


def report_worker_job(job: JobReturn, problems: list[str]) -> int | None:
    """The signal that stopped a worker job, if one did; a failed job's error goes into `problems`."""
    if job.status != JobStatus.COMPLETED:
        error = job._return_value  # noqa: SLF001 - `return_value` re-raises a failed job's exception
        problems.append(f"{type(error).__name__}: {first_line(error)}")
        return None
    report = job.return_value
    return report.signal_number if isinstance(report, WorkerReport) else None


def fail_abandoned_trials_of_dead_workers(sweep: Any) -> None:
    """Fail (and retry once) the running trials whose worker died, saying so."""
    for trial in sweep.fail_abandoned():
        owner = trial.system_attrs.get(OWNER_ATTR) or {}
        say(
            f"the worker of trial {trial.number} (pid {owner.get('pid')} on {owner.get('host')}) died: "
            "trial marked FAIL (interrupted) and retried once"
        )


@contextlib.contextmanager
def watching_for_dead_workers(sweep: Any, interval: float = 1.0) -> Iterator[None]:
    """While workers run, fail (and retry once) the trials of a worker that died, as soon as it is noticed."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a storage hiccup here must not end the sweep
                fail_abandoned_trials_of_dead_workers(sweep)

    thread = threading.Thread(target=watch, name="optuna-dead-worker-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# ------------------------------------------------------------------------------ as processes of our own
class LocalWorkers:
    """`n_jobs` worker processes on this machine, for the `basic` launcher (which runs jobs one by one).

    Each is `python -m trainscope.sweep.worker_process <index> <dir>`, fed the pickled `TrialWorker` on
    stdin (with cloudpickle: an app's task function defined in a script or notebook travels by value). Its
    output goes to the sweep's own stdout and stderr, line by line, and to
    `<sweep_dir>/optuna_worker_<i>/worker.log`. A worker that dies is reported at once, its trial
    failed and retried once, and a new worker takes its place.
    """

    def __init__(self, sweep: Any, worker: TrialWorker) -> None:
        import cloudpickle

        self.sweep = sweep
        # sys.path first, in a pickle of its own: the worker may name modules only this path finds
        self.payload = pickle.dumps(list(sys.path)) + cloudpickle.dumps(worker)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.relays: list[threading.Thread] = []
        self.log_files: list[Any] = []
        self.next_index = 0

    def start(self) -> None:
        index, self.next_index = self.next_index, self.next_index + 1
        directory = worker_dir(self.sweep.sweep_dir, index)
        directory.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "trainscope.sweep.worker_process", str(index), str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the sweep only, which passes it on exactly once
        )
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        log_file = open(directory / "worker.log", "ab")  # noqa: SIM115 - closed once the worker ended
        self.log_files.append(log_file)
        lock = threading.Lock()
        relays = [
            threading.Thread(target=relay, args=(process.stdout, sys.stdout, log_file, lock), daemon=True),
            threading.Thread(target=relay, args=(process.stderr, sys.stderr, log_file, lock), daemon=True),
        ]
        for thread in relays:
            thread.start()
        self.relays.extend(relays)
        process.stdin.write(self.payload)
        process.stdin.close()
        self.processes[index] = process

    def forward(self, signum: int) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)

    def run(self) -> int | None:
        """Start the workers and supervise them until all have ended; returns the signal that stopped the sweep."""
        log_pattern = self.sweep.sweep_dir / f"{WORKER_DIR_PREFIX}*" / "worker.log"
        replacements = 0
        with forwarding_signals(self.forward) as seen:
            try:
                for _ in range(self.sweep.n_jobs):
                    self.start()
                say(f"{self.sweep.n_jobs} worker processes started (logs: {log_pattern})")
                stopped_by: int | None = None
                while self.processes:
                    time.sleep(0.2)
                    for index, process in list(self.processes.items()):
                        code = process.poll()
                        if code is None:
                            continue
                        del self.processes[index]
                        if code == 2:  # a user-facing error, explained in its log
                            say(f"worker {index} stopped with an error; see {self.log_of(index)}")
                        if code in (0, 2):
                            continue
                        if code in (exit_code_for(s) for s in STOP_SIGNALS):  # saved its trial and stopped
                            stopped_by = stopped_by or code - 128
                            continue
                        if seen:  # a second signal ended it at once
                            continue
                        self.report_dead(index, code)
                        if self.sweep.needs_trials() and replacements < self.sweep.n_trials:
                            replacements += 1
                            self.start()
                            say(f"worker {self.next_index - 1} started in place of worker {index}")
            except BaseException:
                self.forward(signal.SIGKILL)
                raise
            finally:
                for thread in self.relays:
                    thread.join(timeout=5)
                for log_file in self.log_files:
                    log_file.close()
        if seen:
            return seen[0]
        return stopped_by

    def log_of(self, index: int) -> Path:
        return worker_dir(self.sweep.sweep_dir, index) / "worker.log"

    def report_dead(self, index: int, code: int) -> None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        say(f"worker {index} {how}; see {self.log_of(index)}")
        for trial in self.sweep.fail_abandoned():
            say(f"trial {trial.number} of worker {index} marked FAIL (interrupted) and retried once")


def relay(source: Any, terminal: Any, log_file: Any, lock: threading.Lock) -> None:
    """Copy a worker's output, line by line, to the sweep's terminal stream and the worker's log file."""
    for line in iter(source.readline, b""):
        text = line.decode(errors="replace")
        with contextlib.suppress(ValueError, OSError):  # the terminal stream or log may be closed at exit
            terminal.write(text)
            terminal.flush()
        with lock, contextlib.suppress(ValueError, OSError):
            log_file.write(line)
            log_file.flush()
    source.close()


def worker_process_main(argv: Sequence[str]) -> int:
    """The entry of a worker process `LocalWorkers` started: unpickle the worker from stdin and run it."""
    from hydra.core.utils import setup_globals

    index, directory = int(argv[0]), Path(argv[1])
    _die_with_parent()
    sys.path[:] = pickle.load(sys.stdin.buffer)
    worker: TrialWorker = pickle.load(sys.stdin.buffer)
    Singleton.set_state(worker.singleton_state)
    setup_globals()
    try:
        report = worker.run(index, directory)
    except TrainscopeError as error:  # e.g. the storage gone for longer than reconnect_timeout
        report_user_error(error)
    return 0 if report.signal_number is None else exit_code_for(report.signal_number)


def _die_with_parent() -> None:
    """A worker ends with the sweep (even on SIGKILL), so its running trial counts as interrupted."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
