"""`task=classification` (the default): one class per example, cross-entropy, accuracy.

Panels: the confusion matrix with per-class precision and recall, the grid of misclassified validation
examples and of the highest-loss ones (image inputs only), the grid of training inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainscope.config.groups.logging import LoggingConfig
from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError
from trainscope.core.view import DataFacts
from trainscope.data.targets import CLASS
from trainscope.tasks.base import Evaluator, Monitor, SumsEvaluator, Task, batch_count, shape_text
from trainscope.tensorboard.classification import ConfusionMatrixLogger
from trainscope.tensorboard.images import MisclassifiedImages, WorstImages


class Classification(Task):
    """Cross-entropy on logits [B, classes] against int64 labels [B]; `acc` is top-1 accuracy."""

    name = "classification"
    targets = CLASS
    train_metric_names = ("acc",)
    train_statistic_count = 1
    headline = ("acc",)

    def __init__(self, monitor: Mapping[str, Any] | Monitor | None = None, target_key: str | None = None) -> None:
        super().__init__(monitor or Monitor("val/acc", "max"), target_key)
        self.num_classes = 0
        self.class_names: list[str] = []

    def bind(self, data: DataFacts) -> None:
        self.num_classes, self.class_names = int(data.num_classes), list(data.class_names)
        self.baseline_loss = math.log(max(self.num_classes, 2))  # the loss of a uniform guess

    @property
    def output_size(self) -> int:
        return self.num_classes

    def check_batch(self, outputs: Tensor, targets: Any) -> None:
        if outputs.dim() != 2 or outputs.shape[1] != self.num_classes:
            raise ConfigError(
                f"model returns {shape_text(outputs.shape)}, task=classification with {self.num_classes} classes "
                f"needs [B, {self.num_classes}] (one logit per class)"
            )
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= self.num_classes:
            raise ConfigError(
                f"task=classification with {self.num_classes} classes needs labels in [0, {self.num_classes - 1}]; "
                f"the first training batch holds {low if low < 0 else high}: set data.num_classes"
            )

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs, targets)

    def train_statistics(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, ...]:
        return ((outputs.argmax(dim=1) == targets).sum().float(),)

    def train_metrics(self, sums: Sequence[float], count: float, seconds: float) -> dict[str, float]:
        return {"acc": sums[0] / max(count, 1)}

    def evaluator(self, device: torch.device) -> Evaluator:
        counts: dict[int, Tensor] = {}

        def batch_sums(outputs: Tensor, targets: Tensor) -> Tensor:
            loss = F.cross_entropy(outputs.float(), targets, reduction="sum")
            correct = (outputs.argmax(dim=1) == targets).sum()
            return torch.stack((loss, correct.float(), batch_count(counts, targets.shape[0], device)))

        def read(sums: list[float]) -> dict[str, float]:
            loss_sum, correct_sum, count = sums
            return {"loss": loss_sum / max(count, 1), "acc": correct_sum / max(count, 1)}

        return SumsEvaluator(batch_sums, read)

    def metric_modes(self) -> dict[str, str]:
        return {"acc": "max", "precision_macro": "max", "recall_macro": "max"}

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.argmax(dim=1)

    def caption(self, target: Tensor) -> str:
        index = int(target)
        return self.class_names[index] if index < len(self.class_names) else str(index)

    def per_example_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs.float(), targets, reduction="none")

    def panels(self, logging: LoggingConfig) -> dict[str, Callback]:
        panels = super().panels(logging)
        if logging.images:
            panels["monitor/misclassified"] = MisclassifiedImages(
                num_images=logging.num_images, every_n_epochs=logging.images_every_n_epochs
            )
        if logging.worst_images:
            panels["monitor/worst_images"] = WorstImages(
                self.per_example_loss, num_images=logging.num_images, every_n_epochs=logging.images_every_n_epochs
            )
        if logging.confusion_matrix:
            panels["monitor/confusion_matrix"] = ConfusionMatrixLogger(image=True)
        return panels
