"""`trainscope-runs` on a real grid sweep of 2 learning rates x 3 seeds (`python train.py -m`, slow).

The table's numbers are checked against the six runs' own metrics.json files, read here with `json`.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest

from tests.helpers.cli import TINY, TrainCLI
from tests.helpers.run_dirs import runs_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep directory of `python train.py -m ... optimizer.lr=0.05,0.01 trainer.seed=1,2,3`."""
    root = tmp_path_factory.mktemp("grid")
    train = TrainCLI(root / "outputs", root / "data")
    result = train("-m", *TINY, "optimizer.lr=0.05,0.01", "trainer.seed=1,2,3", "logging=minimal", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    (sweep_dir,) = (root / "outputs" / "multirun").glob("*/*")
    return sweep_dir


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(
        (path for path in sweep_dir.iterdir() if path.is_dir()), key=lambda path: int(path.name.split("_")[0])
    )


def test_the_seed_aggregate_has_one_row_per_learning_rate_with_mean_and_std_of_the_runs(sweep: Path) -> None:
    tags = ("val/acc", "val/acc_best", "val/loss", "test/acc", "test/loss")
    columns = ["optimizer.lr", "n", "runs", "epochs", "epochs:std", "val/loss@best", *tags, *(f"{t}:std" for t in tags)]
    result = runs_cli(str(sweep), "--group-by", "--format", "json", "--columns", ",".join(columns))
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert [group["optimizer.lr"] for group in groups] == [0.05, 0.01]
    for group in groups:
        members = [run for run in run_dirs(sweep) if f"optimizer.lr={group['optimizer.lr']}," in run.name]
        assert len(members) == 3 and group["n"] == 3
        assert group["runs"] == [str(run) for run in members]
        metrics = [json.loads((run / "metrics.json").read_text()) for run in members]
        for tag in tags:
            values = [content["final"][tag] for content in metrics]
            assert group[tag] == statistics.fmean(values), tag
            assert group[f"{tag}:std"] == statistics.stdev(values), tag
        best_loss = [content["best"]["val/loss"] for content in metrics]
        assert group["val/loss@best"] == statistics.fmean(best_loss)
        assert group["epochs"] == 2 and group["epochs:std"] == 0
    table = runs_cli(str(sweep), "--group-by")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["status", "optimizer.lr", "n"]
    assert [line.split()[:4] for line in lines[2:4]] == [
        ["3", "completed", "0.05", "3"],
        ["3", "completed", "0.01", "3"],
    ]


def test_the_runs_table_in_csv_holds_every_run_with_its_checkpoint(sweep: Path) -> None:
    result = runs_cli(str(sweep), "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [Path(row["run_dir"]) for row in rows] == run_dirs(sweep)
    for row in rows:
        run_dir = Path(row["run_dir"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert row["status"] == "completed"
        assert Path(row["checkpoint"]) == run_dir / "checkpoints" / "best.pt" and Path(row["checkpoint"]).is_file()
        assert float(row["val/acc"]) == metrics["final"]["val/acc"]
        assert float(row["test/acc"]) == metrics["test"]["test/acc"]
        assert (int(row["epochs"]), int(row["steps"])) == (metrics["epochs_run"], metrics["global_step"])
        assert (
            f"optimizer.lr={row['optimizer.lr']}" in run_dir.name
            and f"trainer.seed={row['trainer.seed']}" in run_dir.name
        )
    # only what differs between the runs is a column: data, model and the epochs are the same in all six
    assert not {"data", "model", "trainer.max_epochs"} & set(rows[0])
