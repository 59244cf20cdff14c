"""Sweeps as a user runs and inspects them: `python train.py -m ...` processes, their study, run directories
and event files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from tests.helpers.cli import REPO_ROOT, cli_env, run_script
from trainscope.trial.storage import open_storage

SEARCH = ["hparams_search=synthetic", "logging.log_every_n_steps=4"]


def sweep_args(sweep_dir: Path, *args: str) -> list[str]:
    return ["-m", *SEARCH, f"hydra.sweep.dir={sweep_dir}", *args]


def load_study(where: Path | str, name: str = "synthetic") -> optuna.Study:
    """The study `name` in a sweep directory's default journal (a Path) or in a storage (a str: URL or journal file)."""
    storage = str(where / "optuna_journal.log") if isinstance(where, Path) else where
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(
        (path for path in sweep_dir.iterdir() if path.is_dir() and path.name[0].isdigit()),
        key=lambda path: int(path.name.split("_", 1)[0]),
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


def start(args: list[str], output_root: Path, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO_ROOT,
        env=cli_env(output_root, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(args: list[str], output_root: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`python train.py <args>` (a sweep, usually) run to its end."""
    return run_script("train.py", args, output_root, data_dir, timeout=240)


def wait_for(condition: Callable[[], object], process: subprocess.Popen[str], what: str) -> None:
    """Poll often: the signal must land soon after the condition, well before the run ends."""
    deadline = time.monotonic() + 180
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            stdout, stderr = process.communicate()
            raise AssertionError(f"{what} never happened:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        time.sleep(0.02)


def one_dir(sweep_dir: Path, pattern: str) -> Path:
    (found,) = sweep_dir.glob(pattern)
    return found


def event_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("events.out.tfevents.*"), key=lambda path: path.stat().st_mtime)


def scalar_steps(event_file: Path, tag: str) -> list[int]:
    """The steps at which one event file holds `tag`, read with TensorBoard's own loader."""
    return [
        event.step
        for event in EventFileLoader(str(event_file)).Load()
        for value in event.summary.value
        if value.tag == tag
    ]


def metrics(run_dir: Path) -> dict[str, object]:
    return json.loads((run_dir / "metrics.json").read_text())


def snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file of a run directory with its size and modification time: proof it was not written again."""
    return {str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run_dir.rglob("*")}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
