"""Run `python train.py ...` as a user would, in a throwaway output folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.prewarmed_python import prewarmed_python

REPO_ROOT = Path(__file__).resolve().parents[2]

# Small enough for 2 CPU cores, big enough that every tag gets several points.
TINY = [
    "data=synthetic",
    "data.num_samples=256",
    "data.batch_size=32",
    "model=mlp",
    "trainer.max_epochs=2",
    "logging.log_every_n_steps=2",
]
FULL = [*TINY, "logging=full", "trainer.max_epochs=3"]  # histograms, images and text at every epoch end


def cli_env(output_root: Path, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TRAINSCOPE_OUTPUT_DIR=str(output_root),
        TRAINSCOPE_DATA_DIR=str(data_dir),
        HYDRA_FULL_ERROR="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_script(
    script: str, args: list[str], output_root: Path, data_dir: Path, timeout: float = 300, **popen: object
) -> subprocess.CompletedProcess[str]:
    """`python <script> <args>` run to its end: forked from a prewarmed Python where it can stand in for a fresh one
    (`prewarmed_python.py`), else a fresh interpreter."""
    env = cli_env(output_root, data_dir)
    server = None if popen else prewarmed_python(env)
    if server is not None:
        return server.run(script, args, REPO_ROOT, env, timeout)
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,  # type: ignore[arg-type]
    )


def resume_cli(run_dir: Path, data_dir: Path, *overrides: str, **popen: object) -> subprocess.CompletedProcess[str]:
    """`python train.py resume=<run_dir>`; a new run directory would land in `<run_dir>/../unused-output-root`."""
    return run_script(
        "train.py", [f"resume={run_dir}", *overrides], run_dir.parent / "unused-output-root", data_dir, **popen
    )


def start_training(
    args: list[str], output_root: Path, data_dir: Path, stdout: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """`python train.py <args>` in the background, for tests that signal, kill or watch a live run."""
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO_ROOT,
        env=cli_env(output_root, data_dir),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )


def single_run_dir(output_root: Path) -> Path:
    """The one run directory a single `python train.py` wrote under `output_root`."""
    run_dirs = sorted((output_root / "runs").glob("*/*"))
    assert len(run_dirs) == 1, f"expected one run directory, found {run_dirs}"
    return run_dirs[0]


class TrainCLI:
    """Runs `python train.py <args>` as a user would, with outputs under `output_root`."""

    def __init__(self, output_root: Path, data_dir: Path, script: str = "train.py") -> None:
        self.output_root, self.data_dir, self.script = output_root, data_dir, script

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_script(self.script, list(args), self.output_root, self.data_dir, timeout)

    def run_dir(self) -> Path:
        return single_run_dir(self.output_root)


def wait_for_checkpoint(output_root: Path, process: subprocess.Popen[str], timeout: float = 120) -> Path:
    """The run directory, once its first checkpoint exists (polled, as a user would watch the folder)."""
    return wait_for_run_file(output_root, process, "checkpoints/last.pt", "its first checkpoint", timeout)


def wait_for_run_file(
    output_root: Path, process: subprocess.Popen[str], name: str, what: str, timeout: float = 120
) -> Path:
    """The run directory, as soon as the file `name` (relative to it) exists, polled every few milliseconds
    so a signal sent then lands right after that moment (`.hydra/config.yaml`: the run has just started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((output_root / "runs").glob(f"*/*/{name}"))
        if found:
            return found[0].parents[len(Path(name).parts) - 1]
        if process.poll() is not None:
            pytest.fail(f"run ended before {what}:\n{process.stdout.read() if process.stdout else ''}")
        time.sleep(0.002)
    process.kill()
    pytest.fail(f"no {what} within the timeout")


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the user reads; fails on a traceback or on more than one line on stderr."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def snapshot(directory: Path) -> dict[Path, bytes]:
    """Every file below `directory` with its bytes: compare two snapshots to prove nothing was touched."""
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}
