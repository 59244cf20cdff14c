"""Run one `python train.py -m ...` sweep to its end and time it: what the sweep benchmarks share."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_timed_sweep(sweep_dir: Path, arguments: list[str]) -> tuple[float, dict[str, Any]]:
    """`python train.py -m <arguments>` into `sweep_dir` (its output in `<sweep_dir>.log`).

    Returns the wall time in seconds and the sweep's `optimization_results.yaml`.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "train.py", "-m", *arguments, f"hydra.sweep.dir={sweep_dir}"]
    started = time.perf_counter()
    with open(sweep_dir.with_suffix(".log"), "w") as log:
        subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - started
    return wall, yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
