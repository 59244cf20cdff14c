"""A run stopped by a signal: its exit code and the command that continues it.

Raised by the session after an interrupted run saved everything; the command line turns it into its exit code.
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path


def exit_code_for(signal_number: int | None) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number (Ctrl-C → 130)."""
    return 128 + (signal_number or signal.SIGINT)


def resume_command(run_dir: Path) -> str:
    """The exact command that continues `run_dir`, quoted for a POSIX shell."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "train.py"
    launcher = f"python {program}" if program.endswith(".py") else program
    return f"{launcher} resume={shlex.quote(str(run_dir))}"


class RunInterrupted(Exception):
    """Raised by `trainscope.session.run.train` after an interrupted run has saved everything.

    Not a `TrainscopeError`: nothing is wrong with the input; the command line exits with `exit_code`.
    """

    def __init__(self, run_dir: Path, signal_number: int | None, global_step: int) -> None:
        self.run_dir = run_dir
        self.signal_number = signal_number
        self.global_step = global_step
        self.exit_code = exit_code_for(signal_number)
        name = signal.Signals(signal_number).name if signal_number else "a stop request"
        super().__init__(
            f"interrupted by {name} at step {global_step}; checkpoint saved. resume with: {resume_command(run_dir)}"
        )
