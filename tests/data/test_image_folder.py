"""`data=image_folder`: a user's folder of PNG/JPEG files trains like a built-in dataset."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.events import read_events
from tests.helpers.image_tree import DIGIT_NAMES, write_digits
from trainscope.core.errors import DataError
from trainscope.data import build_data
from trainscope.data.dataloader import DataLoaderBatchSource
from trainscope.data.image_folder import folder_cache_path, list_image_folder, load_folder, load_image
from trainscope.data.in_memory import InMemoryBatchSource


def folder_kwargs(root: Path, cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The keys of conf/data/image_folder.yaml as Hydra resolves them, plus what the trainer passes."""
    channels, size = overrides.pop("channels", 1), overrides.pop("image_size", 28)
    kwargs: dict[str, Any] = {
        "dataset": "image_folder",
        "root": str(root),
        "input_shape": [channels, size, size],
        "num_classes": None,
        "batch_size": 16,
        "val_fraction": 0.2,
        "test_fraction": 0.1,
        "split_seed": 0,
        "num_workers": 0,
        "loader": "auto",
        "max_memory_gb": 4,
        "skip_bad_files": False,
        "cache_dir": str(cache_dir),
        "download": False,
        "mean": None,
        "std": None,
        "augment": {"crop_padding": 0, "horizontal_flip": False},
        "device": torch.device("cpu"),
        "seed": 0,
    }
    kwargs.update(overrides)
    return kwargs


def epoch_batches(source: Any, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    source.set_epoch(epoch)
    return list(source)


@pytest.mark.slow
def test_image_folder_trains_end_to_end_with_folder_names_as_classes(train, tmp_path: Path) -> None:
    root = tmp_path / "digits"
    write_digits(root / "train", 1500)
    write_digits(root / "test", 400, source="t10k")
    args = ["data=image_folder", f"data.root={root}", "data.image_size=28", "data.channels=1", "trainer.max_epochs=3"]

    first = train(*args)
    assert first.returncode == 0, first.stderr
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["test"]["test/acc"] >= 0.85  # 1,350 training digits, 3 epochs of the default CNN
    assert "decoding 1500 images" in (run_dir / "train.log").read_text()

    events = read_events(run_dir)
    assert {f"val_precision/{name}" for name in DIGIT_NAMES} <= set(events.Tags()["scalars"])
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "num_classes: null" in config  # counted from the folders, never typed in

    # A second run reads the decoded tensors from the cache and learns exactly the same.
    for leftover in train.output_root.iterdir():
        os.rename(leftover, tmp_path / "first-outputs")
    second = train(*args)
    assert second.returncode == 0, second.stderr
    assert "decoding" not in (train.run_dir() / "train.log").read_text()
    assert json.loads((train.run_dir() / "metrics.json").read_text())["test"] == summary["test"]


def write_mixed_modes(root: Path) -> dict[str, Path]:
    """One class folder per Pillow mode family, non-square sizes, PNG and JPEG."""
    rng = np.random.default_rng(0)
    written = {}
    for index in range(6):
        rgb = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        variants = {
            "gray": rgb.convert("L"),
            "rgb": rgb,
            "rgba": Image.merge("RGBA", (*rgb.split(), Image.new("L", rgb.size, 77))),
            "palette": rgb.convert("P"),
        }
        for name, image in variants.items():
            path = root / "train" / name / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
            written[f"{name}{index}"] = path
        jpeg = root / "train" / "rgb" / f"{index}.jpg"
        rgb.save(jpeg, quality=95)
    return written


def test_grayscale_rgb_rgba_and_palette_images_mix(tmp_path: Path) -> None:
    files = write_mixed_modes(tmp_path / "mixed")
    data = build_data(**folder_kwargs(tmp_path / "mixed", tmp_path / "cache", channels=3, image_size=16))
    assert data.input_shape == (3, 16, 16) and data.class_names == ["gray", "palette", "rgb", "rgba"]
    assert data.num_classes == 4
    assert data.train.num_samples + data.val.num_samples + data.test.num_samples == 30  # type: ignore[union-attr]

    gray_as_rgb = load_image(files["gray0"], 3, 16, 16)
    assert gray_as_rgb.shape == (3, 16, 16) and (gray_as_rgb == gray_as_rgb[:1]).all()
    assert (load_image(files["gray0"], 1, 16, 16) == gray_as_rgb[:1]).all()
    assert (load_image(files["rgba0"], 3, 16, 16) == load_image(files["rgb0"], 3, 16, 16)).all()  # alpha dropped
    as_gray = load_image(files["rgb0"], 1, 30, 30)  # 40x30 → cover 30x30: no resize, center crop of width
    expected = np.asarray(Image.open(files["rgb0"]).convert("L"))[:, 5:35]
    assert (as_gray[0] == expected).all()


def test_a_corrupt_image_is_named_or_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "digits"
    write_digits(root, 60)
    broken = root / "seven" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)

    with pytest.raises(DataError) as raised:
        build_data(**folder_kwargs(root, tmp_path / "cache"))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"cannot decode image {broken} (") and "data.skip_bad_files=true" in message

    with caplog.at_level(logging.WARNING):
        data = build_data(**folder_kwargs(root, tmp_path / "cache", skip_bad_files=True, test_fraction=0.0))
    assert data.train.num_samples + data.val.num_samples == 60
    assert f"skipping unreadable image {broken}" in caplog.text


def test_the_cache_is_decoded_again_when_a_file_changes(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    files = write_digits(root, 40)
    class_names, splits = list_image_folder(root)
    shape = (1, 28, 28)
    first = load_folder(splits["train"], class_names, shape, False, tmp_path / "cache")
    assert not first.from_cache and folder_cache_path(tmp_path / "cache", splits["train"]).is_file()
    assert load_folder(splits["train"], class_names, shape, False, tmp_path / "cache").from_cache

    changed = files[3]
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _, splits = list_image_folder(root)
    position = splits["train"].files.index(changed)
    again = load_folder(splits["train"], class_names, shape, False, tmp_path / "cache")
    assert not again.from_cache
    assert (again.images[position] == 200).all() and not (first.images[position] == 200).all()
    assert load_folder(splits["train"], class_names, shape, False, tmp_path / "cache").from_cache


@pytest.mark.parametrize(
    "augment", [{"crop_padding": 0, "horizontal_flip": False}, {"crop_padding": 3, "horizontal_flip": True}]
)
def test_streaming_above_max_memory_yields_the_in_memory_batches(tmp_path: Path, augment: dict) -> None:
    root = tmp_path / "digits"
    write_digits(root / "train", 120)
    write_digits(root / "val", 30, source="t10k")
    in_memory = build_data(**folder_kwargs(root, tmp_path / "cache", augment=augment, seed=3))
    # 150 images of 784 bytes exceed 0.0001 GB (~107 kB): decoded per sample in two DataLoader workers
    streaming = build_data(
        **folder_kwargs(root, tmp_path / "cache", augment=augment, seed=3, max_memory_gb=0.0001, num_workers=2)
    )
    assert isinstance(in_memory.train, InMemoryBatchSource)
    assert isinstance(streaming.train, DataLoaderBatchSource) and isinstance(streaming.val, DataLoaderBatchSource)
    for split in ("train", "val", "test"):
        left, right = getattr(in_memory, split), getattr(streaming, split)
        for epoch in (0, 1):
            for (inputs_a, targets_a), (inputs_b, targets_b) in zip(
                epoch_batches(left, epoch), epoch_batches(right, epoch), strict=True
            ):
                assert torch.equal(inputs_a, inputs_b) and torch.equal(targets_a, targets_b)


def test_a_corrupt_image_met_while_streaming_is_one_line_from_the_worker(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    write_digits(root, 40)
    broken = root / "three" / "broken.png"
    broken.write_bytes(b"garbage")
    data = build_data(**folder_kwargs(root, tmp_path / "cache", loader="dataloader", num_workers=2))
    with pytest.raises(DataError) as raised:
        for split in (data.train, data.val, data.test):
            list(split)  # type: ignore[call-overload]
    assert str(raised.value).startswith(f"cannot decode image {broken} (") and "\n" not in str(raised.value)


@pytest.mark.slow
def test_an_optuna_search_runs_on_an_image_folder(train, tmp_path: Path) -> None:
    root = tmp_path / "digits"
    write_digits(root, 300)
    result = train(
        "-m", "hparams_search=synthetic", "~data.num_samples", "data=image_folder", f"data.root={root}",
        "data.image_size=16", "data.channels=1", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "optuna: 2 trials: 2 complete, 0 pruned, 0 failed" in result.stdout
