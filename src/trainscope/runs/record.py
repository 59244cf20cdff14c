"""One run directory as the runs table sees it, read from `metrics.json` and the saved `.hydra/` files only.

A run directory is untrusted input (it may come from anyone): its YAML is read with PyYAML's safe loader (no
tags, no objects built; of `${...}` interpolations only references to other keys are looked up, no resolver is
ever called), every file is size-capped, and a file that cannot be read makes the run a row marked `unreadable`
with the reason, never an exception.

A run's status is read live: `running` while a process holds its lock (`trainscope.core.run_lock.lock_holder`),
even when its metrics.json still says how an earlier segment ended; otherwise the status metrics.json recorded;
`dead` when no process holds it and it recorded nothing (killed by SIGKILL, out of memory, a power loss: every
other ending writes metrics.json). Running and dead runs show their progress from `metrics.csv`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainscope.core.metrics_csv import EPOCH, STEP, WALL_TIME, read_rows
from trainscope.core.run_dir import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    METRICS_CSV,
    METRICS_FILE,
    RUN_LOCK,
    SAVED_CONFIG,
    SAVED_HYDRA_CONFIG,
    SAVED_OVERRIDES,
    RunStatus,
    best_values,
    recorded_status,
)
from trainscope.core.run_lock import lock_holder

DEAD = "dead"
UNREADABLE = "unreadable"
MAX_FILE_BYTES = 16 * 1024 * 1024
"""A run's metrics.json and .hydra/ files are a few KB; anything larger is not read (a hostile run directory)."""

NOT_HYPERPARAMETERS = ("resume", "allow_targets")
"""Overrides that say how a run was started, not what it is: `resume=` is added by a resumed run's command line."""

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")
"""`${a.b}`: a reference to another key of the config; anything else in `${...}` is a resolver call."""


class Unreadable(ValueError):
    """A file of the run directory that exists but cannot be read as what it should be."""


@dataclass
class RunRecord:
    """What the table shows of one run; every field may be missing in a broken or dead run directory."""

    run_dir: Path
    status: str  # a RunStatus value, DEAD or UNREADABLE
    reason: str = ""  # why it stopped or failed (metrics.json), or why it is unreadable
    overrides: dict[str, str] = field(default_factory=dict)  # key -> value as typed, from .hydra/overrides.yaml
    monitor: str | None = None  # the metric checkpoints/best.pt was chosen by
    monitor_mode: str = "max"
    optimized: tuple[str, ...] = ()  # the metric(s) the run returned to sweepers
    final: dict[str, float] = field(default_factory=dict)  # the last epoch's metrics and test metrics
    best: dict[str, float] = field(default_factory=dict)  # best value of every epoch metric
    test: dict[str, float] = field(default_factory=dict)
    epochs: int | None = None
    steps: int | None = None
    wall_seconds: float | None = None
    checkpoint: Path | None = None  # best.pt, else last.pt: what eval.py would test
    _config: dict[str, Any] | None = None
    _choices: dict[str, Any] | None = None

    def saved_config(self) -> dict[str, Any]:
        """The saved config as plain YAML ({} when unreadable), read on first use: most runs never need it, and
        parsing it is most of the time a table of 1,000 runs would take."""
        if self._config is None:
            try:
                config = read_run_yaml(self.run_dir / SAVED_CONFIG, default={})
            except Unreadable:
                config = None
            self._config = config if isinstance(config, dict) else {}
        return self._config

    def setting(self, key: str) -> Any:
        """The run's value of `key`: its override, else the saved config's plain value (a config group: the option
        Hydra chose, from .hydra/hydra.yaml); None when the run directory does not say."""
        if key in self.overrides:
            return self.overrides[key]
        if isinstance(_path(self.saved_config(), *key.split(".")), dict):  # a config group such as `model`
            if self._choices is None:
                try:
                    hydra = read_run_yaml(self.run_dir / SAVED_HYDRA_CONFIG, default={})
                except Unreadable:
                    hydra = {}
                choices = _path(hydra, "hydra", "runtime", "choices")
                self._choices = choices if isinstance(choices, dict) else {}
            value = self._choices.get(key)
            return value if isinstance(value, str | int | float | bool) else None
        return config_value(self.saved_config(), key)


