"""The work of `python train.py` as a careful user would write it by hand: the floor `benchmarks/startup.py` times.

    python benchmarks/hand_written.py            # = python train.py (SmallCNN, bundled MNIST sample, 3 epochs)
    python benchmarks/hand_written.py --tiny     # = python train.py data=synthetic model=mlp trainer.max_epochs=1

Same work as trainscope's run: the same network (SmallCNN or the 784-128-10 MLP, written out here), the same
data (the MNIST sample's IDX files shipped with trainscope, read with gzip + numpy; or the same kind of synthetic
images), the same split (10% validation carved with seed 0), seed 42, Adam (lr 1e-3), the same batch size and
epochs, a shuffled pass per epoch, validation after each epoch, the best model saved with `torch.save`, and a test
pass with the best weights at the end. No logging framework, no TensorBoard, no config system: this is what
trainscope's own fixed cost is measured against. It imports nothing from trainscope.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

MNIST_SAMPLE = Path(__file__).resolve().parents[1] / "src" / "trainscope" / "resources" / "mnist-5k"


class SmallCNN(nn.Module):
    """trainscope's default model: two conv-bn-relu-pool blocks (32, 64 channels), 128 hidden, dropout 0.25."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(inplace=True), nn.Dropout(0.25), nn.Linear(128, 10)
        )

    def forward(self, inputs: Tensor) -> Tensor:
        return self.classifier(self.features(inputs))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(inplace=True), nn.Linear(128, 10))


def read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as file:
        return np.frombuffer(file.read(), dtype=np.uint8, offset=header)


def mnist_sample(split: str) -> tuple[Tensor, Tensor]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(MNIST_SAMPLE / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = read_idx(MNIST_SAMPLE / f"{prefix}-labels-idx1-ubyte.gz", 8)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def synthetic(split: str, num_samples: int = 512) -> tuple[Tensor, Tensor]:
    """One mean image per class plus noise, as trainscope's data=synthetic (train: 512, test: 128)."""
    prototypes = torch.randn((10, 1, 28, 28), generator=torch.Generator().manual_seed(1234))
    generator = torch.Generator().manual_seed(1 if split == "train" else 2)
    count = num_samples if split == "train" else num_samples // 4
    labels = (torch.arange(count) % 10)[torch.randperm(count, generator=generator)]
    images = 0.5 + 0.2 * prototypes[labels] + 0.2 * torch.randn((count, 1, 28, 28), generator=generator)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels


def normalize(images: Tensor, mean: float, std: float) -> Tensor:
    return images.float().div(255).sub(mean).div(std)


def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> tuple[float, float]:
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = model(images[start : start + batch_size])
            targets = labels[start : start + batch_size]
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(1) == targets).sum().item()
    return loss_sum / len(labels), correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="1 epoch of the MLP on synthetic data")
    parser.add_argument("--out", type=Path, default=None, help="where best.pt goes (default: a new temp folder)")
    args = parser.parse_args()
    random.seed(42)
    np.random.seed(42)
    torch.manual_seed(42)
    if args.tiny:
        model, epochs, batch_size, mean, std = mlp(), 1, 128, 0.5, 0.28
        (train_images, train_labels), (test_images, test_labels) = synthetic("train"), synthetic("test")
    else:
        model, epochs, batch_size, mean, std = SmallCNN(), 3, 64, 0.1307, 0.3081
        (train_images, train_labels), (test_images, test_labels) = mnist_sample("train"), mnist_sample("test")
    order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(0))
    num_val = round(0.1 * len(train_labels))
    val_rows, train_rows = order[:num_val].sort().values, order[num_val:].sort().values
    x_train, y_train = normalize(train_images[train_rows], mean, std), train_labels[train_rows]
    x_val, y_val = normalize(train_images[val_rows], mean, std), train_labels[val_rows]
    x_test = normalize(test_images, mean, std)

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    best_acc, best_state = -1.0, None
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="hand_written_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(epochs):
        model.train()
        permutation = torch.randperm(len(y_train))
        for start in range(0, len(y_train), batch_size):
            rows = permutation[start : start + batch_size]
            loss = F.cross_entropy(model(x_train[rows]), y_train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        val_loss, val_acc = evaluate(model, x_val, y_val, batch_size)
        print(f"epoch {epoch + 1}/{epochs}  val/loss {val_loss:.4f}  val/acc {val_acc:.4f}", flush=True)
        if val_acc > best_acc:
            best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
            torch.save(best_state, out_dir / "best.pt")
    model.load_state_dict(best_state)
    test_loss, test_acc = evaluate(model, x_test, test_labels, batch_size)
    print(f"test/loss {test_loss:.4f}  test/acc {test_acc:.4f}  (best model in {out_dir})")


if __name__ == "__main__":
    sys.exit(main())
