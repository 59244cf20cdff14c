"""The prewarmed Python stands in for a fresh `python script.py`: same output, exit status, ending and timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.prewarmed_python import PrewarmedPython, prewarmed_python

SCRIPT = """
import atexit, os, sys, threading, time
print("argv", sys.argv[1:], "main", __name__, "path0", os.path.basename(sys.path[0]))
print("cwd", os.path.basename(os.getcwd()), "env", os.environ.get("PREWARM_CHECK"))
print("progress 1\\rprogress 2\\r\\ndone")
atexit.register(lambda: print("atexit ran"))
threading.Thread(target=lambda: (time.sleep(0.2), print("thread joined", flush=True))).start()
if sys.argv[1] == "raise":
    raise ValueError("user code raised")
if sys.argv[1] == "kill":
    os.kill(os.getpid(), 9)
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def server() -> PrewarmedPython:
    """The worker's own server (the one `run_script` uses), or one of its own when that one is turned off."""
    shared = prewarmed_python(dict(os.environ))
    yield shared or (started := PrewarmedPython())
    if shared is None:
        started.process.stdin.close()
        started.process.wait(timeout=10)


@pytest.mark.parametrize("how", ["0", "3", "raise", "kill"])
def test_a_run_reads_exactly_as_a_fresh_interpreters(server: PrewarmedPython, tmp_path: Path, how: str) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(server.started_env, PREWARM_CHECK="seen")
    fresh = subprocess.run(
        [sys.executable, str(script), how], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    forked = server.run(str(script), [how], tmp_path, env, timeout=60)
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout)
    if how == "raise":  # the traceback also shows the server's frames above the script's
        assert "Traceback" in forked.stderr and "Traceback" in fresh.stderr
        assert forked.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "ValueError: user code raised"
    else:
        assert forked.stderr == fresh.stderr
    assert fresh.returncode == {"0": 0, "3": 3, "raise": 1, "kill": -9}[how]


def test_a_run_past_its_timeout_is_killed_and_raises_as_subprocess_does(
    server: PrewarmedPython, tmp_path: Path
) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired) as raised:
        server.run(str(script), [], tmp_path, server.started_env, timeout=1)
    pid = int(raised.value.output)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_variable_read_at_interpreter_start_needs_a_fresh_interpreter(server: PrewarmedPython) -> None:
    assert server.fits(dict(server.started_env, TRAINSCOPE_OUTPUT_DIR="/elsewhere"))
    assert not server.fits(dict(server.started_env, PYTHONWARNINGS="error"))
    assert not server.fits(dict(server.started_env, OMP_NUM_THREADS="7"))
