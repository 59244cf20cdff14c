"""`task=multilabel`: K independent yes/no labels per example; binary cross-entropy on K logits.

Metrics: micro and macro F1 at `task.threshold` (on the sigmoid of each logit), the mean average precision over
labels, and each label's F1 (`val_f1/<label>`). Everything is a sum kept on the device: true/false positives and
false negatives per label, and per label a histogram of the scores of its positive and negative examples on
`AP_THRESHOLDS` evenly spaced thresholds, from which the precision-recall curve and its average precision are
computed once per evaluation (torchmetrics' binned average precision, exactly; the sums add up across
processes with one all-reduce).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainscope.core.errors import ConfigError
from trainscope.core.view import DataFacts
from trainscope.data.targets import MULTI_HOT
from trainscope.tasks.base import Evaluator, Monitor, Reduce, Task, batch_count, shape_text

AP_THRESHOLDS = 1001
"""Score thresholds 0, 0.001, ..., 1 of the average-precision curve."""


class MultiLabel(Task):
    """Outputs [B, labels] are logits; targets [B, labels] are 0/1; a label is predicted above `threshold`."""

    name = "multilabel"
    targets = MULTI_HOT
    train_metric_names = ("f1_micro",)
    train_statistic_count = 3
    headline = ("f1_macro", "f1_micro", "map")

    def __init__(
        self,
        threshold: float = 0.5,
        monitor: Mapping[str, Any] | Monitor | None = None,
        target_key: str | None = None,
    ) -> None:
        super().__init__(monitor or Monitor("val/f1_macro", "max"), target_key)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
            raise ConfigError(f"task.threshold must be a number in (0, 1), got {threshold!r}")
        self.threshold = float(threshold)
        self.logit_threshold = math.log(self.threshold / (1 - self.threshold))  # sigmoid(x) > t  <=>  x > logit(t)
        self.label_names: list[str] = []

    def bind(self, data: DataFacts) -> None:
        labels = data.train_targets(self.split_batch)
        labels = labels.reshape(len(labels), -1).float()
        _check_zero_one(labels, data.target_source)
        count = labels.shape[1]
        self.label_names = list(data.target_names) or [f"label_{index}" for index in range(count)]
        if len(self.label_names) != count:
            raise ConfigError(
                f"{data.target_source} holds {count} labels per example but names {len(self.label_names)}"
            )
        # Predicting each label's training frequency is what a model that knows nothing can do.
        frequency = labels.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        entropy = -(frequency * frequency.log() + (1 - frequency) * (1 - frequency).log())
        self.baseline_loss = float(entropy.mean())

    @property
    def output_size(self) -> int:
        return len(self.label_names)

    def check_batch(self, outputs: Tensor, targets: Any) -> None:
        count = len(self.label_names)
        if outputs.dim() != 2 or outputs.shape[1] != count:
            raise ConfigError(
                f"model returns {shape_text(outputs.shape)}, task=multilabel with {count} labels needs [B, {count}] "
                "(one logit per label)"
            )
        _check_zero_one(targets, "the first training batch")

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(outputs, targets)

    def _counts(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """True positives, false positives and false negatives per label [K]."""
        predicted = (outputs > self.logit_threshold).float()
        true_positives = (predicted * targets).sum(dim=0)
        return true_positives, predicted.sum(dim=0) - true_positives, targets.sum(dim=0) - true_positives

    def train_statistics(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, ...]:
        return tuple(counts.sum() for counts in self._counts(outputs.float(), targets.float()))

    def train_metrics(self, sums: Sequence[float], count: float, seconds: float) -> dict[str, float]:
        true_positives, false_positives, false_negatives = sums
        return {"f1_micro": _f1(true_positives, false_positives, false_negatives)}

    def evaluator(self, device: torch.device) -> Evaluator:
        return MultiLabelEvaluator(self, device)

    def metric_modes(self) -> dict[str, str]:
        return {"f1_macro": "max", "f1_micro": "max", "map": "max", "f1": "max"}

    def predictions(self, outputs: Tensor) -> Tensor:
        return (outputs > self.logit_threshold).long()

    def per_example_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(outputs.float(), targets.float(), reduction="none").mean(dim=1)

    def caption(self, target: Tensor) -> str:
        on = [self.label_names[index] for index in target.flatten().nonzero().flatten().tolist()]
        return ",".join(on) if on else "-"


def _check_zero_one(labels: Tensor, where: str) -> None:
    bad = labels[(labels != 0) & (labels != 1)]
    if len(bad):
        raise ConfigError(f"task=multilabel needs 0/1 label targets; {where} holds {float(bad[0]):g}")


def _f1(true_positives: float, false_positives: float, false_negatives: float) -> float:
    denominator = 2 * true_positives + false_positives + false_negatives
    return 2 * true_positives / denominator if denominator else 0.0


class MultiLabelEvaluator(Evaluator):
    """Sums per label: (loss, count), tp/fp/fn at the threshold, score histograms of positives and negatives."""

    def __init__(self, task: MultiLabel, device: torch.device) -> None:
        self.task = task
        self.device = device
        self.counts: dict[int, Tensor] = {}
        self.labels = len(task.label_names)
        self.offsets = torch.arange(self.labels, device=device) * AP_THRESHOLDS
        self.sums: Tensor | None = None

    def update(self, outputs: Tensor, targets: Tensor) -> None:
        outputs, targets = outputs.float(), targets.float()
        task, labels = self.task, self.labels
        loss_sum = F.binary_cross_entropy_with_logits(outputs, targets, reduction="sum") / labels
        # Bin b holds scores in [b, b + 1) / (AP_THRESHOLDS - 1): a score counts for every threshold <= it.
        bins = (torch.sigmoid(outputs) * (AP_THRESHOLDS - 1)).floor().long().clamp(0, AP_THRESHOLDS - 1)
        flat = (bins + self.offsets).flatten()
        size = labels * AP_THRESHOLDS
        positives = torch.bincount(flat, weights=targets.flatten(), minlength=size)
        negatives = torch.bincount(flat, weights=1 - targets.flatten(), minlength=size)
        count = batch_count(self.counts, targets.shape[0], self.device)
        sums = torch.cat(
            (torch.stack((loss_sum, count)), *task._counts(outputs, targets), positives.float(), negatives.float())
        )
        self.sums = sums if self.sums is None else self.sums + sums

    def result(self, reduce: Reduce) -> dict[str, float]:
        if self.sums is None:
            return {}
        sums = reduce(self.sums).double()
        labels = self.labels
        loss_sum, count = sums[0], sums[1]
        true_positives, false_positives, false_negatives = sums[2 : 2 + 3 * labels].view(3, labels)
        histograms = sums[2 + 3 * labels :].view(2, labels, AP_THRESHOLDS)
        denominator = 2 * true_positives + false_positives + false_negatives
        f1 = torch.where(
            denominator > 0, 2 * true_positives / denominator.clamp(min=1e-12), torch.zeros_like(denominator)
        )
        average_precision = _average_precision(histograms[0], histograms[1])
        valid = ~average_precision.isnan()
        mean_ap = average_precision[valid].mean() if valid.any() else torch.tensor(math.nan, dtype=torch.float64)
        headline = torch.stack(
            (
                loss_sum / count.clamp(min=1),
                f1.mean(),
                2 * true_positives.sum() / denominator.sum().clamp(min=1e-12),
                mean_ap.to(sums.device),
            )
        )
        values = torch.cat((headline, f1)).tolist()  # the one read of the pass
        metrics = dict(zip(("loss", "f1_macro", "f1_micro", "map"), values[:4], strict=True))
        metrics.update({f"f1/{name}": value for name, value in zip(self.task.label_names, values[4:], strict=True)})
        return metrics


def _average_precision(positives: Tensor, negatives: Tensor) -> Tensor:
    """Average precision per label from score histograms [labels, thresholds]; NaN for a label with no positive.

    At threshold j, true positives are the positives scoring at least j (a reversed cumulative sum); precision and
    recall per threshold, then AP = sum over thresholds of (recall_j - recall_j+1) * precision_j, with the curve
    closed at recall 0, precision 1 (torchmetrics' binned formula).
    """
    true_positives = positives.flip(-1).cumsum(-1).flip(-1)
    false_positives = negatives.flip(-1).cumsum(-1).flip(-1)
    total = positives.sum(-1, keepdim=True)
    predicted = true_positives + false_positives
    precision = torch.where(predicted > 0, true_positives / predicted.clamp(min=1e-12), torch.zeros_like(predicted))
    recall = true_positives / total.clamp(min=1e-12)
    precision = torch.cat((precision, torch.ones_like(precision[:, :1])), dim=-1)
    recall = torch.cat((recall, torch.zeros_like(recall[:, :1])), dim=-1)
    average = -((recall[:, 1:] - recall[:, :-1]) * precision[:, :-1]).sum(-1)
    return torch.where(total.squeeze(-1) > 0, average, torch.full_like(average, math.nan))
