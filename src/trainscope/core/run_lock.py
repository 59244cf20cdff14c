"""One process at a time in a run directory.

Two processes writing one run (a `resume=` started twice, a resume of a run that is still training) would
replace each other's checkpoints and purge each other's TensorBoard points. The process that trains in a run
directory holds an exclusive `flock` on its `run.lock` file; the kernel releases it when that process ends,
however it ends, so a lock left by a killed process never blocks a later resume. The file holds the pid of
the last holder, for the message.

The lock is also how a reader tells a live run from a dead one (`lock_holder`): a run killed with SIGKILL never
wrote how it ended, but its lock is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from trainscope.core.errors import RunDirError
from trainscope.core.run_dir import RUN_LOCK

PROBE_WAIT_SECONDS = 0.5
"""How long a run waits for its lock before it is refused: `lock_holder` takes it (shared) for microseconds to
look, and a run starting at that instant must not take the reader for a second writer."""

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
    try:
        descriptor = os.open(key / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:  # a read-only copy of a run, a full disk: before anything is written
        raise RunDirError(
            f"cannot write into {run_dir} ({error.strerror or error}); training, resume= and eval.py write into "
            "the run directory: copy it to a writable folder (or free space) and use the copy"
        ) from None
    try:
        if not _lock_soon(descriptor):
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


def _lock_soon(descriptor: int) -> bool:
    """Take the exclusive lock, waiting up to `PROBE_WAIT_SECONDS` for a reader's probe to end."""
    deadline = time.monotonic() + PROBE_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def lock_holder(run_dir: Path) -> int | None:
    """The pid of the process training in `run_dir` now (0 when it wrote none), or None when none is.

    Looks without waiting and without creating `run.lock`: a shared lock that cannot be had means a run holds
    it; one that can is given back at once.
    """
    try:  # O_NONBLOCK: a run directory is untrusted, and opening a FIFO planted as run.lock would wait forever
        descriptor = os.open(run_dir / RUN_LOCK, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None  # no lock file: nothing ever trained here, or a run that never reached its start
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(descriptor, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        except OSError:
            return None  # a file system without flock: no run can hold it either
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)
