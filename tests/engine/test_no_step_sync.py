"""The loop reads nothing back from the device between logging steps, whatever the task.

On a GPU every read of a tensor's value (`.item()`, `.tolist()`, `float(t)`, `if t:`) waits for the queued
work; the loop and the tasks must only read once per logging window and at epoch end. Here, on the CPU, every such
read made by the loop, the tasks, the callbacks or the loggers is counted in-process (the methods patched on
`torch.Tensor`), step by step.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers.in_process import synthetic_data
from tests.helpers.task_data import MultiLabelVectors
from trainscope.config.groups.logging import LoggingConfig
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.core.callback import Callback, CallbackList
from trainscope.core.view import TrainerView
from trainscope.data import build_custom_data, build_table_data
from trainscope.data.targets import MULTI_HOT
from trainscope.engine.settings import TrainerSettings
from trainscope.engine.trainer import Trainer
from trainscope.models import MLP
from trainscope.tasks import Classification, MultiLabel, Regression, Task
from trainscope.tensorboard.writer import RunWriter

READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu")
"""Every way Python code gets a tensor's value to the host."""

LOOP_PACKAGES = {"engine", "tasks", "callbacks", "tensorboard"}
"""Reads made by code in these trainscope packages count; a DataLoader drawing its seed on the CPU does not."""


class ReadCounter:
    def __init__(self) -> None:
        self.where: list[str] = []


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReadCounter]:
    counter = ReadCounter()
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args: Any, _original: Callable[..., Any] = original, _name: str = name) -> Any:
            caller = Path(sys._getframe(1).f_code.co_filename)
            if LOOP_PACKAGES.intersection(caller.parts[-3:-1]):
                counter.where.append(f"{_name} in {caller.name}:{sys._getframe(1).f_lineno}")
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    yield counter


class RecordReadsPerStep(Callback):
    """After each step: how many reads the step made, and whether it was a logging step."""

    def __init__(self, counter: ReadCounter) -> None:
        self.counter = counter
        self.steps: list[tuple[int, bool, list[str]]] = []

    def on_train_epoch_start(self, trainer: TrainerView) -> None:
        self.counter.where.clear()  # what validation and the epoch end read is not a step's

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        self.steps.append((trainer.state.global_step, step_metrics is not None, list(self.counter.where)))
        self.counter.where.clear()


def write_table(path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(160, 4, generator=generator)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "d", "y"])
        for row in features.tolist():
            writer.writerow([*row, 3 * row[0] - row[1] + 10])
    return path


def classification(tmp_path: Path) -> tuple[Any, Task, torch.nn.Module]:
    data = synthetic_data(tmp_path / "data")
    return data, Classification(), MLP(data.input_shape, num_classes=4, hidden_sizes=[16])


def regression(tmp_path: Path) -> tuple[Any, Task, torch.nn.Module]:
    data = build_table_data(
        path=str(write_table(tmp_path / "table.csv")), target="y", batch_size=16, val_fraction=0.2, split_seed=0,
        device="cpu", seed=0,
    )  # fmt: skip
    return data, Regression(), MLP(data.input_shape, num_classes=1, hidden_sizes=[16])


def multilabel(tmp_path: Path) -> tuple[Any, Task, torch.nn.Module]:
    data = build_custom_data(
        train=MultiLabelVectors("train", num_samples=160), root=".", batch_size=16, val_fraction=0.2, split_seed=0,
        num_workers=0, device="cpu", seed=0, targets=MULTI_HOT,
    )  # fmt: skip
    return data, MultiLabel(), MLP(data.input_shape, num_classes=4, hidden_sizes=[16])


@pytest.mark.parametrize("make", [classification, regression, multilabel], ids=lambda make: make.__name__)
def test_the_loop_reads_the_device_only_on_logging_steps(tmp_path: Path, reads: ReadCounter, make: Callable) -> None:
    data, task, model = make(tmp_path)
    task.bind(data)
    recorder = RecordReadsPerStep(reads)
    trainer = Trainer(
        TrainerSettings(
            TrainerConfig(max_epochs=3),
            LoggingConfig(log_every_n_steps=3, progress_bar=False),
            monitor_metric=task.monitor.metric,
        ),
        model,
        data,
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),  # SGD: no optimizer reads of its own
        None,
        "epoch",
        CallbackList({"recorder": recorder}),
        RunWriter(tmp_path / "run", flush_secs=60),
        tmp_path / "run",
        torch.device("cpu"),
        task=task,
    )
    trainer.fit()
    assert trainer.status == "completed"
    quiet = [(step, where) for step, logged, where in recorder.steps if not logged]
    logged = [(step, where) for step, logged, where in recorder.steps if logged]
    assert len(quiet) >= 8 and len(logged) >= 4
    assert [(step, where) for step, where in quiet if where] == [], "a step without logging read the device"
    assert all(where for _, where in logged), "a logging step reads its window once"
