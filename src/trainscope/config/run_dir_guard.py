"""One run per run directory: a new run never writes into a directory that already holds a run.

A directory *holds a run* when it directly contains any of `metrics.json`, `checkpoints/` or a TensorBoard
event file (`events.out.tfevents.*`): the files a run starts writing once it trains. Anything else is free:
a directory that does not exist, an empty one, or one with only Hydra's `.hydra/` and `train.log` left by a
run that stopped at a config error (a new run there rewrites `.hydra/` and appends to `train.log`).
`resume=<run_dir>` is the one way to write into a directory that holds a run.

The check must run before Hydra writes `.hydra/` into the directory, or the first run's saved config would
be lost already: single runs are checked in a Hydra `on_run_start` callback
(`trainscope.cli.hydra_callbacks.RefuseTakenRunDir`), sweep jobs by the sweepers before the launcher starts
them (`trainscope.sweep.guarded_launcher`).
"""

from __future__ import annotations

import os
from pathlib import Path

from trainscope.errors import ConfigError
from trainscope.monitor.run_summary import METRICS_FILE

EVENT_FILE_PREFIX = "events.out.tfevents"  # TensorBoard's name for an event file


class RunDirTaken(ConfigError):
    """A new run was pointed at a directory that already holds another run."""

    def __init__(self, run_dir: Path, found: list[str], setting: str) -> None:
        shown = display_path(run_dir)
        super().__init__(
            f"{shown} already holds a run ({', '.join(found)}); continue it with resume={shown}, "
            f"or choose another {setting}"
        )


def run_files_in(directory: Path) -> list[str]:
    """What in `directory` shows that a run wrote there (`metrics.json`, `checkpoints`, ...); [] when free."""
    if not directory.is_dir() or not any(directory.iterdir()):
        return []  # the usual case (a fresh directory): decided without importing torch below
    from trainscope.engine.checkpoint import CHECKPOINT_DIR

    found = [name for name in (METRICS_FILE, CHECKPOINT_DIR) if (directory / name).exists()]
    if any(entry.name.startswith(EVENT_FILE_PREFIX) for entry in directory.iterdir()):
        found.append("TensorBoard events")
    return found


def check_run_dir_free(run_dir: Path, setting: str) -> None:
    """Raise RunDirTaken unless `run_dir` is free for a new run; `setting` names the key that chose it."""
    found = run_files_in(run_dir)
    if found:
        raise RunDirTaken(run_dir, found, setting)


def display_path(path: Path) -> str:
    """`path` as the user would type it: relative to the working directory when inside it, else absolute."""
    absolute = path.resolve()
    cwd = Path(os.getcwd()).resolve()
    return str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else str(absolute)
