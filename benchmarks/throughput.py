"""How much trainscope costs on top of the model's own compute, and how it compares with the usual pipelines.

    python benchmarks/throughput.py                      # mlp, cnn, lenet on the auto device; ~10 min on 2 CPU cores
    python benchmarks/throughput.py --models cnn --rounds 1 --epochs 2 --no-startup   # a quick look

In one process, for each model, with the same data, batch size, number of steps, device, seed and optimizer,
it times one epoch (train pass + validation pass) of:

  (a) raw        a hand-written PyTorch loop over preloaded, normalized tensors: the floor
  (b) trainscope `trainscope.session.run.train` with the default config (monitoring, progress, checkpoints)
  (c) no-monitor the same with monitoring off (no step reads, no progress bar, no monitor callbacks)
  (d) tutorial   torchvision MNIST-style dataset, per-sample ToTensor + Normalize through a DataLoader
  (e) lightning  PyTorch Lightning with its TensorBoardLogger and defaults (if `pip install -e .[bench]`)

Each variant runs `--warmup` epochs that are not timed, then `--epochs` timed epochs; the whole sequence is
repeated `--rounds` times, interleaved, so load from other processes hits every variant alike. The median
epoch is reported. It also times `python train.py --help` / `--cfg job` against a bare Hydra app.
Results and the machine they ran on go in benchmarks/RESULTS.md; timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn

from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.core.callback import Callback
from trainscope.data.build import split_indices
from trainscope.data.synthetic import make_synthetic
from trainscope.engine.build import build_optimizer, select_device
from trainscope.models.build import build_model

REPO_ROOT = Path(__file__).resolve().parents[1]
# Wall time by default; `--clock cpu` counts this process's CPU time (all its threads) instead, which other
# processes on a busy machine barely disturb: use it with `--threads 1` when the machine is shared.
clock = time.perf_counter
VARIANTS = ("raw", "trainscope", "no-monitor", "tutorial", "lightning")


@dataclass(frozen=True)
class Workload:
    """One model on one data shape; every variant trains exactly this."""

    model: str
    input_shape: tuple[int, int, int]
    num_samples: int  # train images before the val carve-out (val_fraction 0.1)
    batch_size: int = 128
    num_classes: int = 10

    @property
    def mean(self) -> list[float]:
        return [0.1307] * self.input_shape[0] if self.input_shape[0] == 1 else [0.4914, 0.4822, 0.4465]

    @property
    def std(self) -> list[float]:
        return [0.3081] * self.input_shape[0] if self.input_shape[0] == 1 else [0.2470, 0.2435, 0.2616]


@dataclass
class Split:
    images: Tensor  # uint8 [N, C, H, W] on the CPU
    labels: Tensor  # int64 [N]


@dataclass
class Timings:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VARIANTS})

    def median(self, variant: str) -> float | None:
        values = self.seconds[variant]
        return statistics.median(values) if values else None


# ----------------------------------------------------------------------------------------------------------
# data and config shared by every variant


def synthetic_splits(workload: Workload) -> tuple[Split, Split]:
    """The images trainscope's `data=synthetic` trains on, split into train/val exactly as it splits them."""
    images, labels = make_synthetic(workload.input_shape, workload.num_classes, workload.num_samples, "train")
    train_rows, val_rows = split_indices(len(labels), 0.1, 0)
    return Split(images[train_rows], labels[train_rows]), Split(images[val_rows], labels[val_rows])


def normalized(split: Split, workload: Workload, device: torch.device) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(workload.mean).view(-1, 1, 1)
    std = torch.tensor(workload.std).view(-1, 1, 1)
    inputs = (split.images.float().div(255) - mean) / std
    return inputs.to(device), split.labels.to(device)


def compose_config(workload: Workload, device: str, epochs: int, extra: list[str]) -> DictConfig:
    """The config `python train.py <overrides>` would compose, as the task function receives it."""
    overrides = [
        "data=synthetic",
        f"data.num_samples={workload.num_samples}",
        f"data.input_shape=[{','.join(map(str, workload.input_shape))}]",
        f"data.mean=[{','.join(map(str, workload.mean))}]",
        f"data.std=[{','.join(map(str, workload.std))}]",
        f"data.batch_size={workload.batch_size}",
        "data.val_fraction=0.1",
        f"model={workload.model}",
        f"trainer.max_epochs={epochs}",
        f"trainer.device={device}",
        "trainer.seed=0",
        "trainer.test=false",
        *extra,
    ]
    return compose_overrides(overrides)


