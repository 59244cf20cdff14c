"""The data layer: both loader paths agree, resumes are exact, datasets fail with one helpful line."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers.data import NO_AUGMENT, copy_mnist_files, data_kwargs, validate_config
from trainscope.core.errors import ConfigError, DataError
from trainscope.data import build_data
from trainscope.data.files import BUNDLED_MNIST_DIR, cache_path, load_split


def batches(source: Any, epoch: int, start: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    source.set_epoch(epoch)
    return list(source.iter_from(start))


def assert_same_batches(left: list, right: list) -> None:
    assert len(left) == len(right)
    for (inputs_a, targets_a), (inputs_b, targets_b) in zip(left, right, strict=True):
        assert torch.equal(inputs_a, inputs_b)
        assert torch.equal(targets_a, targets_b)


@pytest.mark.parametrize("dataset", ["synthetic", "mnist_sample"])
@pytest.mark.parametrize("augment", [NO_AUGMENT, {"crop_padding": 2, "horizontal_flip": True}])
def test_in_memory_and_dataloader_paths_yield_identical_batches(tmp_path: Path, dataset: str, augment: dict) -> None:
    in_memory = build_data(**data_kwargs(tmp_path, dataset, loader="in_memory", augment=augment, seed=7))
    streamed = build_data(**data_kwargs(tmp_path, dataset, loader="dataloader", augment=augment, seed=7))
    for epoch in (0, 3):
        assert_same_batches(batches(in_memory.train, epoch), batches(streamed.train, epoch))
    assert_same_batches(list(in_memory.val), list(streamed.val))
    assert in_memory.test is not None and streamed.test is not None
    assert_same_batches(list(in_memory.test), list(streamed.test))


def test_dataloader_path_with_workers_matches(tmp_path: Path) -> None:
    in_memory = build_data(**data_kwargs(tmp_path, loader="in_memory"))
    streamed = build_data(**data_kwargs(tmp_path, loader="dataloader", num_workers=2))
    assert_same_batches(batches(in_memory.train, 1), batches(streamed.train, 1))


def test_each_epoch_has_its_own_reproducible_order(tmp_path: Path) -> None:
    data = build_data(**data_kwargs(tmp_path))
    first, second = batches(data.train, 0), batches(data.train, 1)
    assert not torch.equal(first[0][1], second[0][1])
    assert_same_batches(first, batches(data.train, 0))
    # Every sample once per epoch, the last partial batch kept.
    assert sum(len(targets) for _, targets in first) == data.train.num_samples == 180
    assert len(data.train) == len(first) == 6 and len(first[-1][1]) == 180 - 5 * 32
    # Validation is never shuffled.
    assert_same_batches(batches(data.val, 0), batches(data.val, 5))


@pytest.mark.parametrize("loader", ["in_memory", "dataloader"])
def test_iter_from_resumes_exactly_where_an_epoch_left_off(tmp_path: Path, loader: str) -> None:
    augment = {"crop_padding": 3, "horizontal_flip": True}
    data = build_data(**data_kwargs(tmp_path, loader=loader, augment=augment))
    full = batches(data.train, 2)
    assert_same_batches(batches(data.train, 2, start=4), full[4:])
    assert batches(data.train, 2, start=len(data.train)) == []


def test_augmentation_is_seeded_and_keeps_shape(tmp_path: Path) -> None:
    augment = {"crop_padding": 4, "horizontal_flip": True}
    plain = batches(build_data(**data_kwargs(tmp_path, seed=0)).train, 0)
    seed0 = batches(build_data(**data_kwargs(tmp_path, augment=augment, seed=0)).train, 0)
    seed0_again = batches(build_data(**data_kwargs(tmp_path, augment=augment, seed=0)).train, 0)
    seed1 = batches(build_data(**data_kwargs(tmp_path, augment=augment, seed=1)).train, 0)
    inputs, targets = seed0[0]
    assert inputs.shape == plain[0][0].shape == (32, 1, 28, 28) and inputs.dtype == torch.float32
    assert torch.equal(targets, plain[0][1])  # augmentation moves pixels, not samples
    assert not torch.equal(inputs, plain[0][0])
    assert_same_batches(seed0, seed0_again)
    assert not torch.equal(seed1[0][0], inputs)
    # Crop padding fills with black, i.e. the normalized value of pixel 0.
    assert inputs.min() >= (0 - 0.1307) / 0.3081 - 1e-6


def test_val_split_depends_on_split_seed_only(tmp_path: Path) -> None:
    def val_targets(**overrides: Any) -> torch.Tensor:
        return torch.cat([t for _, t in build_data(**data_kwargs(tmp_path, **overrides)).val])

    assert torch.equal(val_targets(seed=0), val_targets(seed=1))
    assert not torch.equal(val_targets(split_seed=0), val_targets(split_seed=1))


def test_synthetic_data_is_learnable(tmp_path: Path) -> None:
    data = build_data(**data_kwargs(tmp_path, num_samples=400, mean=[0.5], std=[0.28]))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    def val_accuracy() -> float:
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in data.val)
        return correct / data.val.num_samples

    before = val_accuracy()
    for epoch in range(3):
        data.train.set_epoch(epoch)
        for inputs, targets in data.train:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    assert val_accuracy() > max(0.6, before + 0.3)


def test_mnist_sample_is_the_bundled_real_mnist(tmp_path: Path) -> None:
    data = build_data(**data_kwargs(tmp_path, "mnist_sample"))
    assert data.train.num_samples + data.val.num_samples == 4000
    assert data.val.num_samples == 400
    assert data.test is not None and data.test.num_samples == 1000
    assert data.num_classes == 10 and len(data.class_names) == 10
    train = load_split(validate_config(tmp_path, "mnist_sample"), "train")
    assert train.images.dtype == torch.uint8 and train.images.shape == (4000, 1, 28, 28)
    assert abs(train.images.float().div(255).mean().item() - 0.13) < 0.01
    assert torch.equal(train.labels.bincount(), torch.full((10,), 400))


def test_cache_is_rebuilt_when_a_source_file_changes(tmp_path: Path) -> None:
    raw = copy_mnist_files(tmp_path)
    config = validate_config(tmp_path, "mnist")
    assert load_split(config, "train").from_cache is False
    assert cache_path(config, "train").exists()
    assert load_split(config, "train").from_cache is True

    assert sorted(path.name for path in raw.iterdir()) == sorted(path.name for path in BUNDLED_MNIST_DIR.glob("*.gz"))

    # Relabel sample 0 in an unpacked labels file (IDX header: 8 bytes), as a re-download would change it.
    labels_file = raw / "train-labels-idx1-ubyte"
    content = bytearray(gzip.decompress((raw / "train-labels-idx1-ubyte.gz").read_bytes()))
    content[8] = (content[8] + 1) % 10
    labels_file.write_bytes(bytes(content))
    stat = labels_file.stat()
    os.utime(labels_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    rebuilt = load_split(config, "train")
    assert rebuilt.from_cache is False
    assert rebuilt.labels[0].item() == content[8]
    assert load_split(config, "train").from_cache is True


def test_missing_dataset_offline_points_to_mnist_sample(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        build_data(**data_kwargs(tmp_path, "mnist", download=True))
    message = str(raised.value)
    assert "\n" not in message
    assert "data=mnist_sample" in message and str(tmp_path / "mnist" / "MNIST" / "raw") in message

    with pytest.raises(DataError, match="data.download=false.*data=mnist_sample"):
        build_data(**data_kwargs(tmp_path / "other", "mnist", download=False))


def test_truncated_gz_names_the_file(tmp_path: Path) -> None:
    raw = copy_mnist_files(tmp_path)
    broken = raw / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:5000])
    with pytest.raises(DataError, match=f"{broken}.*corrupt or truncated"):
        build_data(**data_kwargs(tmp_path, "mnist", download=False))


def test_wrong_size_idx_file_names_the_file(tmp_path: Path) -> None:
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in BUNDLED_MNIST_DIR.glob("*.gz"):
        with gzip.open(path, "rb") as compressed:
            (raw / path.stem).write_bytes(compressed.read())
    broken = raw / "t10k-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:-784])
    with pytest.raises(DataError, match=f"{broken} is corrupt or truncated"):
        build_data(**data_kwargs(tmp_path, "mnist", download=False))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_directory_is_a_data_error(tmp_path: Path) -> None:
    copy_mnist_files(tmp_path)
    locked = tmp_path / "mnist"
    locked.chmod(0)
    try:
        with pytest.raises(DataError, match="permission denied"):
            build_data(**data_kwargs(tmp_path, "mnist", download=False))
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "data.batch_size must be a positive integer, got 0"),
        ({"val_fraction": 1.0}, r"data.val_fraction must be a number in \[0, 1\), got 1.0"),
        ({"dataset": "imagenet"}, "data.dataset must be one of"),
        ({"loader": "fast"}, "data.loader must be one of"),
        ({"mean": [0.5, 0.5]}, "data.mean must be a list of 1 numbers"),
        ({"augment": {"crop_padding": -1}}, "data.augment.crop_padding must be a non-negative integer"),
        ({"num_samples": None}, "data.num_samples must be a positive integer"),
    ],
)
def test_bad_config_values_are_named(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_data(**data_kwargs(tmp_path, **overrides))


def test_input_shape_must_match_the_dataset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.input_shape must be \[1, 28, 28\] for mnist_sample"):
        build_data(**data_kwargs(tmp_path, "mnist_sample", input_shape=[3, 32, 32], mean=[0.5] * 3, std=[0.5] * 3))


def test_batched_crop_and_flip_match_a_per_sample_reference() -> None:
    from trainscope.data.augment import AugmentConfig, augment_batch
    from trainscope.data.seeding import AUGMENT_STREAM, cpu_generator

    images = torch.randn(16, 3, 8, 8)
    augmented = augment_batch(images, AugmentConfig(2, True), torch.zeros(3), seed=5, epoch=1, batch_index=4)
    generator = cpu_generator(AUGMENT_STREAM, 5, 1, 4)
    offsets = torch.randint(0, 5, (2, 16), generator=generator)
    flips = torch.rand(16, generator=generator) < 0.5
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for index in range(16):
        top, left = offsets[:, index].tolist()
        expected = padded[index, :, top : top + 8, left : left + 8]
        assert torch.equal(augmented[index], expected.flip(-1) if flips[index] else expected)
