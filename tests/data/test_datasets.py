"""Built-in datasets: found where users keep them, read from read-only copies, cached with a checksum, and a
missing, truncated or unreadable file is one helpful line naming it."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers.cli import REPO_ROOT, cli_env, run_script
from tests.helpers.data import copy_mnist_files, data_kwargs, validate_config
from trainscope.core.errors import ConfigError, DataError
from trainscope.data import build_data
from trainscope.data.cache import CACHE_VERSION, tensor_checksum
from trainscope.data.files import BUNDLED_MNIST_DIR, cache_path, load_split


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


# ---------------------------------------------------------------- dataset files where users keep them, read-only, cache


QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "logging=minimal"]


def copy_gz_files(folder: Path, names: str = "*.gz") -> Path:
    folder.mkdir(parents=True)
    for path in BUNDLED_MNIST_DIR.glob(names):
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("layout", ["FashionMNIST/raw", ".", "fashion_mnist"])
def test_fashion_mnist_is_found_in_a_torchvision_root_or_a_plain_folder(tmp_path: Path, layout: str) -> None:
    copy_gz_files(tmp_path / "copy" / layout)  # the sample's files stand in for Fashion-MNIST's (same names)
    data = build_data(**data_kwargs(tmp_path / "copy", "fashion_mnist", download=False))
    assert data.class_names[0] == "T-shirt/top"
    assert data.train.num_samples + data.val.num_samples == 4000
    assert not list((tmp_path / "copy").rglob("*-ubyte")), "nothing is unpacked next to the user's files"


def test_missing_files_are_named(tmp_path: Path) -> None:
    folder = copy_gz_files(tmp_path / "copy" / "FashionMNIST" / "raw", "*images*.gz")
    with pytest.raises(DataError) as raised:
        build_data(**data_kwargs(tmp_path / "copy", "fashion_mnist", download=True))
    assert str(raised.value) == (
        f"fashion_mnist in {folder} is missing train-labels-idx1-ubyte(.gz), t10k-labels-idx1-ubyte(.gz); "
        "put the missing files there"
    )
    with pytest.raises(DataError, match=r"not found in .* \(wanted train-images-idx3-ubyte\(.gz\), train-labels"):
        build_data(**data_kwargs(tmp_path / "empty", "fashion_mnist", download=False))


@pytest.mark.parametrize("below", [".", "mnist", "data/mnist"])
def test_a_data_root_that_is_or_lies_below_a_file_names_that_file(tmp_path: Path, below: str) -> None:
    """`data.root=<file>` and `data.root=<file>/sub` (a typo, a tab-completed file) say which path is a file."""
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("")
    with pytest.raises(DataError) as raised:
        build_data(**data_kwargs(not_a_folder / below, "mnist", download=False))
    assert str(raised.value) == (
        f"{not_a_folder} is a file, not a directory; set paths.data_dir (or data.root) to a folder"
    )


@pytest.mark.slow
def test_a_data_directory_that_is_a_file_is_named_as_such(train, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("")
    result = run_script("train.py", QUICK, train.output_root, not_a_folder)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {not_a_folder} is a file, not a directory; set paths.data_dir (or data.root) to a folder"
    )
    assert result.stdout.count("is a file") == 0, "printed once, on stderr"
    assert not list(train.output_root.glob("runs/*/*")), "a run that failed on its data leaves no folder"


def read_only(folder: Path, command: list[str]) -> list[str]:
    """`command` with `folder` bind-mounted read-only in its own user+mount namespace.

    Tests run as root, which writes through any permission bit; a read-only mount refuses root too
    (EROFS, exactly what a read-only dataset share gives), and `unshare -rm` needs no privileges.
    """
    mount = f'mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder} && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", mount, "sh", *command]


@pytest.mark.slow
def test_read_only_data_dirs_train(tmp_path: Path) -> None:
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.fail("unshare -rm is needed to make a read-only mount for this test")
    data_dir = tmp_path / "read-only-data"
    copy_gz_files(data_dir / "FashionMNIST" / "raw")
    (data_dir / "fashion_mnist").mkdir()  # the cache folder exists: torch.save itself meets the read-only disk
    before = sorted(str(path.relative_to(data_dir)) for path in data_dir.rglob("*"))
    for data in ("mnist_sample", "fashion_mnist"):
        result = subprocess.run(
            read_only(data_dir, [sys.executable, "train.py", f"data={data}", *QUICK]),
            cwd=REPO_ROOT, env=cli_env(tmp_path / data, data_dir), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"could not write cache {data_dir / data / 'cache-train.pt'} (" in result.stdout
        assert "Read-only file system" in result.stdout and "training from memory" in result.stdout
    assert sorted(str(path.relative_to(data_dir)) for path in data_dir.rglob("*")) == before


def test_an_altered_cache_is_caught_by_its_checksum(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = validate_config(tmp_path, "mnist_sample")
    original = load_split(config, "train")
    path = cache_path(config, "train")
    cached = torch.load(path, weights_only=True)
    assert cached["version"] == CACHE_VERSION and cached["checksum"] == tensor_checksum(
        original.images, original.labels
    )
    cached["images"][:7] = 255 - cached["images"][:7]  # 7 images changed, header untouched
    torch.save(cached, path)

    with caplog.at_level(logging.WARNING):
        again = load_split(config, "train")
    assert f"cache {path} does not match its checksum" in caplog.text
    assert not again.from_cache and torch.equal(again.images, original.images)
    assert load_split(config, "train").from_cache, "the cache is written again, intact"