def compose_overrides(overrides: list[str]) -> DictConfig:
    """The config `python train.py <overrides>` composes, as its task function receives it."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_model(cfg: DictConfig, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(int(cfg.trainer.seed))
    model = build_model(cfg.model).to(device)  # model.init_from is trainscope's key, not the model's
    return model, build_optimizer(cfg, model)


# ----------------------------------------------------------------------------------------------------------
# (a) the floor: a hand-written loop over preloaded normalized tensors


@dataclass(frozen=True)
class Tuning:
    """The GPU switches a raw loop can turn on as `trainer.precision/channels_last/compile` do (`benchmarks/gpu.py`)."""

    bf16: bool = False  # autocast to bfloat16, as trainer.precision=bf16
    channels_last: bool = False  # NHWC weights and batches, as trainer.channels_last=true
    compile: str | None = None  # a torch.compile backend ("inductor"), as trainer.compile

    def overrides(self) -> list[str]:
        """The same switches for `python train.py`."""
        return [
            f"trainer.precision={'bf16' if self.bf16 else '32'}",
            f"trainer.channels_last={str(self.channels_last).lower()}",
            f"trainer.compile={self.compile or 'false'}",
        ]


def run_raw(
    cfg: DictConfig,
    workload: Workload,
    train: Split,
    val: Split,
    device: torch.device,
    epochs: int,
    tuning: Tuning = Tuning(),  # noqa: B008 (frozen: shared safely)
) -> list[float]:
    model, optimizer = fresh_model(cfg, device)
    torch.backends.cudnn.benchmark = True  # trainscope's default (trainer.cudnn_benchmark)
    memory_format = torch.channels_last if tuning.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    forward = torch.compile(model, backend=tuning.compile) if tuning.compile else model
    train_x, train_y = normalized(train, workload, device)
    val_x, val_y = normalized(val, workload, device)
    batch = workload.batch_size

    def precision() -> torch.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=tuning.bf16)

    seconds = []
    for _ in range(epochs):
        synchronize(device)
        start = clock()
        model.train()
        order = torch.randperm(len(train_y), device=device)
        for begin in range(0, len(train_y), batch):
            rows = order[begin : begin + batch]
            with precision():
                loss = F.cross_entropy(forward(train_x[rows].contiguous(memory_format=memory_format)), train_y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = torch.zeros((), device=device)
        with torch.no_grad(), precision():
            for begin in range(0, len(val_y), batch):
                inputs = val_x[begin : begin + batch].contiguous(memory_format=memory_format)
                correct += (forward(inputs).argmax(1) == val_y[begin : begin + batch]).sum()
        float(correct)
        seconds.append(clock() - start)
    return seconds


# ----------------------------------------------------------------------------------------------------------
# (b), (c) trainscope, in this process, through the same function `python train.py` calls


class EpochTimer(Callback):
    """Marks each epoch start and the end of fit: an epoch then spans every callback's and monitor's work
    (train pass, validation, logging, images, histograms, checkpoints), whatever order they run in."""

    marks: ClassVar[list[float]] = []

    def on_train_epoch_start(self, trainer: Any) -> None:
        synchronize(trainer.device)
        EpochTimer.marks.append(clock())

    def on_fit_end(self, trainer: Any) -> None:
        synchronize(trainer.device)
        EpochTimer.marks.append(clock())


# What "monitoring off" turns off: the `logging` switches of conf/logging/minimal.yaml and then some.
MONITORING_OFF = {
    "progress_bar": "false",
    "text": "false",
    "images": "false",
    "worst_images": "false",
    "confusion_matrix": "false",
    "histograms_every_n_epochs": "0",
    "graph": "false",
}


def monitoring_off(cfg: DictConfig, total_steps: int) -> list[str]:
    """Overrides that switch monitoring off: no step reads, no progress bar, no TensorBoard monitors."""
    overrides = [f"logging.log_every_n_steps={total_steps + 1}"]
    overrides += [f"logging.{key}={value}" for key, value in MONITORING_OFF.items() if key in cfg.logging]
    return overrides


def run_trainscope(
    workload: Workload, device: str, epochs: int, monitor: bool, run_root: Path, extra: tuple[str, ...] = ()
) -> list[float]:
    from trainscope.session.run import train

    base = [
        "+callbacks.epoch_timer._target_=__main__.EpochTimer",
        "callbacks.early_stopping.patience=1000000",  # synthetic data saturates val/acc: keep every epoch
    ]
    if not monitor:
        default = compose_config(workload, device, epochs, [])
        steps = epochs * -(-int(workload.num_samples * 0.9) // workload.batch_size)
        base += monitoring_off(default, steps)
    cfg = compose_config(workload, device, epochs, [*base, *extra])
    EpochTimer.marks = []
    run_dir = Path(tempfile.mkdtemp(dir=run_root))
    train(cfg, run_dir)
    marks = EpochTimer.marks
    return [end - begin for begin, end in zip(marks, marks[1:], strict=False)]


# ----------------------------------------------------------------------------------------------------------
# (d) the tutorial pipeline (pytorch/examples mnist): per-sample PIL -> ToTensor -> Normalize in a DataLoader


def write_idx(path: Path, array: Tensor) -> None:
    """An IDX file as MNIST ships it, so torchvision's own MNIST class reads our images."""
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    with open(path, "wb") as out:
        out.write(struct.pack(">i", magic) + b"".join(struct.pack(">i", size) for size in array.shape))
        out.write(array.to(torch.uint8).numpy().tobytes())


