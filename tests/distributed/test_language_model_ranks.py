"""A language model in a torchrun job: 2 ranks at batch B equal 1 process at batch 2B, with gradient
accumulation (`no_sync` on the accumulating batches) on both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.distributed.test_data_parallel import finish, torchrun
from tests.helpers.cli import run_script, single_run_dir
from tests.helpers.lm_runs import TINY_LM

RUN = [
    *TINY_LM,
    "trainer.device=cpu",
    "trainer.max_steps=8",
    "trainer.val_check_interval=4",
    "trainer.accumulate_grad_batches=2",
    "logging.samples.prompts=[]",
]


@pytest.mark.slow
def test_two_ranks_train_a_language_model_as_one_process_at_twice_the_batch(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    one = run_script("train.py", [*RUN, "data.batch_size=8"], tmp_path / "one", data_dir)
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(["--nproc_per_node=2"], [*RUN, "data.batch_size=4"], tmp_path / "two", data_dir)
    output = finish(two)
    assert two.returncode == 0, output[-3000:]
    runs = {name: single_run_dir(tmp_path / name) for name in ("one", "two")}
    metrics = {name: json.loads((run / "metrics.json").read_text()) for name, run in runs.items()}
    assert metrics["one"]["global_step"] == metrics["two"]["global_step"] == 8
    for tag in ("val/loss", "val/ppl", "train/loss"):
        assert metrics["two"]["final"][tag] == pytest.approx(metrics["one"]["final"][tag], rel=1e-5), tag
    weights = {
        name: torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"] for name, run in runs.items()
    }
    for name, tensor in weights["one"].items():
        assert torch.allclose(weights["two"][name], tensor, atol=1e-5, rtol=0), name
