"""A user's own nn.Module, trained with `model=custom` (see docs/models.md):

    python train.py model=custom model._target_=examples.tiny_net.TinyNet +model.width=16

trainscope passes `input_shape` and `num_classes` because the constructor takes them; other keys
(`width`) come from the config. Any `nn.Module` works; this file imports nothing from trainscope.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class TinyNet(nn.Module):
    """Two 3x3 convolutions, 4x4 adaptive pooling and a linear classifier: works at any image size."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, num_classes),
        )

    def forward(self, inputs: Tensor) -> Tensor:
        return self.layers(inputs)