def tutorial_datasets(workload: Workload, train: Split, val: Split, root: Path) -> tuple[Any, Any]:
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(workload.mean, workload.std)])
    if workload.input_shape[0] == 1:
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for prefix, split in (("train", train), ("t10k", val)):
            write_idx(raw / f"{prefix}-images-idx3-ubyte", split.images[:, 0])
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", split.labels)
        return (
            datasets.MNIST(str(root), train=True, transform=transform),
            datasets.MNIST(str(root), train=False, transform=transform),
        )
    return CIFARStyle(train, transform), CIFARStyle(val, transform)


class CIFARStyle(torch.utils.data.Dataset):
    """torchvision's CIFAR10 item access (HWC uint8 numpy -> PIL -> transform) over our images."""

    def __init__(self, split: Split, transform: Callable[[Any], Tensor]) -> None:
        self.data = split.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


def run_tutorial(
    cfg: DictConfig, workload: Workload, train: Split, val: Split, device: torch.device, epochs: int, root: Path
) -> list[float]:
    train_set, val_set = tutorial_datasets(workload, train, val, root)
    loader_args: dict[str, Any] = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=workload.batch_size, shuffle=True, **loader_args)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=workload.batch_size, **loader_args)
    model, optimizer = fresh_model(cfg, device)
    seconds = []
    for _ in range(epochs):
        synchronize(device)
        start = clock()
        model.train()
        for batch_index, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            optimizer.step()
            if batch_index % 10 == 0:  # the example prints loss.item() every log_interval=10 batches
                loss.item()
        model.eval()
        correct = 0
        with torch.no_grad():
            for data, target in val_loader:
                data, target = data.to(device), target.to(device)
                correct += model(data).argmax(dim=1).eq(target).sum().item()
        seconds.append(clock() - start)
    return seconds


# ----------------------------------------------------------------------------------------------------------
# (e) PyTorch Lightning with TensorBoardLogger, fed the same preloaded batches as the raw loop


class PreloadedBatches:
    """Shuffled slices of on-device tensors: Lightning gets the raw loop's input pipeline, not a DataLoader."""

    def __init__(self, inputs: Tensor, targets: Tensor, batch_size: int, shuffle: bool) -> None:
        self.inputs, self.targets, self.batch_size, self.shuffle = inputs, targets, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.targets) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        count = len(self.targets)
        order = torch.randperm(count, device=self.targets.device) if self.shuffle else None
        for begin in range(0, count, self.batch_size):
            if order is None:
                yield self.inputs[begin : begin + self.batch_size], self.targets[begin : begin + self.batch_size]
            else:
                rows = order[begin : begin + self.batch_size]
                yield self.inputs[rows], self.targets[rows]


