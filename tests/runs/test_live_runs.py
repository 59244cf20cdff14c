"""A real run watched by `trainscope-runs` while it trains, after a SIGKILL and after its resume (slow).

One training serves two checks: the table reads a live run as `running` and a killed one as `dead` (their
progress from metrics.csv), and metrics.csv, appended live and cut on resume, ends with every epoch exactly
once, holding the values TensorBoard's own reader finds in the run's event file at the same steps.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import TINY, resume_cli, start_training
from tests.helpers.events import read_events
from tests.helpers.run_dirs import runs_cli
from trainscope.core.metrics_csv import read_rows
from trainscope.tensorboard.writer import EPOCH_TAG

pytestmark = pytest.mark.slow


def table_row(folder: Path) -> dict:
    result = runs_cli(str(folder), "--format", "json", "--columns", "status,epochs,steps,val/acc,run_dir")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    return row


def wait_for_rows(run_dir: Path, count: int, process, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while len(read_rows(run_dir)) < count:
        if process.poll() is not None:
            pytest.fail(f"run ended early:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("metrics.csv did not grow")
        time.sleep(0.05)


def test_a_live_run_reads_running_a_killed_one_dead_and_its_metrics_csv_survives_the_resume(
    tmp_path: Path, data_dir: Path
) -> None:
    run_dir = tmp_path / "runs" / "live"
    process = start_training(
        [*TINY, "trainer.max_epochs=300", "callbacks.early_stopping=null", f"hydra.run.dir={run_dir}"],
        tmp_path / "outputs",
        data_dir,
    )
    try:
        wait_for_rows(run_dir, 2, process)
        live = table_row(tmp_path / "runs")
        assert live["status"] == "running", live
        assert live["epochs"] >= 2 and live["val/acc"] is not None  # read from metrics.csv: no metrics.json yet
        assert not (run_dir / "metrics.json").exists()
        wait_for_rows(run_dir, live["epochs"] + 1, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)  # and closes its output pipe
    dead = table_row(tmp_path / "runs")
    assert dead["status"] == "dead" and dead["epochs"] == len(read_rows(run_dir)) > live["epochs"]

    resumed = resume_cli(run_dir, data_dir, f"trainer.max_epochs={dead['epochs'] + 2}")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    finished = table_row(tmp_path / "runs")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert finished["status"] == "completed" and finished["epochs"] == metrics["epochs_run"] == dead["epochs"] + 2

    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = [int(row["step"]) for row in rows]
    assert [int(row["epoch"]) for row in rows] == list(range(1, metrics["epochs_run"] + 1))  # each epoch once
    assert steps == sorted(set(steps)) and steps[-1] == metrics["global_step"]
    events = read_events(run_dir)
    tags = [tag for tag in rows[0] if tag not in ("wall_time", "step")]
    assert {"val/acc", "lr_epoch", "val_precision/class_0"} <= set(tags)
    assert "health/nonfinite" not in tags  # a health flag is logged once its check fires (issue 29), none here
    assert not {"train/loss_step", "lr"} & set(tags)  # the last batch's step scalars are not the epoch's
    for tag in tags:
        logged = {event.step: event.value for event in events.Scalars(EPOCH_TAG if tag == "epoch" else tag)}
        for row in rows:
            value = float(row[tag])
            # TensorBoard keeps scalars as float32; metrics.csv the float64 the run computed
            assert math.isclose(logged[int(row["step"])], value, rel_tol=1e-6, abs_tol=1e-12), (tag, row["step"])
    for tag in ("train/epoch", "val/acc", "train/loss"):  # epoch-end tags: in TensorBoard at exactly the csv's steps
        assert [event.step for event in events.Scalars(tag)] == steps
