"""metrics.csv in-process: rows appended one at a time, widened for a new tag, cut after a resumed checkpoint (fast)."""

from __future__ import annotations

import csv
import fcntl
import os
import threading
import time
from pathlib import Path

from trainscope.core.metrics_csv import append_row, cut_rows_after, read_rows
from trainscope.core.run_dir import METRICS_CSV, RUN_LOCK
from trainscope.core.run_lock import lock_holder, run_lock


def rows_as_text(run_dir: Path) -> list[list[str]]:
    with open(run_dir / METRICS_CSV, newline="") as handle:
        return list(csv.reader(handle))


def test_each_row_is_in_the_file_as_soon_as_it_is_appended(tmp_path: Path) -> None:
    append_row(tmp_path, 100.5, 10, {"train/loss": 0.5, "epoch": 1.0, "val/acc": 0.25})
    assert rows_as_text(tmp_path) == [
        ["wall_time", "step", "epoch", "train/loss", "val/acc"],
        ["100.5", "10", "1", "0.5", "0.25"],
    ]
    append_row(tmp_path, 101.0, 20, {"train/loss": float("nan"), "epoch": 2.0, "val/acc": 1 / 3})
    assert rows_as_text(tmp_path)[2] == ["101", "20", "2", "nan", repr(1 / 3)]
    assert read_rows(tmp_path)[1]["val/acc"] == 1 / 3  # full precision


def test_a_tag_first_logged_later_widens_the_header_and_keeps_the_rows(tmp_path: Path) -> None:
    append_row(tmp_path, 1.0, 10, {"epoch": 1.0, "train/loss": 0.5})
    append_row(tmp_path, 2.0, 20, {"epoch": 2.0, "train/loss": 0.4, "val/acc": 0.75})
    assert rows_as_text(tmp_path) == [
        ["wall_time", "step", "epoch", "train/loss", "val/acc"],
        ["1", "10", "1", "0.5", ""],
        ["2", "20", "2", "0.4", "0.75"],
    ]
    assert read_rows(tmp_path)[0] == {"wall_time": 1.0, "step": 10.0, "epoch": 1.0, "train/loss": 0.5}


def test_a_resume_cuts_the_rows_after_its_checkpoint_and_a_torn_last_line(tmp_path: Path) -> None:
    for epoch in (1, 2, 3):
        append_row(tmp_path, float(epoch), 10 * epoch, {"epoch": float(epoch), "val/acc": epoch / 4})
    with open(tmp_path / METRICS_CSV, "a") as handle:
        handle.write("4,40,4,0.")  # the killed process was writing epoch 4
    assert [row["step"] for row in read_rows(tmp_path)] == [10, 20, 30]
    cut_rows_after(tmp_path, 20)  # the checkpoint it resumes from: step 20
    assert [row[1] for row in rows_as_text(tmp_path)] == ["step", "10", "20"]
    append_row(tmp_path, 5.0, 30, {"epoch": 3.0, "val/acc": 0.5})
    assert [row["step"] for row in read_rows(tmp_path)] == [10, 20, 30]
    cut_rows_after(tmp_path / "elsewhere", 0)  # no file yet (a fresh run): nothing to do, nothing created
    assert not (tmp_path / "elsewhere").exists()


def test_the_lock_probe_tells_a_live_run_and_never_refuses_one_that_starts(tmp_path: Path) -> None:
    assert lock_holder(tmp_path) is None  # no run.lock at all
    with run_lock(tmp_path):
        assert lock_holder(tmp_path) is not None  # held (this process: flock is per open file)
    assert lock_holder(tmp_path) is None
    # A reader's probe holds a shared lock for an instant: a run starting then waits for it, it is not refused.
    descriptor = os.open(tmp_path / RUN_LOCK, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    threading.Timer(0.2, lambda: os.close(descriptor)).start()
    started = time.monotonic()
    with run_lock(tmp_path):
        assert time.monotonic() - started >= 0.15