def run_lightning(
    cfg: DictConfig, workload: Workload, train: Split, val: Split, device: torch.device, epochs: int, root: Path
) -> list[float]:
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    model, _ = fresh_model(cfg, device)

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> Tensor:
            inputs, targets = batch
            logits = self.model(inputs)
            loss = F.cross_entropy(logits, targets)
            self.log("train/loss", loss)
            self.log("train/acc", (logits.argmax(1) == targets).float().mean())
            return loss

        def validation_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> None:
            inputs, targets = batch
            logits = self.model(inputs)
            self.log("val/loss", F.cross_entropy(logits, targets))
            self.log("val/acc", (logits.argmax(1) == targets).float().mean())

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return build_optimizer(cfg, self.model)

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.marks: list[float] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            synchronize(device)
            self.marks.append(clock())

        def on_train_end(self, trainer: Any, module: Any) -> None:
            synchronize(device)
            self.marks.append(clock())

    timer = Timer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=TensorBoardLogger(str(root), name="lightning"),
        default_root_dir=str(root),
        callbacks=[timer],
    )
    trainer.fit(
        Classifier(),
        train_dataloaders=PreloadedBatches(*normalized(train, workload, device), workload.batch_size, True),
        val_dataloaders=PreloadedBatches(*normalized(val, workload, device), workload.batch_size, False),
    )
    return [end - begin for begin, end in zip(timer.marks, timer.marks[1:], strict=False)]


# ----------------------------------------------------------------------------------------------------------
# startup: `python train.py --help` must not pay for torch


BARE_HYDRA_APP = """
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    pass

main()
"""


