"""A TensorBoard server over a run's or a sweep's folder: started once, reused, stopped by whoever started it.

`logging.serve=true` and `trainscope-board [DIR]` both come here. The server is a real `tensorboard --logdir
<folder> --host 127.0.0.1 --port <p>` subprocess in its own session (a Ctrl-C in the terminal reaches the run,
which then stops the server, not the server directly). `<folder>/.tensorboard.json` records `{pid, port, logdir}`
so that a second start over the same folder (another trial of a sweep, a second `trainscope-board`) reuses the
server. The record is untrusted input, like everything in a run directory: it is only read as three typed values,
and a server counts as running only if that pid is alive and the port answers TensorBoard's `/data/logdir` with
this very folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainscope.core.errors import ConfigError

RECORD_FILE = ".tensorboard.json"
LOG_FILE = ".tensorboard.log"  # the server's own output: why it did not start, which requests it served
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0  # a loaded 2-core machine takes a few seconds; a healthy one about one

_STARTED: dict[int, subprocess.Popen[bytes]] = {}
"""The servers this process started, by pid, until stopped: one left running for a sweep or by
`logging.serve_stay=true` stays here, so its `Popen` is never collected (and never warns that it still runs)."""


class PortInUse(ConfigError):
    """The port asked for (`logging.serve_port`, `trainscope-board --port`) is taken by another program."""


@dataclass(frozen=True)
class Board:
    """A TensorBoard server serving `logdir`; `started` when this process started it (and so stops it)."""

    pid: int
    port: int
    logdir: Path
    started: bool

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def running(self) -> bool:
        """The server this process started has not exited."""
        process = _STARTED.get(self.pid)
        return process is not None and process.poll() is None

    def stop(self) -> None:
        """Stop the server this process started (its whole process group: the data server it spawned too) and
        remove the record; a reused server is left alone."""
        process = _STARTED.pop(self.pid, None)
        if process is None:
            return
        _stop(process)
        record = read_record(self.logdir)
        if record is not None and record.pid == self.pid:
            with contextlib.suppress(OSError):
                (self.logdir / RECORD_FILE).unlink()


def serve(folder: Path, port: int = 0) -> Board:
    """The server over `folder`: the one already serving it, or a new one on `port` (0: any free port).

    Raises PortInUse when `port` is taken, ConfigError when TensorBoard does not start or the folder cannot hold
    its record and log.
    """
    folder = folder.resolve()
    try:
        with open(folder / LOG_FILE, "ab") as lock:
            # held until the record is written: trials of a sweep starting at once share one server, not one each
            # (an open of its own: the server's output is another one, so the lock ends here, not with the server)
            fcntl.flock(lock, fcntl.LOCK_EX)
            return running_board(folder) or _start(folder, _free_port(port))
    except OSError as error:  # a read-only or full folder: no record, no log, so no server
        raise ConfigError(
            f"cannot start tensorboard over {folder} ({error.strerror or error}); run it yourself: "
            f"tensorboard --logdir {folder}"
        ) from None


def _start(folder: Path, port: int) -> Board:
    """A new server over `folder` on `port`, once it answers; its record written."""
    with open(folder / LOG_FILE, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder), "--host", HOST, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, untouched by the terminal's Ctrl-C
        )
    _STARTED[process.pid] = process
    board = Board(process.pid, port, folder, started=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _serves(port, folder):
        if process.poll() is not None or time.monotonic() > deadline:
            board.stop()
            raise ConfigError(
                f"tensorboard did not start on port {port} over {folder} (see {folder / LOG_FILE}); "
                "try another port or run: tensorboard --logdir " + str(folder)
            )
        time.sleep(0.2)
    _write_record(board)
    return board


def running_board(folder: Path) -> Board | None:
    """The server `<folder>/.tensorboard.json` names, if that pid is alive and its port serves `folder`."""
    record = read_record(folder)
    if record is None or not _alive(record.pid) or not _serves(record.port, folder):
        return None
    return record


def read_record(folder: Path) -> Board | None:
    """`<folder>/.tensorboard.json` as three checked values, or None when missing, unreadable or malformed."""
    try:
        data: Any = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid, port, logdir = data.get("pid"), data.get("port"), data.get("logdir")
    if not (_is_int(pid) and pid > 1 and _is_int(port) and 0 < port < 65536 and logdir == str(folder)):
        return None
    return Board(pid, port, folder, started=False)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _write_record(board: Board) -> None:
    """Written whole then renamed: a reader never sees half a record."""
    record = {"pid": board.pid, "port": board.port, "logdir": str(board.logdir)}
    partial = board.logdir / f"{RECORD_FILE}.{os.getpid()}.tmp"
    partial.write_text(json.dumps(record) + "\n", encoding="utf-8")
    partial.replace(board.logdir / RECORD_FILE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's: the port check decides
    return True


def _serves(port: int, folder: Path) -> bool:
    """The port answers TensorBoard's `/data/logdir` with `folder`: a TensorBoard over this folder, nothing else."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/data/logdir", timeout=2) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return isinstance(answer, dict) and answer.get("logdir") == str(folder)


def _free_port(port: int) -> int:
    """`port` if nothing listens on it (any free port for 0); PortInUse otherwise."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"port {port} is in use by another program; pick another (logging.serve_port=<port>, "
                "trainscope-board --port <port>) or 0 for any free port"
            ) from None
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (the data server it spawned too), SIGKILL after 10 s."""
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, stop_signal)
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue
