"""`data=image_folder` against a plain torchvision `ImageFolder` + `DataLoader` on the same folder of JPEGs.

    python benchmarks/image_folder.py                       # 5,000 64x64 JPEGs decoded at 32x32, 3 epochs
    python benchmarks/image_folder.py --images 20000 --workers 4 --device cuda

Both pipelines deliver the same thing to the training loop: shuffled, normalized float batches of 32x32 RGB
images on the device. Timed per epoch (train split, every batch moved to the device and reduced so the work
cannot be skipped):

  trainscope   `build_data(dataset="image_folder")`: epoch 1 includes listing and decoding every file once
               (and writing the cache); later epochs slice uint8 tensors already on the device. "cached
               start" is a second build reading the cache, as every later run does.
  torchvision  `ImageFolder(transform=Resize + CenterCrop + ToTensor + Normalize)` through a `DataLoader`
               with `--workers` workers: every epoch decodes every file again.

The folder is written from the bundled MNIST sample (digits upscaled to 64x64 and tinted, saved as JPEG).
Results and the machine go in benchmarks/RESULTS.md; timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainscope.data import build_data
from trainscope.data.files import BUNDLED_MNIST_DIR

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_jpeg_folder(root: Path, count: int) -> None:
    """`count` 64x64 RGB JPEGs in `<root>/train/<digit>/`, cycling through the sample's 5,000 digits."""
    images, labels = [], []
    for split in ("train", "t10k"):
        with gzip.open(BUNDLED_MNIST_DIR / f"{split}-images-idx3-ubyte.gz") as file:
            images.append(np.frombuffer(file.read(), np.uint8, offset=16).reshape(-1, 28, 28))
        with gzip.open(BUNDLED_MNIST_DIR / f"{split}-labels-idx1-ubyte.gz") as file:
            labels.append(np.frombuffer(file.read(), np.uint8, offset=8))
    digits, targets = np.concatenate(images), np.concatenate(labels)
    tints = np.random.default_rng(0).uniform(0.4, 1.0, (count, 3))
    for index in range(count):
        source = index % len(digits)
        gray = np.asarray(Image.fromarray(digits[source]).resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32)
        rgb = (gray[..., None] * tints[index]).astype(np.uint8)
        folder = root / "train" / str(targets[source])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(folder / f"{index:06d}.jpg", quality=90)


def epoch_seconds(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> tuple[float, int]:
    """Seconds to draw one epoch onto `device`, and the number of images."""
    started, count, checksum = time.perf_counter(), 0, torch.zeros((), device=device)
    for inputs, targets in batches:
        inputs = inputs.to(device, non_blocking=True)
        checksum += inputs.sum() + targets.to(device).sum()
        count += len(inputs)
    checksum.item()  # wait for the device
    return time.perf_counter() - started, count


def trainscope_epochs(root: Path, cache_dir: Path, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    kwargs = {
        "dataset": "image_folder", "root": str(root), "input_shape": [3, args.size, args.size], "num_classes": None,
        "batch_size": args.batch_size, "val_fraction": 0.0, "test_fraction": 0.0, "split_seed": 0,
        "num_workers": args.workers, "loader": "auto", "max_memory_gb": 4, "skip_bad_files": False,
        "cache_dir": str(cache_dir), "download": False, "mean": list(MEAN), "std": list(STD),
        "augment": {"crop_padding": 0, "horizontal_flip": False}, "device": device, "seed": 0,
    }  # fmt: skip
    started = time.perf_counter()
    data = build_data(**kwargs)
    build = time.perf_counter() - started
    times = {}
    for epoch in range(args.epochs):
        data.train.set_epoch(epoch)
        seconds, count = epoch_seconds(data.train, device)
        times[f"epoch {epoch + 1}"] = count / (seconds + (build if epoch == 0 else 0.0))
    started = time.perf_counter()
    cached = build_data(**kwargs)
    cached.train.set_epoch(0)
    seconds, count = epoch_seconds(cached.train, device)
    times["cached start"] = count / (time.perf_counter() - started)
    return times


def torchvision_epochs(root: Path, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.Resize(args.size),
            transforms.CenterCrop(args.size),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    dataset = datasets.ImageFolder(str(root / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )  # fmt: skip
    times = {}
    for epoch in range(args.epochs):
        seconds, count = epoch_seconds(loader, device)
        times[f"epoch {epoch + 1}"] = count / seconds
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary) / "jpegs"
        write_jpeg_folder(root, args.images)
        results = {
            "trainscope data=image_folder": trainscope_epochs(root, Path(temporary) / "cache", args, device),
            f"torchvision ImageFolder + DataLoader ({args.workers} workers)": torchvision_epochs(root, args, device),
        }
    machine = f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads"
    print(f"{args.images} JPEGs 64x64 -> {args.size}x{args.size}, batch {args.batch_size}, device {device}, {machine}")
    columns = list(next(iter(results.values())))
    print("| pipeline | " + " | ".join(f"{column} (images/s)" for column in columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, times in results.items():
        print(f"| {name} | " + " | ".join(f"{times[c]:,.0f}" if c in times else "" for c in columns) + " |")


if __name__ == "__main__":
    main()