def config_value(config: Any, key: str) -> str | int | float | bool | None:
    """The plain value of dotted `key` in a saved config, its `${other.key}` references looked up the same way.

    Only references to other keys are followed (`${task.monitor.metric}_best`); a resolver (`${oc.env:HOME}`,
    `${now:...}`) is never called, since a run directory is untrusted: such a value is None, as is a cycle.
    """
    return _resolved(config, _path(config, *key.split(".")))


def _resolved(config: Any, value: Any, depth: int = 0) -> str | int | float | bool | None:
    if not isinstance(value, str) or "${" not in value:
        return value if isinstance(value, str | int | float | bool) else None
    if depth > 8:
        return None
    if _REFERENCE.fullmatch(value):  # `${a.b}` alone keeps the referenced value's type
        return _resolved(config, _path(config, *value[2:-1].split(".")), depth + 1)

    def referenced(match: re.Match[str]) -> str:
        found = _resolved(config, _path(config, *match.group(1).split(".")), depth + 1)
        if found is None:
            raise LookupError(match.group(1))
        return str(found)

    try:
        resolved = _REFERENCE.sub(referenced, value)
    except LookupError:
        return None
    return None if "${" in resolved else resolved


def read_run(run_dir: Path) -> RunRecord:
    """The record of the run in `run_dir`; never raises for what is in the directory."""
    record = RunRecord(run_dir=run_dir, status=DEAD)
    problems: list[str] = []
    try:
        record.overrides = _overrides(read_run_yaml(run_dir / SAVED_OVERRIDES, default=[]))
    except Unreadable as error:
        problems.append(str(error))
    metrics = None
    try:
        metrics = _load_json(run_dir / METRICS_FILE)
    except Unreadable as error:
        problems.append(str(error))
    if metrics is not None:
        _from_metrics(record, metrics, problems)
    if record.monitor is None or not record.optimized:  # not ended yet, or ended before metrics.json named them
        _monitor_from_config(record)
    if lock_holder(run_dir) is not None:
        record.status = str(RunStatus.RUNNING)
        record.test = {}  # an earlier segment's test: the run tests again when it ends
        _from_metrics_csv(record, problems)
        record.wall_seconds = _seconds_since_start(run_dir)
    elif metrics is None:
        _from_metrics_csv(record, problems)
    if problems:
        record.status, record.reason = UNREADABLE, "; ".join(problems)
    record.checkpoint = next(
        (path for path in (run_dir / CHECKPOINT_DIR / name for name in (BEST, LAST)) if path.is_file()), None
    )
    return record


def _from_metrics(record: RunRecord, metrics: Any, problems: list[str]) -> None:
    if not isinstance(metrics, dict):
        problems.append(f"{METRICS_FILE} is not a JSON object")
        return
    status = recorded_status(metrics)
    if status is None:
        problems.append(f"{METRICS_FILE} records no status")
    else:
        record.status = str(status)
    record.reason = metrics.get("reason") if isinstance(metrics.get("reason"), str) else ""
    record.final, record.best, record.test = (_numbers(metrics.get(key)) for key in ("final", "best", "test"))
    record.epochs = _integer(metrics.get("epochs_run"))
    record.steps = _integer(metrics.get("global_step"))
    wall = metrics.get("wall_time_seconds")
    record.wall_seconds = float(wall) if is_number(wall) else None
    optimized = metrics.get("optimized_metric")
    names = optimized if isinstance(optimized, list) else [optimized]
    if all(isinstance(name, str) for name in names) and names:
        record.optimized = tuple(names)
    monitor = metrics.get("monitor")
    if isinstance(monitor, dict) and isinstance(monitor.get("metric"), str):
        record.monitor = monitor["metric"]
        record.monitor_mode = "min" if monitor.get("mode") == "min" else "max"


def _monitor_from_config(record: RunRecord) -> None:
    """The monitored and optimized metrics as the saved config names them (runs that wrote no metrics.json yet)."""
    config = record.saved_config()
    metric, mode = config_value(config, "monitor.metric"), config_value(config, "monitor.mode")
    if record.monitor is None and isinstance(metric, str):
        record.monitor = metric
        record.monitor_mode = "min" if mode == "min" else "max"
    optimized = config.get("optimized_metric")
    names = [_resolved(config, name) for name in (optimized if isinstance(optimized, list) else [optimized])]
    if not record.optimized and names and all(isinstance(name, str) for name in names):
        record.optimized = tuple(str(name) for name in names)


