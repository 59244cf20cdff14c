"""Worker processes of our own, for Hydra's `basic` launcher (which runs jobs one after another in-process).

Started as `python -m trainscope.sweep.optuna.workers.process`, each fed the pickled `TrialWorker` on stdin, so
nothing depends on how the sweep itself was started (`worker.py`). `supervise` decides when one starts.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TextIO

from hydra.core.singleton import Singleton

from trainscope.core.errors import TrainscopeError, report_user_error
from trainscope.core.interruption import exit_code_for
from trainscope.sweep.optuna.signals import STOP_SIGNALS
from trainscope.sweep.optuna.workers.supervision import WorkerEnd
from trainscope.sweep.optuna.workers.worker import WORKER_DIR_PREFIX, TrialWorker, worker_dir

WORKER_MODULE = "trainscope.sweep.optuna.workers.process"
"""What each worker process runs (`python -m WORKER_MODULE <index> <dir>`)."""
POLL_SECONDS = 0.2


class LocalWorkers:
    """Worker processes on this machine, for the `basic` launcher (which runs jobs one by one).

    Each is `python -m trainscope.sweep.optuna.workers.process <index> <dir>`, fed the pickled `TrialWorker` on
    stdin (with cloudpickle: an app's task function defined in a script or notebook travels by value). Its
    output goes to the sweep's own stdout and stderr, line by line, and to
    `<sweep_dir>/optuna_worker_<i>/worker.log`; the sweep sees each one end the moment it does.
    """

    def __init__(self, sweep_dir: Path, worker: TrialWorker, workers: int) -> None:
        import cloudpickle

        self.sweep_dir = sweep_dir
        # sys.path first, in a pickle of its own: the worker may name modules only this path finds
        self.payload = pickle.dumps(list(sys.path)) + cloudpickle.dumps(worker)
        self.workers = workers  # how many run at once: they share the machine's cores
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.relays: list[threading.Thread] = []
        self.log_files: list[IO[bytes]] = []

    def start(self, index: int) -> None:
        directory = worker_dir(self.sweep_dir, index)
        directory.mkdir(parents=True, exist_ok=True)
        warning_options = [f"-W{option}" for option in sys.warnoptions]  # `python -W error` holds in workers too
        process = subprocess.Popen(
            [sys.executable, *warning_options, "-m", WORKER_MODULE, str(index), str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the sweep only, which passes it on exactly once
            env=self.environment(),
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

    def environment(self) -> dict[str, str]:
        """The sweep's environment, with the machine's cores split between the workers (as joblib does).

        Every training process would otherwise start one thread per core, and n_jobs of them fight for the
        cores (measured in benchmarks/RESULTS.md); a thread count the user set is kept.
        """
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max((os.cpu_count() or 1) // self.workers, 1)))
        return env

    def forward(self, signum: int) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)

    def abandon(self) -> None:
        self.forward(signal.SIGKILL)  # they would die with the sweep anyway (PR_SET_PDEATHSIG)

    def started(self, count: int) -> str:
        return f"{count} worker processes started (logs: {self.sweep_dir / f'{WORKER_DIR_PREFIX}*' / 'worker.log'})"

    def running(self) -> bool:
        return bool(self.processes)

    def wait(self) -> list[WorkerEnd]:
        time.sleep(POLL_SECONDS)
        ended = []
        for index, process in list(self.processes.items()):
            code = process.poll()
            if code is not None:
                del self.processes[index]
                ended.append(_end_of(index, process.pid, code))
        return ended

    def log_of(self, index: int) -> Path:
        return worker_dir(self.sweep_dir, index) / "worker.log"

    def close(self) -> None:
        for thread in self.relays:
            thread.join(timeout=5)
        for log_file in self.log_files:
            log_file.close()


def _end_of(index: int, pid: int, code: int) -> WorkerEnd:
    """How worker `index` ended, from its exit code (see `worker_process_main`)."""
    owner = {"host": socket.gethostname(), "pid": pid}
    if code == 0:
        return WorkerEnd(index, owner)
    if code == 2:  # a user-facing error, explained in its log
        return WorkerEnd(index, owner, error=True)
    if code in (exit_code_for(s) for s in STOP_SIGNALS):  # saved its trial and stopped
        return WorkerEnd(index, owner, signal_number=code - 128)
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    return WorkerEnd(index, owner, death=how)


def relay(source: IO[bytes], terminal: TextIO, log_file: IO[bytes], lock: threading.Lock) -> None:
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
