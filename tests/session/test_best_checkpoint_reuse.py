"""The test phase uses the best weights, without reading back the best.pt it has just written when the model
still holds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.helpers.cli import TINY, TrainCLI
from trainscope.core.checkpoint_io import weights_fingerprint


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def test_fingerprint_changes_with_every_kind_of_weight_change() -> None:
    model = small_model()
    before = weights_fingerprint(model)
    model.eval()
    with torch.no_grad():
        model(torch.randn(5, 4))
    assert weights_fingerprint(model) == before  # evaluation changes nothing

    model.train()
    model(torch.randn(5, 4))  # BatchNorm's running statistics move
    after_forward = weights_fingerprint(model)
    assert after_forward != before

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(5, 4)).sum().backward()
    after_backward = weights_fingerprint(model)
    optimizer.step()
    assert weights_fingerprint(model) != after_backward

    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    loaded = weights_fingerprint(model)
    model.load_state_dict(state)  # same values, but copied in: counted as a change
    assert weights_fingerprint(model) != loaded

    replaced = weights_fingerprint(model)
    model[0].weight = nn.Parameter(torch.zeros(3, 4))
    assert weights_fingerprint(model) != replaced


class WithExtraState(nn.Module):
    """A module whose state_dict holds a non-tensor (`get_extra_state`), as some quantized layers do."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def get_extra_state(self) -> dict[str, int]:
        return {"calibrated": 1}

    def set_extra_state(self, state: dict[str, int]) -> None: ...


def test_state_a_fingerprint_cannot_follow_never_matches() -> None:
    """Extra state or a sparse buffer: the best checkpoint is then always read back."""
    model = WithExtraState()
    assert weights_fingerprint(model) != weights_fingerprint(model)
    plain = small_model()
    assert weights_fingerprint(plain) == weights_fingerprint(plain)
    plain.register_buffer(
        "mask", torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([1.0]), (3,), check_invariants=True)
    )
    assert weights_fingerprint(plain) != weights_fingerprint(plain)


def trained_test_metrics(train: TrainCLI, *overrides: str) -> tuple[Path, dict[str, Any]]:
    result = train(*TINY, *overrides)
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def evaluated(train: TrainCLI, run_dir: Path, checkpoint: str) -> dict[str, float]:
    """`python eval.py run=<run_dir> checkpoint=<checkpoint>`: that checkpoint's test metrics, read from disk."""
    result = TrainCLI(train.output_root, train.data_dir, script="eval.py")(f"run={run_dir}", f"checkpoint={checkpoint}")
    assert result.returncode == 0, result.stderr
    return json.loads((run_dir / "metrics.json").read_text())["test"]


@pytest.mark.slow
def test_last_epoch_best_is_tested_with_the_best_weights(train: TrainCLI) -> None:
    run_dir, metrics = trained_test_metrics(train)
    assert metrics["best"]["val/acc"] == metrics["final"]["val/acc"]  # the last epoch was (one of) the best
    assert evaluated(train, run_dir, "best") == pytest.approx(metrics["test"], rel=1e-6)


@pytest.mark.slow
def test_an_earlier_best_epoch_is_read_back_for_the_test(train: TrainCLI) -> None:
    """monitor.mode=min on val/acc: the first epoch stays "best", the model trains on: best.pt must be loaded."""
    run_dir, metrics = trained_test_metrics(train, "monitor.mode=min")
    from_best = evaluated(train, run_dir, "best")
    from_last = evaluated(train, run_dir, "last")
    assert from_best == pytest.approx(metrics["test"], rel=1e-6)
    assert from_last["test/loss"] != pytest.approx(from_best["test/loss"], rel=1e-6)
