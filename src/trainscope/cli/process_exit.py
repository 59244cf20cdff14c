"""The end of a `train.py` / `eval.py` process: everything a normal exit does that matters, without the slow part.

Once torch (and the `torch._dynamo` its optimizers load) is imported, Python's interpreter teardown takes 0.7 s
and more on a 2-core machine: it dismantles thousands of modules and frees every object one by one, work the
operating system does at once when the process ends. A run has written and closed everything by then
(checkpoints, metrics.json, the TensorBoard writer), so `exit_after(main)` does what a normal exit does for
anyone's data, in the same order, and then ends the process with `os._exit`:

1. while a thread that is not a daemon still runs (a user's callback started one, a launcher's executor is
   alive), it takes the normal exit instead, which waits for the thread;
2. runs the `atexit` handlers (logging's flush and close of train.log, multiprocessing's clean-up,
   `weakref.finalize` hooks of temporary folders, any a user registered);
3. flushes Python's stdout and stderr, then C's stdio buffers (`fflush(NULL)`), which hold what native code
   printed, e.g. NCCL's `NCCL_DEBUG` lines when stdout is a pipe.

An exception other than `SystemExit` (a bug, Ctrl-C) takes the normal path too, traceback included.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def exit_after(main: Callable[[], object]) -> NoReturn:
    """Run the entrypoint `main`, then end the process with its exit code, skipping the interpreter's teardown."""
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop)
    if _other_threads_running():
        sys.exit(code)  # the normal exit joins them
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`| head`): nothing left to tell it
            stream.flush()
    with contextlib.suppress(Exception):  # no C library to ask (not seen on Linux or macOS): nothing buffered there
        ctypes.CDLL(None).fflush(None)
    os._exit(code)


def _exit_code(stop: SystemExit) -> int:
    """The status `sys.exit(value)` gives the process: None is 0, an int itself, anything else printed and 1."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def _other_threads_running() -> bool:
    return any(
        thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
        for thread in threading.enumerate()
    )
