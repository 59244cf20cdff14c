"""The two loader paths (in memory, torch DataLoader) yield the same batches, each epoch its own reproducible
order, a resume mid-epoch exactly the rest of it, and seeded augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers.data import NO_AUGMENT, data_kwargs
from trainscope.data import build_data


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


def test_batched_crop_and_flip_match_a_per_sample_reference() -> None:
    from trainscope.data.augment import AugmentConfig, augment_batch
    from trainscope.data.seeding import AUGMENT_STREAM, device_generator

    images = torch.randn(16, 3, 8, 8)
    augmented = augment_batch(images, AugmentConfig(2, True), torch.zeros(3), seed=5, epoch=1, batch_index=4)
    generator = device_generator(images.device, AUGMENT_STREAM, 5, 1, 4)
    offsets = torch.randint(0, 5, (2, 16), generator=generator)
    flips = torch.rand(16, generator=generator) < 0.5
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for index in range(16):
        top, left = offsets[:, index].tolist()
        expected = padded[index, :, top : top + 8, left : left + 8]
        assert torch.equal(augmented[index], expected.flip(-1) if flips[index] else expected)


class RecordedCalls(torch.overrides.TorchFunctionMode):
    """Every torch function and tensor method called while active, with its arguments (real calls, recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple, dict]] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


def test_augmentation_draws_its_offsets_and_flips_on_the_batchs_device() -> None:
    """A crop offset or flip mask drawn on the host and copied over waits for the GPU's queued work at every step;
    both are drawn by a generator on the batch's device instead (a CPU batch here: the calls are what is checked)."""
    from trainscope.data.augment import AugmentConfig, augment_batch

    images = torch.randn(16, 3, 8, 8)
    with RecordedCalls() as recorded:
        augmented = augment_batch(images, AugmentConfig(2, True), torch.zeros(3), seed=5, epoch=1, batch_index=4)
    draws = [(func, kwargs) for func, _, kwargs in recorded.calls if func in (torch.randint, torch.rand)]
    assert [func for func, _ in draws] == [torch.randint, torch.rand]
    for _, kwargs in draws:
        assert kwargs.get("device") == images.device and kwargs["generator"].device == images.device
    again = augment_batch(images, AugmentConfig(2, True), torch.zeros(3), seed=5, epoch=1, batch_index=4)
    assert torch.equal(augmented, again), "the same (seed, epoch, batch) augments the same way"
