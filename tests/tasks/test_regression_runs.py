"""`task=regression` end to end: the shipped diabetes table, its scatter and residual panels, eval.py, and a
table with several targets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import TrainCLI, run_script
from tests.helpers.events import read_events

FAST = ["logging.progress_bar=false"]


@pytest.mark.slow
def test_the_diabetes_experiment_reaches_a_test_r2_a_statistician_accepts(train: TrainCLI) -> None:
    result = train("experiment=diabetes_regression", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["optimized_metric"] == "val/r2_best"
    test = summary["test"]
    assert test["test/r2"] >= 0.45, test  # ordinary least squares: ~0.49 in 5-fold cross-validation
    assert 40 < test["test/rmse"] < 70 and 30 < test["test/mae"] < 60, "in the target's units (25-346)"
    assert summary["best"]["val/rmse"] <= summary["final"]["val/rmse"], "best RMSE is the lowest"

    events = read_events(run_dir)
    tags = events.Tags()
    assert {"val/predicted_vs_true"} <= set(tags["images"])
    assert "images/train_inputs" not in tags["images"], "a table has no picture to show"
    assert "val/residuals" in tags["histograms"]
    scatter = events.Images("val/predicted_vs_true")
    assert len(scatter) == summary["epochs_run"] and scatter[-1].width > 300
    assert {"val/r2", "val/r2_best", "val/rmse", "val/mae", "val/mse", "train/rmse", "test/r2"} <= set(tags["scalars"])
    assert not [tag for tag in tags["scalars"] if "acc" in tag]

    evaluated = run_script("eval.py", [f"run={run_dir}"], train.output_root, train.data_dir)
    assert evaluated.returncode == 0, evaluated.stderr
    printed = dict(line.split() for line in evaluated.stdout.splitlines() if line.startswith("test/"))
    assert float(printed["test/r2"]) == pytest.approx(test["test/r2"], abs=1e-5)


def write_houses(path: Path, rows: int = 240) -> Path:
    generator = torch.Generator().manual_seed(0)
    area = 50 + 100 * torch.rand(rows, generator=generator)
    rooms = torch.randint(1, 6, (rows,), generator=generator).float()
    district = ["north", "south", "east"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["area", "rooms", "district", "price", "rent"])
        for row in range(rows):
            where = district[row % 3]
            price = 3000 * area[row] + 20000 * rooms[row] + (50000 if where == "south" else 0)
            writer.writerow([f"{area[row]:.1f}", int(rooms[row]), where, f"{price:.0f}", f"{area[row] * 12:.1f}"])
    return path


@pytest.mark.slow
def test_several_targets_from_a_table_with_a_string_column(train: TrainCLI, tmp_path: Path) -> None:
    table = write_houses(tmp_path / "houses.csv")
    result = train(
        "task=regression", "data=table", f"data.path={table}", "data.target=[price,rent]", "model=mlp",
        "optimizer.lr=0.01", "trainer.max_epochs=25", "logging=full", "trainer.channels_last=true", *FAST,
    )  # fmt: skip  # every panel and image-only switch on: those that need images switch themselves off
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = train.run_dir()
    tags = read_events(run_dir).Tags()
    assert not [tag for tag in tags["images"] if tag.startswith("images/")], "no image grids of a table"
    for name in ("price", "rent"):
        assert {f"val_r2/{name}", f"val_rmse/{name}", f"val_mae/{name}", f"test_r2/{name}"} <= set(tags["scalars"])
        assert f"val_predicted_vs_true/{name}" in tags["images"] and f"val_residuals/{name}" in tags["histograms"]
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert test["test_r2/price"] > 0.9 and test["test_r2/rent"] > 0.9  # 'district' one-hot encoded helps price
    checkpoint = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["data"]["features"] == ["area", "rooms", "district=east", "district=north", "district=south"]
    assert checkpoint["task"]["target_names"] == ["price", "rent"]