def time_command(command: list[str], repeats: int, env: dict[str, str]) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def startup_table(repeats: int, scratch: Path) -> str:
    bare = scratch / "bare_hydra_app.py"
    bare.write_text(BARE_HYDRA_APP)
    env = {**os.environ, "TRAINSCOPE_OUTPUT_DIR": str(scratch / "outputs"), "TRAINSCOPE_DATA_DIR": str(scratch)}
    rows = ["| command | median seconds |", "| --- | --- |"]
    for label, command in (
        ("python train.py --help", [sys.executable, "train.py", "--help"]),
        ("bare Hydra app --help", [sys.executable, str(bare), "--help"]),
        ("python train.py --cfg job", [sys.executable, "train.py", "--cfg", "job"]),
        ("bare Hydra app --cfg job", [sys.executable, str(bare), "--cfg", "job"]),
        ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
    ):
        rows.append(f"| `{label}` | {time_command(command, repeats, env):.2f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------------------------


WORKLOADS = {
    "mlp": Workload("mlp", (1, 28, 28), num_samples=60_000),
    "cnn": Workload("cnn", (1, 28, 28), num_samples=12_800),
    "lenet": Workload("lenet", (3, 32, 32), num_samples=50_000),
}


def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


def benchmark(workload: Workload, device_name: str, args: argparse.Namespace, scratch: Path) -> Timings:
    device = select_device(device_name)
    cfg = compose_config(workload, device_name, 1, [])
    train, val = synthetic_splits(workload)
    epochs = args.warmup + args.epochs
    timings = Timings()
    runners: dict[str, Callable[[], list[float]]] = {
        "raw": lambda: run_raw(cfg, workload, train, val, device, epochs),
        "trainscope": lambda: run_trainscope(workload, device_name, epochs, True, scratch),
        "no-monitor": lambda: run_trainscope(workload, device_name, epochs, False, scratch),
        "tutorial": lambda: run_tutorial(
            cfg, workload, train, val, device, epochs, Path(tempfile.mkdtemp(dir=scratch))
        ),
    }
    if lightning_available() and not args.no_lightning:
        runners["lightning"] = lambda: run_lightning(
            cfg, workload, train, val, device, epochs, Path(tempfile.mkdtemp(dir=scratch))
        )
    for round_index in range(args.rounds):
        for name, runner in runners.items():
            load = os.getloadavg()[0]
            seconds = runner()[args.warmup :]
            timings.seconds[name] += seconds
            print(
                f"  {workload.model} round {round_index + 1} {name:<10} epochs {[round(s, 3) for s in seconds]} "
                f"(load {load:.1f})",
                flush=True,
            )
    return timings


def ablation(workload: Workload, device: str, args: argparse.Namespace, scratch: Path) -> str:
    """What each part of the default monitoring costs: monitoring off, then one part back on at a time."""
    default = compose_config(workload, device, 1, [])
    parts: dict[str, tuple[str, ...]] = {
        "monitoring off (c)": (),
        "+ step scalars (log_every_n_steps default)": (
            f"logging.log_every_n_steps={default.logging.log_every_n_steps}",
        ),
        "+ progress bar": ("logging.progress_bar=true",),
        "- checkpoints (callbacks.checkpoint=null)": ("callbacks.checkpoint=null",),
    }
    for key, value in default.logging.items():
        if key in MONITORING_OFF and key != "progress_bar" and str(value).lower() not in ("false", "0"):
            parts[f"+ {key}={str(value).lower()}"] = (f"logging.{key}={str(value).lower()}",)
    parts["default monitoring (b)"] = ("__default__",)
    epochs = args.warmup + args.epochs
    seconds: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, extra in parts.items():
            if extra == ("__default__",):
                seconds[name] += run_trainscope(workload, device, epochs, True, scratch)[args.warmup :]
            else:
                seconds[name] += run_trainscope(workload, device, epochs, False, scratch, extra)[args.warmup :]
    base = statistics.median(seconds["monitoring off (c)"])
    rows = [
        f"Ablation, {workload.model} ({workload.num_samples} samples): median epoch and its cost over (c)",
        "",
        "| configuration | epoch seconds | vs (c) |",
        "| --- | --- | --- |",
    ]
    for name, values in seconds.items():
        median = statistics.median(values)
        rows.append(f"| {name} | {median:.3f} | {100 * (median / base - 1):+.1f}% |")
    return "\n".join(rows)


def results_table(results: dict[str, Timings], device: str) -> str:
    header = (
        "| model | data | steps/epoch | (a) raw samples/s | (b) trainscope | (c) no monitoring | (d) tutorial "
        "| (e) lightning | (b)/(a) | (b)/(c) | (d)/(b) | (e)/(b) |"
    )
    rows = [header, "|" + " --- |" * 12]
    for model, timings in results.items():
        workload = WORKLOADS[model]
        train_count = workload.num_samples - round(workload.num_samples * 0.1)
        steps = -(-train_count // workload.batch_size)
        medians = {name: timings.median(name) for name in VARIANTS}

        def rate(name: str) -> str:
            value = medians[name]  # noqa: B023 (used inside this iteration only)
            return f"{train_count / value:,.0f}" if value else "-"  # noqa: B023

        def ratio(top: str, bottom: str) -> str:
            upper, lower = medians[top], medians[bottom]  # noqa: B023
            return f"{upper / lower:.3f}" if upper and lower else "-"

        shape = "x".join(map(str, workload.input_shape))
        rows.append(
            f"| {model} | {shape}, {train_count} train | {steps} | {rate('raw')} | {rate('trainscope')} "
            f"| {rate('no-monitor')} | {rate('tutorial')} | {rate('lightning')} | {ratio('trainscope', 'raw')} "
            f"| {ratio('trainscope', 'no-monitor')} | {ratio('tutorial', 'trainscope')} "
            f"| {ratio('lightning', 'trainscope')} |"
        )
    return "\n".join(rows)


def machine_description(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}, GPU {gpu}, device {device}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repeats of every variant")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per variant and round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first (compile, caches, allocator)")
    parser.add_argument("--samples", type=int, default=None, help="override every workload's train image count")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU time")
    parser.add_argument("--no-lightning", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--ablate", action="store_true", help="only: what each monitoring part costs")
    args = parser.parse_args()
    global clock
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        clock = time.process_time

    device = str(select_device(args.device))
    with tempfile.TemporaryDirectory(prefix="trainscope-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        os.environ["TRAINSCOPE_OUTPUT_DIR"] = str(scratch / "outputs")
        os.environ["TRAINSCOPE_DATA_DIR"] = str(scratch / "data")
        print(machine_description(device), flush=True)
        if args.samples:
            for name, workload in WORKLOADS.items():
                WORKLOADS[name] = Workload(workload.model, workload.input_shape, args.samples, workload.batch_size)
        if args.ablate:
            for model in args.models:
                print(ablation(WORKLOADS[model], device, args, scratch), flush=True)
            return
        results = {model: benchmark(WORKLOADS[model], device, args, scratch) for model in args.models}
        print()
        print(results_table(results, device))
        if not args.no_startup:
            print()
            startup_table(5, scratch)


if __name__ == "__main__":
    main()
