"""One process at a time in a run directory.

Two processes writing one run (a `resume=` started twice, a resume of a run that is still training) would
replace each other's checkpoints and purge each other's TensorBoard points. The process that trains in a run
directory holds an exclusive `flock` on its `run.lock` file; the kernel releases it when that process ends,
however it ends, so a lock left by a killed process never blocks a later resume. The file holds the pid of
the last holder, for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from trainscope.core.errors import RunDirError
from trainscope.core.run_dir import RUN_LOCK

INHERITED_LOCK_VAR = "TRAINSCOPE_RUN_LOCK"
"""`<pid>:<run_dir>` of the holder, for its child processes: the training processes `trainer.devices=N` starts
belong to the run their parent holds, so they must not be refused as a second writer."""

_held: dict[Path, int] = {}
"""Run directories this process holds, with how many `run_lock` blocks hold each: `resume=` locks before
Hydra starts and the run locks again inside it, and a second `flock` in one process would wait for itself."""


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` for this process, or raise a one-line RunDirError naming the process that holds it."""
    key = run_dir.resolve()
    if os.environ.get(INHERITED_LOCK_VAR) == f"{os.getppid()}:{key}":
        yield  # our parent holds the run, and it holds it for us
        return
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    descriptor = os.open(key / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            raise RunDirError(
                f"{run_dir} is locked by pid {holder}, which is training in it; wait for it to finish "
                "(or stop it), then run this again"
            ) from None
        with contextlib.suppress(OSError):  # only for the message: a full disk must not stop the run here
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
        _held[key] = 1
        inherited = os.environ.get(INHERITED_LOCK_VAR)
        os.environ[INHERITED_LOCK_VAR] = f"{os.getpid()}:{key}"
        try:
            yield
        finally:
            del _held[key]
            if inherited is None:
                os.environ.pop(INHERITED_LOCK_VAR, None)
            else:
                os.environ[INHERITED_LOCK_VAR] = inherited
    finally:
        os.close(descriptor)  # releases the lock
