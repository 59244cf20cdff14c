"""`python train.py -m ...`: a failed run does not stop the grid, and each run is its own HParams session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import TINY, start_training
from tests.helpers.events import read_events
from tests.helpers.tensorboard_server import experiment, metric_values, session_groups, start_tensorboard, wait_for
from trainscope.tensorboard.hparams import DEFAULT_METRICS

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s

GRID = [*TINY, "optimizer=sgd"]
DIVERGING_LR = "1e30"  # SGD at this rate turns the loss into NaN in the first epoch


def last_scalars(run_dir: Path) -> dict[str, float]:
    accumulator = read_events(run_dir)
    return {tag: accumulator.Scalars(tag)[-1].value for tag in accumulator.Tags()["scalars"]}


def test_failed_run_is_recorded_and_the_grid_goes_on(train: Any, tmp_path: Path) -> None:
    # One job per batch: Hydra's basic sweeper would not even start the batches after a failure.
    result = train("-m", *GRID, f"optimizer.lr=0.01,{DIVERGING_LR},0.02", "hydra.sweeper.max_batch_size=1")

    assert result.returncode == 1, result.stdout + result.stderr
    sweep_dirs = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweep_dirs) == 1
    sweep_dir = sweep_dirs[0]
    run_dirs = sorted(path for path in sweep_dir.iterdir() if path.is_dir() and path.name[0].isdigit())
    assert [path.name[0] for path in run_dirs] == ["0", "1", "2"]
    failed_dir = run_dirs[1]
    summary = [line for line in result.stdout.splitlines() if line.startswith("multirun:")]
    assert len(summary) == 1 and summary[0].startswith("multirun: 2 succeeded, 1 failed (")
    assert failed_dir.name in summary[0]
    assert "Traceback" not in result.stderr  # a NaN loss is a user-level failure: one line, no traceback

    url = start_tensorboard(sweep_dir)
    columns = wait_for(lambda: experiment(url).get("hparamInfos"), what="the experiment summary")
    # every run declares all its hyperparameters, the swept one first as the one that differs (issue 29)
    assert [column["name"] for column in columns if column.get("differs")] == ["optimizer.lr"]
    assert columns[0]["name"] == "optimizer.lr" and {"model", "optimizer", "data.batch_size"} <= {
        column["name"] for column in columns
    }
    assert [metric["name"]["tag"] for metric in experiment(url)["metricInfos"]] == list(DEFAULT_METRICS)

    groups = wait_for(lambda: len(session_groups(url)) == 3 and session_groups(url), what="3 sessions")
    sessions = {group["sessions"][0]["name"]: (group, group["sessions"][0]) for group in groups}
    assert set(sessions) == {path.name for path in run_dirs}
    for run_dir, lr, status in zip(
        run_dirs, [0.01, 1e30, 0.02], ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_SUCCESS"], strict=True
    ):
        group, session = sessions[run_dir.name]
        assert session["status"] == status
        assert group["hparams"]["optimizer.lr"] == lr
        assert group["hparams"]["optimizer"] == "sgd" and group["hparams"]["model"] == "mlp"
        logged = last_scalars(run_dir)
        shown = metric_values(session)
        assert set(shown) == {tag for tag in DEFAULT_METRICS if tag in logged}
        for tag, value in shown.items():
            assert value == pytest.approx(logged[tag], nan_ok=True), tag
    assert metric_values(sessions[run_dirs[0].name][1])["train/epoch"] == 2


def test_hparams_tab_follows_a_training_run_live_and_leaves_an_interrupted_run_open_for_resume(
    tmp_path: Path, data_dir: Path
) -> None:
    output_root = tmp_path / "outputs"
    args = [*TINY, "trainer.max_epochs=1000", "callbacks=none", "trainer.test=false"]
    process = start_training(args, output_root, data_dir, stdout=subprocess.DEVNULL)
    try:
        runs_root = output_root / "runs"
        wait_for(lambda: list(runs_root.glob("*/*/*tfevents*")), timeout=60, what="the run's event file")
        url = start_tensorboard(runs_root)

        def live_session() -> dict[str, Any] | None:
            groups = session_groups(url)
            return groups[0]["sessions"][0] if groups else None

        def epochs_shown() -> float:
            return metric_values(live_session() or {}).get("train/epoch", 0.0)

        session = wait_for(lambda: epochs_shown() >= 1 and live_session(), timeout=30, what="a first epoch")
        assert session["status"] == "STATUS_UNKNOWN"  # no end info while training
        first = epochs_shown()
        wait_for(lambda: epochs_shown() > first, timeout=30, what="a later epoch to show up")

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
        # Interrupted, not ended: no end info (status stays Unknown) until `resume=` finishes the run.
        interrupted = wait_for(
            lambda: metric_values(live_session() or {}).get("trial_state") == 4 and live_session(),
            what="trial_state 4",
        )
        assert interrupted["status"] == "STATUS_UNKNOWN"
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_ctrl_c_stops_a_grid_with_one_line_and_exit_130(tmp_path: Path, data_dir: Path) -> None:
    output_root = tmp_path / "outputs"
    args = ["-m", *TINY, "trainer.max_epochs=1000", "callbacks=none", "optimizer.lr=0.01,0.02"]
    process = start_training(args, output_root, data_dir)
    try:
        wait_for(lambda: list(output_root.glob("multirun/*/*/0_*/*tfevents*")), timeout=60, what="the first run")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in output
    assert "multirun: interrupted after 0 finished runs" in output
    (first_run,) = output_root.glob("multirun/*/*/0_*")
    assert json.loads((first_run / "metrics.json").read_text())["status"] == "interrupted"
    assert not list(output_root.glob("multirun/*/*/1_*"))  # the rest of the grid did not start
