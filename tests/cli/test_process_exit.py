"""`exit_after(main)`: the entrypoints' quick exit keeps everything a normal exit does for the user's data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers.cli import REPO_ROOT


def run_entrypoint(body: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A process whose entrypoint is `exit_after(main)`, with `main` defined by `body` (`out` is tmp_path)."""
    script = (
        textwrap.dedent(
            """
        import atexit, logging, sys, threading, time
        from pathlib import Path
        from trainscope.cli.process_exit import exit_after
        out = Path(sys.argv[1])
        """
        )
        + textwrap.dedent(body)
        + "\nexit_after(main)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exit_code_buffered_output_logs_and_atexit_handlers_survive(tmp_path: Path) -> None:
    result = run_entrypoint(
        """
        def main():
            handler = logging.FileHandler(out / "train.log")  # flushed and closed by logging's atexit handler
            logging.getLogger("x").addHandler(handler)
            logging.getLogger("x").warning("last words")
            atexit.register(lambda: (out / "atexit.txt").write_text("ran"))
            sys.stdout.write("no newline, still buffered")
            sys.exit(3)
        """,
        tmp_path,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "no newline, still buffered"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "train.log").read_text() == "last words\n"


def test_what_native_code_printed_is_not_lost(tmp_path: Path) -> None:
    """NCCL and other C/C++ libraries print through C's stdio, fully buffered when stdout is a pipe."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ctypes\nfrom trainscope.cli.process_exit import exit_after\n"
            "exit_after(lambda: ctypes.CDLL(None).printf(b'NCCL INFO from C'))",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "NCCL INFO from C"), result.stderr


def test_a_message_exit_prints_it_and_exits_1(tmp_path: Path) -> None:
    result = run_entrypoint("def main():\n    sys.exit('error: something the user must read')\n", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: something the user must read"


def test_a_normal_return_exits_0(tmp_path: Path) -> None:
    result = run_entrypoint("def main():\n    print('done')\n", tmp_path)
    assert (result.returncode, result.stdout) == (0, "done\n")


def test_a_running_user_thread_is_waited_for(tmp_path: Path) -> None:
    """A callback's non-daemon thread still working when training ends finishes its work, as with sys.exit."""
    result = run_entrypoint(
        """
        def finish_later():
            time.sleep(0.5)
            (out / "thread.txt").write_text("finished")

        def main():
            threading.Thread(target=finish_later).start()
            sys.exit(4)
        """,
        tmp_path,
    )
    assert result.returncode == 4, result.stderr
    assert (tmp_path / "thread.txt").read_text() == "finished"


def test_a_bug_keeps_its_traceback(tmp_path: Path) -> None:
    result = run_entrypoint("def main():\n    raise RuntimeError('a bug in a callback')\n", tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: a bug in a callback" in result.stderr
