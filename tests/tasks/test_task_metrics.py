"""The built-in tasks' metrics are sums kept on the device; read once, they equal torchmetrics' on the same
predictions (torchmetrics is the reference here, not a dependency of the built-in tasks)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torchmetrics.classification import MultilabelAveragePrecision, MultilabelF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from tests.helpers.task_data import MultiLabelVectors
from trainscope.data import build_custom_data, build_table_data
from trainscope.data.targets import MULTI_HOT
from trainscope.tasks import MultiLabel, Regression


def write_table(path: Path, rows: int = 200) -> Path:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(rows, 3, generator=generator)
    price = 1000 + 300 * features[:, 0] + 50 * torch.randn(rows, generator=generator)
    rent = 20 + 4 * features[:, 1]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "price", "rent"])
        for row in range(rows):
            writer.writerow([*features[row].tolist(), float(price[row]), float(rent[row])])
    return path


def table_data(path: Path, target: list[str] | str) -> object:
    return build_table_data(
        path=str(path), target=target, batch_size=16, val_fraction=0.2, test_fraction=0.2, split_seed=0,
        device="cpu", seed=0,
    )  # fmt: skip


def test_regression_metrics_equal_torchmetrics_in_the_targets_units(tmp_path: Path) -> None:
    data = table_data(write_table(tmp_path / "houses.csv"), ["price", "rent"])
    task = Regression()
    task.bind(data)
    assert task.target_names == ["price", "rent"] and task.output_size == 2
    generator = torch.Generator().manual_seed(1)
    evaluator = task.evaluator(torch.device("cpu"))
    predictions, truths = [], []
    for _, targets in data.val:
        outputs = torch.randn(len(targets), 2, generator=generator) * 0.5 + task.standardized(targets)
        evaluator.update(outputs, targets)
        predictions.append(task.predictions(outputs))
        truths.append(targets)
    metrics = evaluator.result(lambda sums: sums)
    predicted, true = torch.cat(predictions), torch.cat(truths)
    for index, name in enumerate(["price", "rent"]):
        assert metrics[f"r2/{name}"] == pytest.approx(float(R2Score()(predicted[:, index], true[:, index])), abs=1e-5)
        mae = float(MeanAbsoluteError()(predicted[:, index], true[:, index]))
        assert metrics[f"mae/{name}"] == pytest.approx(mae, rel=1e-5)
        rmse = float(MeanSquaredError(squared=False)(predicted[:, index], true[:, index]))
        assert metrics[f"rmse/{name}"] == pytest.approx(rmse, rel=1e-5)
    assert metrics["r2"] == pytest.approx((metrics["r2/price"] + metrics["r2/rent"]) / 2)
    assert metrics["rmse/price"] > 10 * metrics["rmse/rent"], "each target in its own units, not standardized"


def test_regression_baseline_is_the_loss_of_predicting_the_training_mean(tmp_path: Path) -> None:
    data = table_data(write_table(tmp_path / "houses.csv"), "price")
    for loss in ("mse", "l1", "huber"):
        task = Regression(loss=loss)
        task.bind(data)
        train_targets = torch.cat([targets for _, targets in data.train])
        mean_prediction = torch.zeros_like(train_targets)
        assert task.baseline_loss == pytest.approx(float(task.loss(mean_prediction, train_targets)), rel=1e-5)
    assert Regression().baseline_loss is None, "known only once bound to data"


def test_multilabel_metrics_equal_torchmetrics() -> None:
    data = build_custom_data(
        train=MultiLabelVectors("train", num_samples=300), root=".", batch_size=32, val_fraction=0.3, split_seed=0,
        num_workers=0, device="cpu", seed=0, targets=MULTI_HOT,
    )  # fmt: skip
    task = MultiLabel(threshold=0.4)
    task.bind(data)
    assert task.label_names == MultiLabelVectors.classes
    generator = torch.Generator().manual_seed(2)
    evaluator = task.evaluator(torch.device("cpu"))
    logits, labels = [], []
    for _, targets in data.val:
        outputs = 3 * (targets - 0.5) + 2 * torch.randn(targets.shape, generator=generator)  # informative, noisy
        evaluator.update(outputs, targets)
        logits.append(outputs)
        labels.append(targets.long())
    metrics = evaluator.result(lambda sums: sums)
    scores, true = torch.sigmoid(torch.cat(logits)), torch.cat(labels)
    kinds = {"num_labels": 4, "threshold": 0.4}
    assert metrics["f1_macro"] == pytest.approx(
        float(MultilabelF1Score(**kinds, average="macro")(scores, true)), abs=1e-6
    )
    assert metrics["f1_micro"] == pytest.approx(
        float(MultilabelF1Score(**kinds, average="micro")(scores, true)), abs=1e-6
    )
    per_label = MultilabelF1Score(**kinds, average="none")(scores, true)
    assert [metrics[f"f1/{name}"] for name in task.label_names] == pytest.approx(per_label.tolist(), abs=1e-6)
    average_precision = MultilabelAveragePrecision(num_labels=4, thresholds=1001, average="macro")(scores, true)
    assert metrics["map"] == pytest.approx(float(average_precision), abs=1e-4)
    assert 0.5 < metrics["map"] < 1


def test_metrics_of_shards_add_up_to_the_metrics_of_the_whole_split(tmp_path: Path) -> None:
    """What a torchrun job's all-reduce does: the sums of two halves give the metrics of the whole."""
    data = table_data(write_table(tmp_path / "houses.csv"), "price")
    task = Regression()
    task.bind(data)
    batches = [(torch.randn(len(targets), 1), targets) for _, targets in data.val]
    whole, first, second = (task.evaluator(torch.device("cpu")) for _ in range(3))
    for index, (outputs, targets) in enumerate(batches):
        whole.update(outputs, targets)
        (first if index % 2 else second).update(outputs, targets)
    assert first.sums is not None and second.sums is not None
    halves = first.sums + second.sums
    assert first.result(lambda sums: halves) == pytest.approx(whole.result(lambda sums: sums))
