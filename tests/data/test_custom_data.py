"""`data=custom`: the user's own torch Dataset classes or a function returning the splits."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from examples.shapes_dataset import Shapes
from tests.helpers.task_data import BrokenItem
from trainscope.core.errors import ConfigError, DataError
from trainscope.data import build_custom_data
from trainscope.data.custom import DatasetItemFailed


def test_custom_data_from_a_function_returning_all_splits() -> None:
    images, labels = torch.rand(40, 3, 8, 8), torch.arange(40) % 4
    splits = {"train": TensorDataset(images[:30], labels[:30]), "test": TensorDataset(images[30:], labels[30:])}
    data = build_custom_data(
        train=splits, num_classes=4, root=".", batch_size=8, val_fraction=0.2, split_seed=0, num_workers=0,
        device="cpu", seed=0,
    )  # fmt: skip
    assert data.input_shape == (3, 8, 8) and data.num_classes == 4 and data.class_names[3] == "class_3"
    assert (data.train.num_samples, data.val.num_samples, data.test.num_samples) == (24, 6, 10)  # type: ignore[union-attr]
    inputs, targets = next(iter(data.test))  # type: ignore[arg-type]
    assert torch.equal(inputs, images[30:38]) and torch.equal(targets, labels[30:38])


def test_custom_data_reads_shape_and_classes_from_the_dataset() -> None:
    data = build_custom_data(
        train=Shapes("train", num_samples=30), root=".", batch_size=8, val_fraction=0.2, split_seed=0, num_workers=0,
        device="cpu", seed=0,
    )  # fmt: skip
    assert data.input_shape == (1, 24, 24) and data.class_names == ["disc", "square", "cross"] and data.test is None


@pytest.mark.parametrize(
    ("train_split", "options", "error", "message"),
    [
        ([1, 2, 3, 4], {}, ConfigError, "data.train returned 4 items"),
        ({"training": None}, {}, ConfigError, "data.train returned a dict with keys"),
        ("not a dataset", {}, ConfigError, "data.train is a str, not a Dataset"),
        (TensorDataset(torch.rand(4, 1, 2, 2)), {"num_classes": 2}, DataError, "reading data.train.0. failed: "),
        (TensorDataset(torch.rand(4, 1, 2, 2), torch.zeros(4)), {}, ConfigError, "set data.num_classes"),
    ],
)
def test_bad_custom_datasets_are_one_line(train_split: Any, options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build_custom_data(
            train=train_split, root=".", batch_size=8, val_fraction=0.2, split_seed=0, num_workers=0,
            device="cpu", seed=0, **options,
        )  # fmt: skip


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_dataset_that_raises_on_one_item_is_named_with_the_item(num_workers: int) -> None:
    """One line with the class, the index and the original first line; the traceback kept for train.log."""
    data = build_custom_data(
        train=BrokenItem(), num_classes=4, root=".", batch_size=16, val_fraction=0.0, split_seed=0,
        num_workers=num_workers, device="cpu", seed=0,
    )  # fmt: skip
    with pytest.raises(DatasetItemFailed) as raised:
        for _ in data.train:  # type: ignore[union-attr]
            pass
    assert str(raised.value) == (
        "data.train (tests.helpers.task_data.BrokenItem) raised on item 7: OSError: cannot read scan_7.png"
    )
    assert "Traceback" in raised.value.details and "a second line the user need not read" in raised.value.details
