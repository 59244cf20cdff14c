"""A regression on a table trains in 2 processes (batch B each) exactly as in one process at batch 2B: the task's
target scaling, its metric sums and the table's shards agree across ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import run_script, single_run_dir

RUN = [
    "task=regression",
    "data=diabetes",  # 310 training rows: 10 steps of 32, or of 16 per rank, the last one 22 = 11 + 11
    "model=mlp",
    "model.hidden_sizes=[8]",
    "trainer.max_epochs=2",
    "trainer.device=cpu",
    "logging.progress_bar=false",
]


@pytest.mark.slow
def test_two_ranks_regress_as_one_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    one = run_script("train.py", [*RUN, "data.batch_size=32"], tmp_path / "one", data_dir)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_script("train.py", [*RUN, "data.batch_size=16", "trainer.devices=2"], tmp_path / "two", data_dir)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    runs = [single_run_dir(tmp_path / name) for name in ("one", "two")]
    metrics = [json.loads((run / "metrics.json").read_text())["final"] for run in runs]
    for tag in ("train/loss", "train/rmse", "val/loss", "val/r2", "val/rmse", "val/mae", "test/r2", "test/rmse"):
        assert metrics[1][tag] == pytest.approx(metrics[0][tag], rel=1e-4), tag
    checkpoints = [torch.load(run / "checkpoints" / "last.pt", weights_only=True) for run in runs]
    assert torch.equal(checkpoints[0]["task"]["mean"], checkpoints[1]["task"]["mean"])
    for name, tensor in checkpoints[0]["model"].items():
        assert torch.allclose(checkpoints[1]["model"][name], tensor, atol=1e-5, rtol=0), name
