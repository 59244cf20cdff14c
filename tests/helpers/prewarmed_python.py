"""`subprocess.run([python, script, *args])` with the imports already done: see `prewarmed_server.py` for why.

One server per pytest worker, started on first use and gone with the worker (it exits when its stdin closes).
`TRAINSCOPE_TESTS_FRESH_PYTHON=1` turns it off: every run is then a fresh interpreter, as CI ran before.
"""

from __future__ import annotations

import json
import locale
import os
import signal
import socket
import subprocess
import sys
from itertools import count
from pathlib import Path

SERVER = Path(__file__).with_name("prewarmed_server.py")
FRESH_PYTHON = "TRAINSCOPE_TESTS_FRESH_PYTHON"
READ_AT_INTERPRETER_START = ("PYTHON", "TORCH", "OMP_", "MKL_", "CUDA", "LD_", "MALLOC")
"""Variables a fresh interpreter (or torch's import) reads before the script runs: a change needs a fresh one."""


SERVER_NUMBERS = count()


class PrewarmedPython:
    """The pytest worker's handle on its server."""

    def __init__(self) -> None:
        self.name = f"trainscope-tests-{os.getpid()}-{next(SERVER_NUMBERS)}"
        self.started_env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), self.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.started_env,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        assert ready == "ready\n", f"the prewarmed Python did not start: {ready!r}"

    def fits(self, env: dict[str, str]) -> bool:
        """Whether a child forked from this server sees what a fresh interpreter with `env` would."""
        names = set(env) | set(self.started_env)
        return all(
            env.get(name) == self.started_env.get(name) for name in names if name.startswith(READ_AT_INTERPRETER_START)
        )

    def run(
        self, script: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """`python script *args` in `cwd` with `env`: exit code, stdout and stderr as text, like subprocess.run."""
        command = [sys.executable, script, *args]
        stdout, stderr = os.memfd_create("stdout"), os.memfd_create("stderr")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect("\0" + self.name)
                request = {"script": script, "args": args, "cwd": str(cwd), "env": env}
                socket.send_fds(connection, [json.dumps(request).encode()], [stdout, stderr])
                replies = Replies(connection)
                pid = replies.next()
                connection.settimeout(timeout)
                try:
                    returncode = replies.next()
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    connection.settimeout(None)
                    replies.next()
                    raise subprocess.TimeoutExpired(command, timeout, read_text(stdout), read_text(stderr)) from None
            return subprocess.CompletedProcess(command, returncode, read_text(stdout), read_text(stderr))
        finally:
            os.close(stdout)
            os.close(stderr)


class Replies:
    """The server's answers on one connection, one integer a line (the child's pid, then its exit code)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection, self.buffer = connection, b""

    def next(self) -> int:
        while b"\n" not in self.buffer:
            chunk = self.connection.recv(64)
            if not chunk:
                raise ConnectionError("the prewarmed Python closed the connection without an answer")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return int(line)


def read_text(fd: int) -> str:
    """What the child wrote to `fd`, decoded as `subprocess.run(text=True)` does (universal newlines)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    text = b"".join(chunks).decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


_server: PrewarmedPython | None = None


def prewarmed_python(env: dict[str, str]) -> PrewarmedPython | None:
    """This worker's server, if it can stand in for a fresh `python` with `env`; None: start a real one."""
    global _server
    if os.environ.get(FRESH_PYTHON) == "1":
        return None
    if _server is None or _server.process.poll() is not None:
        _server = PrewarmedPython()
    return _server if _server.fits(env) else None
