"""A Python that has already imported torch and trainscope, forking one child per `python <script> <args>` a test runs.

Why: importing torch, Hydra and trainscope (and torch._dynamo, which the first optimizer pulls in) is 4-5 s of
every `python train.py` on a 2-core machine, and the suite starts a few hundred of them. Each child is still its own
process: the real script runs as `__main__` with its own argv, working directory, environment, stdout and stderr,
and ends the way any Python ends (threads joined, atexit handlers, exit status). What it skips is only the
imports, which the server did once before forking; a test that watches the imports themselves, signals a live run
or needs an interpreter option starts a real `python` instead (`tests/helpers/cli.py`).

Run by `tests/helpers/prewarmed_python.py`: `python prewarmed_server.py <abstract socket name>`. It answers each
connection with the child's pid, then with its exit code (negative: the signal that ended it), and exits when its
stdin (a pipe from the pytest worker) closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys

PRELOADED = ("trainscope.cli.train", "trainscope.cli.eval", "trainscope.session.run", "torch._dynamo")


def run_child(
    request: dict, out_fd: int, err_fd: int, server_files: list[socket.socket | selectors.BaseSelector]
) -> None:
    """In the forked child: become `python <script> <args>` and run it; leaves only by SystemExit."""
    for server_file in server_files:
        server_file.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    stdin = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((stdin, 0), (out_fd, 1), (err_fd, 2)):
        os.dup2(source, target)
        os.close(source)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    script = request["script"]
    sys.argv = [script, *request["args"]]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    raise SystemExit(0)


def serve(name: str) -> None:
    for module in PRELOADED:
        __import__(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen(16)
    waiting: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select(timeout=0.02):
            if key.fileobj is sys.stdin:
                if not os.read(0, 1024):
                    return  # the pytest worker is gone
                continue
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 2)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                run_child(json.loads(message), fds[0], fds[1], [selector, listener, connection, *waiting.values()])
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                connection.sendall(f"{pid}\n".encode())
            waiting[pid] = connection
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            with waiting.pop(pid) as connection, contextlib.suppress(OSError):  # a test that gave up has hung up
                connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())


if __name__ == "__main__":
    serve(sys.argv[1])
