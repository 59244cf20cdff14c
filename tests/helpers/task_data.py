"""Small datasets and models for the task tests: learnable structure, generated from fixed seeds (no files)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

_SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


class MultiLabelVectors(Dataset):
    """16 Gaussian features; label k is on when the features' projection on a fixed direction k is positive."""

    classes = ["red", "round", "large", "striped"]

    def __init__(self, split: str = "train", num_samples: int = 512, features: int = 16) -> None:
        directions = torch.randn(features, len(self.classes), generator=torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(_SPLIT_SEEDS[split])
        self.inputs = torch.randn(num_samples, features, generator=generator)
        self.labels = (self.inputs @ directions > 0).float()

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.labels[index]


class DictSamples(Dataset):
    """Dict samples {"features": [8], "weight": [], "target": float}: the target is linear in the features."""

    def __init__(self, split: str = "train", num_samples: int = 256) -> None:
        coefficients = torch.linspace(-2, 2, 8)
        generator = torch.Generator().manual_seed(_SPLIT_SEEDS[split])
        self.features = torch.randn(num_samples, 8, generator=generator)
        self.targets = self.features @ coefficients + 0.1 * torch.randn(num_samples, generator=generator) + 50.0

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"features": self.features[index], "weight": torch.tensor(1.0), "target": self.targets[index]}


class KeywordLinear(nn.Module):
    """A model called with a dict batch as keywords (`model(features=..., weight=...)`), one output per example."""

    def __init__(self, input_shape: Sequence[int] = (), num_classes: int | None = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 1)

    def forward(self, features: Tensor, weight: Tensor) -> Tensor:
        return self.linear(features) * weight.unsqueeze(-1)


class BrokenItem(Dataset):
    """64 small images, four classes; reading item 7 raises, as a user's dataset with one unreadable file does."""

    BROKEN = 7

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if index == self.BROKEN:
            raise OSError(f"cannot read scan_{index}.png\n(a second line the user need not read)")
        return torch.zeros(1, 8, 8), index % 4


class WrongLogits(nn.Module):
    """A user's classifier with a mistake in its head: 3 logits for 4 classes, or (`squeeze`) one number."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, squeeze: bool = False) -> None:
        super().__init__()
        self.squeeze = squeeze
        self.head = nn.Linear(int(torch.tensor(input_shape).prod()), 1 if squeeze else num_classes - 1)

    def forward(self, inputs: Tensor) -> Tensor:
        outputs = self.head(inputs.flatten(1))
        return outputs.squeeze(1) if self.squeeze else outputs
