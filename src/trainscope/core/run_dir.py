"""The run-directory contract: every file name in a run directory, how a run ended, and how files are written.

One run directory holds everything one run produced; sweepers, `eval.py`, `resume=` and scripts find things by
the names defined here and nowhere else:

    <run_dir>/
      .hydra/config.yaml, overrides.yaml, hydra.yaml   the composed config, the command line, Hydra's own
      metrics.json                                      how the run ended (`write_metrics` / `read_metrics`)
      metrics.csv                                       one row per epoch, appended live (`trainscope.core.metrics_csv`)
      checkpoints/last.pt, previous.pt, best.pt         see `trainscope.core.checkpoint_io`
      train.log, eval.log                               named in conf/hydra/default.yaml and conf/eval.yaml
      events.out.tfevents.*                             the TensorBoard run
      run.lock                                          held by the process training in it (`run_lock`)
      .space_reserve                                    room for metrics.json on a full disk (`reserve_space`)

Every file that must never be seen half-written goes through `atomic_write`. A new run never writes into a
directory that already holds a run (`check_run_dir_free`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from trainscope.core.errors import CheckpointError, ConfigError

HYDRA_DIR = ".hydra"
SAVED_CONFIG = Path(HYDRA_DIR) / "config.yaml"
SAVED_OVERRIDES = Path(HYDRA_DIR) / "overrides.yaml"
SAVED_HYDRA_CONFIG = Path(HYDRA_DIR) / "hydra.yaml"
METRICS_FILE = "metrics.json"
METRICS_CSV = "metrics.csv"
TRAIN_LOG = "train.log"  # Hydra's log file, named in conf/hydra/default.yaml
CHECKPOINT_DIR = "checkpoints"
TOKENIZER_DIR = "tokenizer"  # a language model's tokenizer (data=text), what generation decodes with
EVENT_FILE_PREFIX = "events.out.tfevents"  # TensorBoard's name for an event file
LAST = "last.pt"
PREVIOUS = "previous.pt"
BEST = "best.pt"
CORRUPT_SUFFIX = ".corrupt"
TMP_SUFFIX = ".tmp"
RUN_LOCK = "run.lock"
SPACE_RESERVE = ".space_reserve"
SPACE_RESERVE_BYTES = 64 * 1024


class RunStatus(str, Enum):
    """How a run is going or how it ended: `metrics.json["status"]`, the trainer's `status`."""

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED_EARLY = "stopped_early"
    PRUNED = "pruned"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


STOP_STATUSES = (RunStatus.STOPPED_EARLY, RunStatus.PRUNED, RunStatus.FAILED, RunStatus.INTERRUPTED)
"""The statuses a stop request may set; every other run either runs or completes."""


