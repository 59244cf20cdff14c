"""The seed aggregate a grid sweep ends with, on run directories written as runs write them (fast).

The real grid (`python train.py -m ... trainer.seed=1,2,3`) and TensorBoard's server are in test_seed_grid.py.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from tests.helpers.events import read_events
from tests.helpers.run_dirs import fake_run
from trainscope.runs.sweep_aggregate import seed_aggregate, write_aggregate


def test_failed_runs_are_left_out_of_the_means_and_each_configuration_gets_its_mean_curves(tmp_path: Path) -> None:
    accuracies = {}
    for number, (lr, seed) in enumerate((lr, seed) for lr in ("0.1", "0.01") for seed in (1, 2, 3)):
        accuracies[lr, seed] = [0.25 + seed / 16, 0.5 + seed / 32 + (lr == "0.1") / 8]
        status = "failed" if (lr, seed) == ("0.01", 3) else "completed"
        overrides = [f"optimizer.lr={lr}", f"trainer.seed={seed}"]
        fake_run(tmp_path / f"{number}_lr={lr},seed={seed}", overrides, accuracies[lr, seed], status=status)
    table, records, keys = seed_aggregate(tmp_path)
    assert keys == ["optimizer.lr"] and [(row["optimizer.lr"], row["n"]) for row in table.rows] == [(0.1, 3), (0.01, 2)]
    assert table.rows[1]["status"] == "2 completed"

    write_aggregate(tmp_path, table, records, keys)
    (text,) = read_events(tmp_path).Tensors("sweep/aggregate")
    assert "| 0.01 | 2 |" in text.tensor_proto.string_val[0].decode()
    for lr, seeds in (("0.1", (1, 2, 3)), ("0.01", (1, 2))):
        events = read_events(tmp_path / "aggregate" / f"optimizer.lr={float(lr)}")
        assert [event.step for event in events.Scalars("val/acc")] == [10, 20]
        for epoch, (mean, spread) in enumerate(
            zip(events.Scalars("val/acc"), events.Scalars("val/acc_std"), strict=True)
        ):
            values = [accuracies[lr, seed][epoch] for seed in seeds]
            assert mean.value == pytest.approx(statistics.fmean(values), rel=1e-6)
            assert spread.value == pytest.approx(statistics.stdev(values), rel=1e-5)
        assert set(events.PluginTagToContent("hparams")) == {
            "_hparams_/session_start_info",
            "_hparams_/session_end_info",
        }

    write_aggregate(tmp_path, table, records, keys)  # a rerun of the grid: written again, not twice
    assert len(list((tmp_path / "aggregate" / "optimizer.lr=0.1").glob("events.out.tfevents.*"))) == 1


def test_a_grid_without_repeated_configurations_has_no_aggregate(tmp_path: Path) -> None:
    fake_run(tmp_path / "0_lr=0.1", ["optimizer.lr=0.1"], [0.5])
    fake_run(tmp_path / "1_lr=0.2", ["optimizer.lr=0.2"], [0.6])
    assert seed_aggregate(tmp_path) is None
