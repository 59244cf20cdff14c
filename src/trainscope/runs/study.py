"""The end of an Optuna sweep, and `trainscope-runs --study <sweep dir>`: the study report and best.yaml.

The sweeper calls `report_study` with its study once every trial has ended; `trainscope-runs --study` opens the
study a sweep directory recorded (its journal file, or the storage `--storage` names) and does the same, so a
report can be made again at any time, e.g. while cooperating sweeps still add trials.
"""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import yaml

from trainscope.core.errors import ConfigError, first_line
from trainscope.core.run_dir import display_path
from trainscope.runs.best_config import write_best_config
from trainscope.runs.study_report import study_report, write_report
from trainscope.sweep.optuna.results import RESULTS_FILE
from trainscope.trial.storage import JOURNAL_FILE_NAME, StorageError, is_rdb_url, open_storage, redact


def report_study(study: optuna.Study, sweep_dir: Path) -> list[str]:
    """Write the report (and best.yaml for one objective) into `sweep_dir`; the lines that say where they are."""
    report = study_report(study)
    path = write_report(report, sweep_dir)
    shown = display_path(sweep_dir)
    lines = [
        f"report: {display_path(path)} ({len(report.images)} charts; in TensorBoard: tensorboard --logdir {shown})"
    ]
    if len(report.directions) == 1 and report.best:
        (best,) = report.best
        best_yaml = write_best_config(sweep_dir, best, report.metric_names[0], study.study_name)
        if best_yaml is not None:
            lines.append(
                f"best trial {best.number} as a config: {display_path(best_yaml)}; run it again with: "
                f"python train.py --config-dir {shown} experiment=best"
            )
    return lines


def report_at_end(study: optuna.Study, sweep_dir: Path) -> None:
    """`report_study` at the end of a sweep, its lines printed: a report that cannot be written (a full disk, a
    chart that cannot be drawn) is a warning, never the failure of a sweep whose trials are all recorded."""
    try:
        lines = report_study(study, sweep_dir)
    except Exception as error:  # noqa: BLE001 - the study and its runs are safe; say what is missing
        print(
            f"warning: no study report in {display_path(sweep_dir)}: {first_line(error)}", file=sys.stderr, flush=True
        )
        return
    for line in lines:
        print(f"[optuna] {line}", flush=True)


def open_sweep_study(sweep_dir: Path, storage: str | None = None, study_name: str | None = None) -> optuna.Study:
    """The study the Optuna sweep in `sweep_dir` ran: its journal file there, or `storage`; one-line errors."""
    if not sweep_dir.is_dir():
        raise ConfigError(f"--study {sweep_dir}: no such folder; pass an Optuna sweep's directory")
    recorded = _recorded_results(sweep_dir)
    if storage is None:
        journal = sweep_dir / JOURNAL_FILE_NAME
        if journal.is_file():
            storage = str(journal.resolve())
        elif is_rdb_url(str(recorded.get("storage", ""))):
            raise ConfigError(
                f"--study {sweep_dir}: its study is in a database ({redact(str(recorded['storage']))}); pass "
                "--storage <url> with the password"
            )
        else:
            raise ConfigError(
                f"--study {sweep_dir} holds no Optuna study ({JOURNAL_FILE_NAME} or {RESULTS_FILE}); pass the "
                "directory an Optuna sweep printed, or --storage <journal file or url>"
            )
    try:
        opened = open_storage(storage, heartbeat=False)
        names = [summary.study_name for summary in optuna.get_all_study_summaries(opened)]
    except StorageError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the storage says, in one line
        raise ConfigError(f"--study {sweep_dir}: cannot open {redact(storage)}: {error}") from None
    name = study_name or recorded.get("study_name") or (names[0] if len(names) == 1 else None)
    if name not in names:
        raise ConfigError(
            f"--study {sweep_dir}: {redact(storage)} holds "
            + (f"no study {name!r}" if name else f"{len(names)} studies")
            + f"; pass --study-name, one of: {', '.join(names) or '(none)'}"
        )
    return optuna.load_study(study_name=name, storage=opened)


def _recorded_results(sweep_dir: Path) -> dict:
    try:
        content = yaml.safe_load((sweep_dir / RESULTS_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return content if isinstance(content, dict) else {}
