"""Built-in datasets where users already keep them, read-only copies, and a damaged decode cache."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import REPO_ROOT, cli_env, run_script
from tests.helpers.data import data_kwargs, validate_config
from trainscope.core.errors import DataError
from trainscope.data import build_data
from trainscope.data.cache import CACHE_VERSION, tensor_checksum
from trainscope.data.files import BUNDLED_MNIST_DIR, cache_path, load_split

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
