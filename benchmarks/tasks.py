"""What the task layer costs: trainscope's epoch against a hand-written loop, for classification and a table regression.

    python benchmarks/tasks.py                       # both workloads, 3 rounds of 3 timed epochs, the auto device
    python benchmarks/tasks.py --rounds 1 --epochs 2 # a quick look
    python benchmarks/tasks.py --clock cpu --threads 1   # on a shared machine: CPU time, one thread

In one process, with the same model, data, batches, optimizer, device and seed, it times one epoch (train pass +
validation pass) of:

  raw         a hand-written loop over preloaded tensors: the task's loss by hand, its metric sums on the device,
              read once per epoch (for regression: targets standardized with the training split, as the task does)
  loop        `trainscope.session.run.train` with `callbacks=none` and monitoring off (no checkpoints, health
              checks, panels, logging-step reads or progress bar): the loop and the task layer, as the raw loop is
  default     the same with the default callbacks and monitoring (what a user runs: a checkpoint every epoch,
              health checks, TensorBoard panels, a read every `log_every_n_steps`)

Workloads: `task=classification` of synthetic 28x28 images with `model=mlp` (throughput.py's raw loop and run), and
`task=regression` on a CSV table (20,000 rows, 32 features, `model=mlp` 256-256) through `data=table`. Variants run
interleaved, `--rounds` times, so load from other processes hits each alike; the median epoch is reported (the
fastest with `--statistic min`, for a loaded machine), with loop / raw and default / raw as the ratios. On CUDA it
also counts the device syncs of every training step (`torch.cuda.set_sync_debug_mode`): a step that does not log
must have none.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import throughput
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, open_dict
from throughput import (  # benchmarks/ is this script's first sys.path entry
    EpochTimer,
    Workload,
    compose_config,
    compose_overrides,
    monitoring_off,
    run_raw,
    synchronize,
    synthetic_splits,
)

from trainscope.core.callback import Callback
from trainscope.data.build import carve_indices
from trainscope.engine.build import build_optimizer, select_device
from trainscope.models.build import build_model

IMAGES = Workload("mlp", (1, 28, 28), num_samples=20_000)
ROWS, FEATURES, BATCH = 20_000, 32, 256
TABLE_MODEL = "[256,256]"


def write_table(path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(ROWS, FEATURES, generator=generator)
    target = features @ torch.randn(FEATURES, generator=generator) + torch.randn(ROWS, generator=generator)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"x{index}" for index in range(FEATURES)), "y"])
        writer.writerows([*row, value] for row, value in zip(features.tolist(), target.tolist(), strict=True))
    return path


def table_config(table: Path, device: str, epochs: int, extra: list[str]) -> DictConfig:
    overrides = [
        "task=regression",
        "data=table",
        f"data.path={table}",
        "data.target=y",
        f"data.batch_size={BATCH}",
        "data.val_fraction=0.1",
        "data.test_fraction=0",
        "model=mlp",
        f"model.hidden_sizes={TABLE_MODEL}",
        f"trainer.max_epochs={epochs}",
        f"trainer.device={device}",
        "trainer.seed=0",
        "trainer.test=false",
        *extra,
    ]
    return compose_overrides(overrides)


def run_raw_table(table: Path, device: torch.device, epochs: int) -> list[float]:
    """The regression floor: standardized features and targets preloaded, MSE, squared-error sums read per epoch."""
    cfg = table_config(table, str(device), epochs, [])
    lines = list(csv.reader(table.read_text().splitlines()))[1:]
    values = torch.tensor([[float(cell) for cell in row] for row in lines])
    features, target = values[:, :-1].double(), values[:, -1:].double()
    train_rows, val_rows, _ = carve_indices(len(values), 0.1, 0.0, 0)
    mean, std = features[train_rows].mean(0), features[train_rows].std(0, unbiased=False)
    target_mean, target_std = target[train_rows].mean(0), target[train_rows].std(0, unbiased=False)
    x = ((features - mean) / std).float().to(device)
    y = ((target - target_mean) / target_std).float().to(device)
    torch.manual_seed(0)
    model = build_model(cfg.model, (FEATURES,), 1).to(device)
    optimizer = build_optimizer(cfg, model)
    train_x, train_y, val_x, val_y = x[train_rows], y[train_rows], x[val_rows], y[val_rows]
    seconds = []
    for _ in range(epochs):  # throughput.run_raw's epoch, with the squared error for the task's loss and metric
        synchronize(device)
        start = throughput.clock()
        model.train()
        order = torch.randperm(len(train_y), device=device)
        for begin in range(0, len(train_y), BATCH):
            rows = order[begin : begin + BATCH]
            loss = F.mse_loss(model(train_x[rows]), train_y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        squared = torch.zeros((), device=device)
        with torch.no_grad():
            for begin in range(0, len(val_y), BATCH):
                squared += (model(val_x[begin : begin + BATCH]) - val_y[begin : begin + BATCH]).square().sum()
        float(squared)
        seconds.append(throughput.clock() - start)
    return seconds


def timed_run(cfg: DictConfig, run_root: Path) -> list[float]:
    """Seconds of each epoch of `trainscope.session.run.train(cfg)`, as `EpochTimer` marks them."""
    from trainscope.session.run import train

    EpochTimer.marks = []
    train(cfg, Path(tempfile.mkdtemp(dir=run_root)))
    marks = EpochTimer.marks
    return [end - begin for begin, end in zip(marks, marks[1:], strict=False)]


TIMER = "+callbacks.epoch_timer._target_=__main__.EpochTimer"


def variants(compose: Callable[[list[str]], DictConfig], steps: int) -> dict[str, DictConfig]:
    """A workload's `loop` config (no callbacks: checkpoints, health checks, early stopping; no panels, no
    logging-step reads, no progress bar: the loop and the task alone, as the raw loop is) and its `default` one."""
    return {
        "loop": compose([*monitoring_off(compose([]), steps), "callbacks=none", TIMER]),
        "default": compose([TIMER, "callbacks.early_stopping.patience=1000000"]),  # synthetic data saturates
    }


class StepSyncs(Callback):
    """Device syncs recorded (as sync-debug warnings) during each training step, split by logging steps."""

    caught: ClassVar[list[warnings.WarningMessage]] = []
    quiet: ClassVar[list[int]] = []  # syncs of each step that did not log
    logging: ClassVar[list[int]] = []

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.caught.clear()

    def on_train_batch_end(self, trainer: Any, step_metrics: dict[str, float] | None) -> None:
        syncs = sum("synchroniz" in str(warning.message) for warning in self.caught)
        (self.quiet if step_metrics is None else self.logging).append(syncs)
        self.caught.clear()


def count_syncs(cfg: DictConfig, run_root: Path) -> tuple[int, int, int]:
    """(steps without logging, their syncs, most syncs of a logging step) of one monitored epoch on CUDA."""
    from trainscope.session.run import train

    StepSyncs.quiet, StepSyncs.logging = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StepSyncs.caught = caught
        with open_dict(cfg):
            cfg.callbacks["step_syncs"] = {"_target_": "__main__.StepSyncs"}
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(cfg, Path(tempfile.mkdtemp(dir=run_root)))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return len(StepSyncs.quiet), sum(StepSyncs.quiet), max(StepSyncs.logging, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: this process's CPU time")
    parser.add_argument(
        "--statistic",
        choices=("median", "min"),
        default="median",
        help="of each variant's epochs; min: other processes only ever add time, so on a loaded machine the fastest "
        "epoch is the closest to the code's own cost",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":  # what other processes on a shared machine barely disturb (throughput.py's clock)
        throughput.clock = time.process_time
    device = select_device(args.device)
    scratch = Path(tempfile.mkdtemp(prefix="trainscope-bench-tasks-"))
    table = write_table(scratch / "table.csv")
    train_split, val_split = synthetic_splits(IMAGES)
    epochs = args.epochs + 1  # the first epoch of every variant warms up and is not counted
    images_cfg = compose_config(IMAGES, str(device), epochs, [])
    image_steps = epochs * -(-int(IMAGES.num_samples * 0.9) // IMAGES.batch_size)
    table_steps = epochs * -(-int(ROWS * 0.9) // BATCH)
    configs = {
        "classification": variants(lambda extra: compose_config(IMAGES, str(device), epochs, extra), image_steps),
        "regression": variants(lambda extra: table_config(table, str(device), epochs, extra), table_steps),
    }
    raw_runs = {
        "classification": lambda: run_raw(images_cfg, IMAGES, train_split, val_split, device, epochs),
        "regression": lambda: run_raw_table(table, device, epochs),
    }
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):  # interleaved: load from other processes hits every variant alike
        for task, run_raw_loop in raw_runs.items():
            times.setdefault((task, "raw"), []).extend(run_raw_loop()[1:])
            for variant, cfg in configs[task].items():
                times.setdefault((task, variant), []).extend(timed_run(cfg, scratch)[1:])
    print(
        f"device {device}, torch {torch.__version__} ({torch.get_num_threads()} threads), {args.clock} clock, "
        f"{args.rounds} rounds x {args.epochs} timed epochs, {args.statistic} epoch\n"
    )
    print("| task | raw epoch (s) | loop (s) | loop / raw | default (s) | default / raw |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for task in ("classification", "regression"):
        statistic = statistics.median if args.statistic == "median" else min
        floor, loop, default = (statistic(times[(task, variant)]) for variant in ("raw", "loop", "default"))
        print(f"| {task} | {floor:.3f} | {loop:.3f} | {loop / floor:.3f} | {default:.3f} | {default / floor:.3f} |")
    if device.type == "cuda":
        print("\n| task | steps without logging | their device syncs | syncs per logging step |")
        print("| --- | ---: | ---: | ---: |")
        configs = {
            "classification": compose_config(IMAGES, str(device), 1, []),
            "regression": table_config(table, str(device), 1, []),
        }
        for task, cfg in configs.items():
            quiet, syncs, per_logging = count_syncs(cfg, scratch)
            print(f"| {task} | {quiet} | {syncs} | {per_logging} |")


if __name__ == "__main__":
    sys.exit(main())