def _from_metrics_csv(record: RunRecord, problems: list[str]) -> None:
    """Progress of a run that has not ended (or died): its last metrics.csv row, and the best of every column."""
    try:
        info = (record.run_dir / METRICS_CSV).lstat()
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:  # a FIFO would block the read
        problems.append(f"{METRICS_CSV} is not a file of at most {MAX_FILE_BYTES // 2**20} MiB")
        return
    rows = read_rows(record.run_dir)
    if not rows:
        return
    history = [{tag: value for tag, value in row.items() if tag not in (WALL_TIME, STEP)} for row in rows]
    record.final = history[-1]
    modes = {record.monitor: record.monitor_mode} if record.monitor else {}
    record.best = best_values(history, modes)
    record.epochs = _integer(rows[-1].get(EPOCH))
    record.steps = _integer(rows[-1].get(STEP))


def _seconds_since_start(run_dir: Path) -> float | None:
    """How long the process training in the run has run: its lock is written when it starts (or resumes)."""
    try:
        return max(0.0, time.time() - (run_dir / RUN_LOCK).stat().st_mtime)
    except OSError:
        return None


def _overrides(content: Any) -> dict[str, str]:
    """`["optimizer.lr=0.01", "+x=1", ...]` as `{"optimizer.lr": "0.01", "x": "1"}`, quotes taken off."""
    if not isinstance(content, list) or not all(isinstance(item, str) for item in content):
        raise Unreadable(f"{SAVED_OVERRIDES} is not a list of key=value overrides")
    overrides = {}
    for item in content:
        key, equals, value = item.partition("=")
        key = key.lstrip("+~").strip()
        if not equals or not key or key in NOT_HYPERPARAMETERS:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        overrides[key] = value
    return overrides


def _read_capped(path: Path) -> str | None:
    """The file's text; None when it does not exist; Unreadable when it is too large, not a file or not text."""
    try:  # O_NONBLOCK: opening a FIFO planted in the run directory must not wait for a writer
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK)) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise Unreadable(f"{_name(path)} is not a file")
            content = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Unreadable(f"{_name(path)}: {error.strerror or error}") from None
    if len(content) > MAX_FILE_BYTES:
        raise Unreadable(f"{_name(path)} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        return content.decode()
    except UnicodeDecodeError:
        raise Unreadable(f"{_name(path)} is not UTF-8 text") from None


def read_run_yaml(path: Path, default: Any) -> Any:
    """A run directory's YAML file as plain data (`default` when it does not exist); Unreadable when broken."""
    text = _read_capped(path)
    if text is None:
        return default
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - the safe loader: builds no objects
    except yaml.YAMLError as error:
        raise Unreadable(f"{_name(path)} is not valid YAML ({str(error).splitlines()[0]})") from None
    except RecursionError:
        raise Unreadable(f"{_name(path)} is nested too deeply") from None


def _load_json(path: Path) -> Any:
    text = _read_capped(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise Unreadable(f"{_name(path)} is not valid JSON ({error})") from None
    except RecursionError:
        raise Unreadable(f"{_name(path)} is nested too deeply") from None


def _name(path: Path) -> str:
    """`metrics.json` or `.hydra/config.yaml`: the file as the run directory's contract names it."""
    return str(Path(path.parent.name, path.name)) if path.parent.name.startswith(".") else path.name


def _path(mapping: Any, *keys: str) -> Any:
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping


def is_number(value: Any) -> bool:
    """An int or float cell (NaN included), not a bool: what sorts, filters and averages as a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> int | None:
    return int(value) if is_number(value) and float(value).is_integer() else None


def _numbers(content: Any) -> dict[str, float]:
    """The numeric entries of a metrics mapping; null (how metrics.json writes NaN and Inf) reads as NaN."""
    if not isinstance(content, dict):
        return {}
    return {
        str(tag): float(value) if is_number(value) else float("nan")
        for tag, value in content.items()
        if is_number(value) or value is None
    }