def atomic_write(
    path: Path, content: bytes | Callable[[BinaryIO], None] | Path, keep_previous: Path | None = None
) -> None:
    """Write `path` so readers see the old file or the new one, never half, even across a crash.

    `content` is the bytes, a function that writes into the open file, or an existing file to hard-link
    (copy where links are impossible): files written this way are never modified in place, so a link is as
    good as a copy. The temporary file is fsynced before the rename and the directory after it. With
    `keep_previous`, the file being replaced stays available under that name, linked only once the new
    file is complete (a full disk fails before anything changes). On any error the temporary file is
    removed and the old `path` stays; the OSError propagates.
    """
    tmp_path = path.with_name(path.name + TMP_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path.unlink(missing_ok=True)
        if isinstance(content, Path):
            _link_or_copy(content, tmp_path)
        else:
            with open(tmp_path, "wb") as handle:
                if isinstance(content, bytes):
                    handle.write(content)
                else:
                    content(handle)
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        if keep_previous is not None and path.is_file():
            atomic_write(keep_previous, path)
        os.replace(tmp_path, path)
        _fsync_directory(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_all(files: Mapping[Path, bytes]) -> None:
    """Write several files so that either all of them change or none does (a run's `.hydra/` files, which say
    together what the run is): every temporary file is written and fsynced before the first rename, so a full
    disk fails while every old file is still in place. On any error the temporary files are removed and the
    OSError propagates. (Renames need no space; a crash between two of them is the one window left.)"""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            tmp_path = path.with_name(path.name + TMP_SUFFIX)
            staged.append((tmp_path, path))
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp_path, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        for tmp_path, _ in staged:
            tmp_path.unlink(missing_ok=True)
        raise
    for tmp_path, path in staged:
        os.replace(tmp_path, path)
    for directory in {path.parent for _, path in staged}:
        _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable: the directory entry itself is flushed, not only the file."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# --------------------------------------------------------------------------------------------------
# metrics.json: the run's outcome in one small file that sweepers, scripts and people read


def best_values(history: list[dict[str, float]], modes: Mapping[str, str] | None = None) -> dict[str, float]:
    """Best value of every epoch metric: as `modes` says (`{"val/acc": "max"}`: the monitored metric's mode),
    else the minimum for losses and times and the maximum for the rest."""
    best: dict[str, float] = {}
    modes = modes or {}
    for metrics in history:
        for tag, value in metrics.items():
            if math.isnan(value):
                continue
            lower_is_better = modes[tag] == "min" if tag in modes else ("loss" in tag or tag.startswith("time/"))
            if tag not in best or (value < best[tag] if lower_is_better else value > best[tag]):
                best[tag] = value
    return best


def _json_safe(value: Any) -> Any:
    """NaN/Inf are not JSON: write them as null so every JSON reader accepts the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    return value


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> Path:
    """Write metrics.json atomically, so a reader never sees half a file."""
    path = run_dir / METRICS_FILE
    atomic_write(path, (json.dumps(_json_safe(metrics), indent=2, sort_keys=True) + "\n").encode())
    return path


def reserve_space(run_dir: Path) -> None:
    """Hold `SPACE_RESERVE_BYTES` in the run directory while the run trains (best effort).

    A disk that fills during training fails TensorBoard, log and checkpoint writes alike; freeing this file
    just before metrics.json is written (`release_space`) leaves room to record why the run failed.
    """
    try:
        with open(run_dir / SPACE_RESERVE, "wb") as handle:
            handle.write(bytes(SPACE_RESERVE_BYTES))  # written, not sparse: the space is really taken
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        (run_dir / SPACE_RESERVE).unlink(missing_ok=True)


def release_space(run_dir: Path) -> None:
    """Give back what `reserve_space` held, for the writes that end the run."""
    (run_dir / SPACE_RESERVE).unlink(missing_ok=True)


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's metrics.json; OSError when it has none, ValueError when it is not JSON."""
    return json.loads((run_dir / METRICS_FILE).read_text())


def run_status(run_dir: Path) -> RunStatus | None:
    """The status the run recorded; None when it recorded none it could read back.

    None covers a process killed before it wrote metrics.json (SIGKILL, power loss), a torn or foreign
    file, and a task that is not a trainscope run: each caller says what that means for it.
    """
    try:
        return recorded_status(read_metrics(run_dir))
    except (OSError, ValueError):
        return None


def recorded_status(metrics: Any) -> RunStatus | None:
    """The status in the content of a metrics.json; None when it holds none (or is not a JSON object).

    A process training in the run may hold its lock (`trainscope.core.run_lock.lock_holder`) while its
    metrics.json still says how an earlier segment ended: readers that show live runs ask the lock first.
    """
    try:
        return RunStatus(metrics.get("status"))
    except (ValueError, AttributeError):  # AttributeError: JSON that is not an object
        return None


# --------------------------------------------------------------------------------------------------
# is this a run directory?


def has_checkpoint(run_dir: Path) -> bool:
    """Whether `run_dir` holds a checkpoint a resumed run could start from (`last.pt` or `previous.pt`)."""
    return any((run_dir / CHECKPOINT_DIR / name).is_file() for name in (LAST, PREVIOUS))


def check_run_dir(run_dir: Path, argument: str = "run", need_checkpoint: bool = False) -> Path:
    """`run_dir` if it is a training run directory, else a one-line CheckpointError saying what to pass.

    `argument` is the command-line key the user passed it with: `run` (eval.py) or `resume` (train.py,
    which also needs a checkpoint to continue from).
    """
    if argument == "resume":
        if not run_dir.is_dir():
            raise CheckpointError(f"resume={run_dir}: no such directory; pass a run directory under outputs/runs")
        if not (run_dir / SAVED_CONFIG).is_file():
            raise CheckpointError(
                f"resume={run_dir} is not a run directory (no {SAVED_CONFIG}); "
                "pass the directory `python train.py` printed at its start"
            )
    elif not (run_dir / SAVED_CONFIG).is_file():
        raise CheckpointError(
            f"{argument}={run_dir} is not a run directory (no {SAVED_CONFIG} in it); pass a training run's folder, "
            "e.g. run=outputs/runs/<date>/<time>_<overrides>"
        )
    if need_checkpoint and not has_checkpoint(run_dir):
        raise CheckpointError(
            f"{argument}={run_dir} has no checkpoint ({CHECKPOINT_DIR}/{LAST}): it stopped before its first "
            "checkpoint; start it again without resume="
        )
    return run_dir


# --------------------------------------------------------------------------------------------------
# is this directory free for a new run?
#
# A directory *holds a run* when it directly contains any of `metrics.json`, `checkpoints/` or a TensorBoard
# event file: the files a run starts writing once it trains. Anything else is free: a directory that does not
# exist, an empty one, or one with only what a run writes before it trains (`STARTUP_FILES`: `.hydra/`,
# `train.log`, `run.lock`), e.g. left by a run in a directory the user named that stopped at a config error (a
# new run there rewrites `.hydra/` and appends to `train.log`). A run that fails before training in an
# auto-named directory (`unique_dir` made it) removes that directory (`trainscope.cli.train`), so a config or
# data error leaves nothing in `outputs/runs/`; that deletion asks the opposite, stricter question
# (`holds_only_startup_files`: nothing but `STARTUP_FILES`), so a file it does not know is never deleted.
# `resume=<run_dir>` is the one way to write into a directory that holds a run.
#
# The check must run before Hydra writes `.hydra/` into the directory, or the first run's saved config would be
# lost already: single runs are checked in a Hydra `on_run_start` callback
# (`trainscope.cli.hydra_callbacks.RefuseTakenRunDir`), sweep jobs by the sweepers before the launcher starts
# them (`trainscope.sweep.guarded_launcher`).


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
    if not directory.is_dir():
        return []
    found = [name for name in (METRICS_FILE, CHECKPOINT_DIR) if (directory / name).exists()]
    if any(entry.name.startswith(EVENT_FILE_PREFIX) for entry in directory.iterdir()):
        found.append("TensorBoard events")
    return found


STARTUP_FILES = (HYDRA_DIR, TRAIN_LOG, RUN_LOCK)
"""What a run writes into its directory before it trains: Hydra's log, the saved config, the run lock."""


def holds_only_startup_files(directory: Path) -> bool:
    """Whether `directory` holds nothing but `STARTUP_FILES`: no sign of a run having started in it."""
    return directory.is_dir() and all(entry.name in STARTUP_FILES for entry in directory.iterdir())


def check_run_dir_free(run_dir: Path, setting: str, resume: object = None) -> None:
    """Raise RunDirTaken unless `run_dir` is free for a new run; `setting` names the key that chose it.

    `resume` is the run's `resume=` value: the run it continues may write into its own directory.
    """
    if resume is not None and Path(str(resume)).resolve() == run_dir.resolve():
        return
    found = run_files_in(run_dir)
    if found:
        raise RunDirTaken(run_dir, found, setting)


def display_path(path: Path) -> str:
    """`path` as the user would type it: relative to the working directory when inside it, else absolute."""
    absolute = path.resolve()
    cwd = Path(os.getcwd()).resolve()
    return str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else str(absolute)
