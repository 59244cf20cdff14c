"""Everything we want to know about trainscope on a GPU, in one command that finishes within 8 minutes.

    python benchmarks/gpu.py                      # on the first CUDA device; prints markdown for benchmarks/RESULTS.md
    python benchmarks/gpu.py --device cpu --quick # the same code paths on the CPU, small (what CI runs)

Sections, each printed as soon as it is measured:

1. **machine**: GPU name, memory, compute capability, torch / CUDA / cuDNN / driver versions.
2. **host-device syncs**: trains the CNN with default monitoring under `torch.cuda.set_sync_debug_mode("warn")`,
   armed only between steps that are not logging steps (a callback arms it after a step and disarms it before
   the next logging step and the epoch's end), and lists every synchronizing call caught: the loop promises none.
3. **per epoch against the raw loop**: the CNN at MNIST size (60,000 synthetic 1x28x28 images) and ResNet-18 at
   CIFAR size (50,000 synthetic 3x32x32, no download) with `precision=bf16` and `channels_last`, `compile` off and
   on; trainscope (default monitoring and checkpoints) against a hand-written loop with the same switches
   (`benchmarks/throughput.py::run_raw`); median epoch seconds, samples/s, the ratio, peak memory of each.
4. **language model**: `model=gpt` on a text dataset when the tree has one (tokens/s and MFU), else a note.
5. **DDP smoke test**: `trainer.devices=N` for N = every visible GPU (N > 1), and one torchrun process per GPU
   (`--nproc_per_node=N`, which for one GPU is the only way into DDP), with NCCL (`NCCL_DEBUG=INFO` shows it
   initialized); both must complete.

A section that would start after `--budget-seconds` is skipped with a note, so the command ends in time even on a
slow GPU. Results and the date and GPU go in benchmarks/RESULTS.md; timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from throughput import (  # benchmarks/throughput.py: the same data, config and epoch timing as the CPU tables
    REPO_ROOT,
    EpochTimer,
    Tuning,
    Workload,
    compose_config,
    compose_overrides,
    run_raw,
    run_trainscope,
    synthetic_splits,
)

from trainscope.core.callback import Callback

BUDGET_SECONDS = 420  # every section starts before this: the whole command ends within 8 minutes
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0}
PEAK_BF16_TFLOPS |= {"L40S": 362.0, "L4": 121.0, "A10G": 70.0, "RTX 4090": 165.0}
"""Dense bf16 tensor-core peak of the GPUs we expect (vendor datasheets), for MFU; `--peak-tflops` for others."""
LM_DATA_OPTIONS = ("shakespeare_char", "text")
"""Text datasets of conf/data/ the language-model section trains `model=gpt` on, the first that exists."""


@dataclass(frozen=True)
class Sizes:
    """How big each section runs: the full GPU sizes, or `--quick` ones for a CPU."""

    cnn_samples: int = 60_000
    resnet_samples: int = 50_000
    warmup_epochs: int = 1
    timed_epochs: int = 2
    sync_check_samples: int = 12_800
    lm_train_batches: int = 200
    ddp_samples: int = 12_800
    ddp_model: str = "cnn"


# One or two batches each: on a CPU, bf16 convolutions are emulated and ResNet-18 takes seconds per batch.
QUICK = Sizes(
    cnn_samples=256,
    resnet_samples=32,  # one batch: bf16 convolutions of ResNet-18 are emulated on a CPU (5 s for 128 images)
    warmup_epochs=0,
    timed_epochs=1,
    sync_check_samples=512,
    lm_train_batches=2,
    ddp_samples=256,
    ddp_model="mlp",
)


class Budget:
    """Wall-clock time since the start; `allows()` says whether another section may still begin."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds = time.monotonic(), seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def allows(self, section: str) -> bool:
        if self.elapsed() < self.seconds:
            print(f"\n## {section}  (starting at {self.elapsed():.0f} s)\n", flush=True)
            return True
        print(f"\n## {section}\n\nskipped: the time budget of {self.seconds:.0f} s is used up", flush=True)
        return False


# ------------------------------------------------------------------------------------------------------------
# 1. machine


def machine(device: torch.device) -> None:
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    print(f"- Python {platform.python_version()}, {os.cpu_count()} CPU cores")
    if device.type != "cuda":
        print(f"- device: {device} (no GPU numbers: this run checks that every section works)")
        return
    properties = torch.cuda.get_device_properties(device)
    print(
        f"- GPU: {properties.name}, {properties.total_memory / 2**30:.1f} GiB, compute capability "
        f"{properties.major}.{properties.minor}, {properties.multi_processor_count} SMs, "
        f"{torch.cuda.device_count()} visible"
    )
    driver = _command_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    print(f"- driver: {driver or 'unknown (nvidia-smi not found)'}")


def _command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return ""


# ------------------------------------------------------------------------------------------------------------
# 2. host-device syncs outside logging steps


class SyncWindow(Callback):
    """Arms `torch.cuda.set_sync_debug_mode("warn")` across every step whose neighbours are not logging steps.

    Runs after each step (`on_train_batch_end`): the mode stays armed through the next step only when neither this
    step nor the next one reads metrics (`log_every_n_steps`) and the epoch goes on, since the epoch's end reads
    its sums.
    """

    armed_steps: int = 0
    set_mode: Callable[[str], None] = staticmethod(lambda mode: None)

    def on_train_batch_end(self, trainer: Any, step_metrics: dict[str, float] | None) -> None:
        every = trainer.log_every
        step, next_step = trainer.state.global_step, trainer.state.global_step + 1
        more = trainer.state.batch_in_epoch < trainer.batches_per_epoch
        armed = more and step % every != 0 and next_step % every != 0
        SyncWindow.armed_steps += int(armed)
        SyncWindow.set_mode("warn" if armed else "default")

    def on_fit_end(self, trainer: Any) -> None:
        SyncWindow.set_mode("default")


SYNC_CHECKS = {
    "no augmentation": (),
    "data.augment: crop + flip": ("data.augment.crop_padding=2", "data.augment.horizontal_flip=true"),
}


def sync_check(device: torch.device, sizes: Sizes, scratch: Path) -> None:
    workload = Workload("cnn", (1, 28, 28), num_samples=sizes.sync_check_samples)
    tuning = Tuning(bf16=True, channels_last=True)
    SyncWindow.set_mode = staticmethod(torch.cuda.set_sync_debug_mode if device.type == "cuda" else lambda mode: None)
    print(
        f"CNN, {workload.num_samples} images, bf16 + channels_last, default monitoring, 2 epochs; checked: every step "
        "whose neighbours are not logging steps (log_every_n_steps=20) and not an epoch's last\n"
    )
    print("| data | steps checked | synchronizing calls | where |")
    print("| --- | ---: | ---: | --- |")
    for label, data_overrides in SYNC_CHECKS.items():
        SyncWindow.armed_steps = 0
        extra = ("+callbacks.sync_window._target_=__main__.SyncWindow", *tuning.overrides(), *data_overrides)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_trainscope(workload, str(device), 2, True, scratch, extra)
        # "called a synchronizing CUDA operation"; not the notice that the debug mode is a prototype feature
        syncs = [warning for warning in caught if "called a synchronizing" in str(warning.message)]
        places = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in syncs})
        found = str(len(syncs)) if device.type == "cuda" else "n/a (CPU)"
        print(f"| {label} | {SyncWindow.armed_steps} | {found} | {', '.join(places) or '-'} |", flush=True)
    if device.type != "cuda":
        print("\nOn the CPU there is no device to wait for: the check ran, nothing can be caught.")


# ------------------------------------------------------------------------------------------------------------
# 3. per-epoch time against the raw loop


@contextmanager
def peak_memory(device: torch.device) -> Iterator[list[float]]:
    """Yields a list that holds, afterwards, the peak GiB allocated on `device` inside the block (CUDA only)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    peak: list[float] = []
    yield peak
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak.append(torch.cuda.max_memory_allocated(device) / 2**30)


def timed(run: Callable[[], list[float]], device: torch.device, sizes: Sizes) -> tuple[float, float | None]:
    """Median of the epochs after the warm-up ones, and the peak memory of the whole run (GiB; None on the CPU)."""
    torch._dynamo.reset()  # every compiled variant compiles its own graphs, from a clean cache of guards
    with peak_memory(device) as peak:
        seconds = run()[sizes.warmup_epochs :]
    return statistics.median(seconds), (peak[0] if peak else None)


def epoch_table(device: torch.device, sizes: Sizes, compile_backend: str, budget: Budget, scratch: Path) -> None:
    workloads = [
        Workload("cnn", (1, 28, 28), num_samples=sizes.cnn_samples),
        Workload("resnet18", (3, 32, 32), num_samples=sizes.resnet_samples),
    ]
    print(
        f"Median of {sizes.timed_epochs} epochs after {sizes.warmup_epochs} warm-up (train + validation pass, "
        f"batch 128, Adam); trainscope with default monitoring and checkpoints; compile backend "
        f"{compile_backend}.\n"
    )
    print(
        "| model | data | compile | raw s/epoch | trainscope s/epoch | trainscope/raw | raw samples/s "
        "| trainscope samples/s | raw peak GiB | trainscope peak GiB |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for workload in workloads:
        for compile_on in (False, True):
            tuning = Tuning(bf16=True, channels_last=True, compile=compile_backend if compile_on else None)
            if budget.elapsed() > budget.seconds:
                print(f"| {workload.model} | | {'on' if compile_on else 'off'} | skipped: time budget used up |")
                continue
            print(epoch_row(workload, tuning, device, sizes, scratch), flush=True)


def epoch_row(workload: Workload, tuning: Tuning, device: torch.device, sizes: Sizes, scratch: Path) -> str:
    """One table row: the raw loop and trainscope with the same switches, one after the other."""
    epochs = sizes.warmup_epochs + sizes.timed_epochs
    cfg = compose_config(workload, str(device), epochs, [])
    train, val = synthetic_splits(workload)
    count = len(train.labels)
    raw, raw_peak = timed(lambda: run_raw(cfg, workload, train, val, device, epochs, tuning), device, sizes)
    ours, our_peak = timed(
        lambda: run_trainscope(workload, str(device), epochs, True, scratch, tuple(tuning.overrides())), device, sizes
    )
    shape = "x".join(map(str, workload.input_shape))
    return (
        f"| {workload.model} | {shape}, {count} train | {'on' if tuning.compile else 'off'} | {raw:.3f} | {ours:.3f} "
        f"| {ours / raw:.3f} | {count / raw:,.0f} | {count / ours:,.0f} | {_gib(raw_peak)} | {_gib(our_peak)} |"
    )


def _gib(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


# ------------------------------------------------------------------------------------------------------------
# 4. language model


class TokenCounter(EpochTimer):
    """Also notes what tokens/s and MFU need from the run: its parameters and the training windows of an epoch."""

    parameters: int = 0
    batches: int = 0
    windows: int = 0

    def on_fit_start(self, trainer: Any) -> None:
        TokenCounter.parameters = sum(parameter.numel() for parameter in trainer.model.parameters())
        TokenCounter.batches = trainer.batches_per_epoch
        TokenCounter.windows = trainer.data.train.num_samples  # every BatchSource says how many samples it holds


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)


def language_model(device: torch.device, sizes: Sizes, args: argparse.Namespace, scratch: Path) -> None:
    if not (REPO_ROOT / "conf" / "model" / "gpt.yaml").is_file():
        print(
            "skipped: this tree has no model=gpt yet (the language-model issue adds it); then this section "
            "trains it on a text dataset and prints tokens/s and MFU"
        )
        return
    data = args.lm_data or next(
        (o for o in LM_DATA_OPTIONS if (REPO_ROOT / "conf" / "data" / f"{o}.yaml").is_file()), None
    )
    if data is None:
        print(
            f"skipped: model=gpt exists but none of conf/data/{{{','.join(LM_DATA_OPTIONS)}}}.yaml; "
            "name the text dataset with --lm-data"
        )
        return
    from trainscope.session.run import train

    epochs = 2  # one warm-up epoch, one timed
    overrides = [
        "task=language_modeling",
        f"data={data}",
        "model=gpt",
        f"trainer.max_epochs={epochs}",
        f"trainer.device={device}",
        f"trainer.limit_train_batches={sizes.lm_train_batches}",
        "trainer.limit_val_batches=2",
        "trainer.test=false",
        "trainer.precision=bf16",
        f"trainer.compile={args.compile_backend}",
        "+callbacks.token_counter._target_=__main__.TokenCounter",
        *args.lm_overrides,
    ]
    cfg = compose_overrides(overrides)
    EpochTimer.marks = []
    with peak_memory(device) as peak:
        train(cfg, Path(tempfile.mkdtemp(dir=scratch)))
    seconds = [end - begin for begin, end in zip(EpochTimer.marks, EpochTimer.marks[1:], strict=False)][-1]
    block = int(cfg.data.block_size)
    tokens = min(TokenCounter.windows, TokenCounter.batches * int(cfg.data.batch_size)) * block
    tokens_per_second = tokens / seconds
    peak_value = peak_tflops(device, args.peak_tflops)
    mfu = "-"
    if peak_value and "n_layer" in cfg.model and "n_embd" in cfg.model:
        # nanoGPT's estimate (PaLM appendix B): 6N per token for the weights, 12 * layers * width * T for attention
        flops_per_token = 6 * TokenCounter.parameters + 12 * int(cfg.model.n_layer) * int(cfg.model.n_embd) * block
        mfu = f"{100 * flops_per_token * tokens_per_second / (peak_value * 1e12):.1f} %"
    shown = [override for override in overrides if "token_counter" not in override]
    print(f"`python train.py {' '.join(shown)}`\n")
    print("| parameters | block | tokens/epoch | s/epoch | tokens/s | MFU | peak GiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {TokenCounter.parameters:,} | {block} | {tokens:,} | {seconds:.2f} | {tokens_per_second:,.0f} | {mfu} "
        f"| {_gib(peak[0] if peak else None)} |"
    )
    if peak_value is None:
        print("\nMFU needs the GPU's peak bf16 TFLOPS: pass --peak-tflops")


# ------------------------------------------------------------------------------------------------------------
# 5. DDP smoke test


def ddp_smoke(device: torch.device, sizes: Sizes, scratch: Path) -> None:
    gpus = torch.cuda.device_count() if device.type == "cuda" else 1
    common = [
        "data=synthetic",
        f"data.num_samples={sizes.ddp_samples}",
        f"model={sizes.ddp_model}",
        "trainer.max_epochs=2",
        f"trainer.device={'cuda' if device.type == 'cuda' else 'cpu'}",
        "logging.progress_bar=false",
    ]
    launches = {
        f"torchrun --standalone --nproc_per_node={gpus}": [
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={gpus}",
            "train.py",
            *common,
        ]
    }
    if gpus > 1:
        launches[f"python train.py trainer.devices={gpus}"] = ["train.py", f"trainer.devices={gpus}", *common]
    backend = "NCCL" if device.type == "cuda" else "gloo (CPU)"
    print(f"{gpus} process(es), one per {'GPU' if device.type == 'cuda' else 'CPU run'}, {backend}\n")
    print("| launch | exit | status | epochs | processes | NCCL initialized | seconds |")
    print("| --- | ---: | --- | ---: | ---: | --- | ---: |")
    for label, arguments in launches.items():
        output = Path(tempfile.mkdtemp(dir=scratch))
        env = {
            **os.environ,
            "TRAINSCOPE_OUTPUT_DIR": str(output),
            "TRAINSCOPE_DATA_DIR": str(scratch / "data"),
            "NCCL_DEBUG": "INFO",
            "PYTHONPATH": str(REPO_ROOT / "src"),
        }
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        seconds = time.monotonic() - start
        metrics = _read_metrics(output)
        log_text = result.stdout + result.stderr + _train_log(output)
        processes = re.search(r"distributed: (\d+) processes", log_text)
        nccl = "yes" if "NCCL INFO" in log_text else ("n/a" if device.type != "cuda" else "**no**")
        print(
            f"| `{label}` | {result.returncode} | {metrics.get('status', '-')} | {metrics.get('epochs_run', '-')} "
            f"| {processes.group(1) if processes else '-'} | {nccl} | {seconds:.1f} |",
            flush=True,
        )
        if result.returncode != 0:
            print(f"\n```\n{result.stderr[-2000:]}\n```\n")


def _read_metrics(output: Path) -> dict[str, Any]:
    import json

    found = sorted(output.glob("runs/*/*/metrics.json"))
    return json.loads(found[0].read_text()) if found else {}


def _train_log(output: Path) -> str:
    found = sorted(output.glob("runs/*/*/train.log"))
    return found[0].read_text() if found else ""


# ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (a CPU run that checks every section)")
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help=f"no section starts after it (default {BUDGET_SECONDS}; none with --quick)",
    )
    parser.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend (default inductor; "
        "--quick on the CPU: eager, which traces the same graphs without compiling C++)",
    )
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, for MFU")
    parser.add_argument("--lm-data", default=None, help=f"text data option for model=gpt (default: {LM_DATA_OPTIONS})")
    parser.add_argument("--lm-overrides", nargs="*", default=[], help="more train.py overrides for the LM section")
    parser.add_argument(
        "--sections", nargs="+", default=["sync", "epochs", "lm", "ddp"], choices=["sync", "epochs", "lm", "ddp"]
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here; use --device cpu --quick")
    if device.type == "cuda":
        # an index throughout: torch.cuda.set_device and the memory counters refuse a bare "cuda"
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
        torch.cuda.set_device(device)
    if args.compile_backend is None:
        args.compile_backend = "eager" if (args.quick and device.type == "cpu") else "inductor"
    sizes = QUICK if args.quick else Sizes()
    budget = Budget(args.budget_seconds or (float("inf") if args.quick else BUDGET_SECONDS))
    with tempfile.TemporaryDirectory(prefix="trainscope-gpu-") as scratch_name:
        scratch = Path(scratch_name)
        os.environ["TRAINSCOPE_OUTPUT_DIR"] = str(scratch / "outputs")
        os.environ["TRAINSCOPE_DATA_DIR"] = str(scratch / "data")
        print("# trainscope GPU check (`benchmarks/gpu.py" + (" --quick" if args.quick else "") + "`)\n")
        machine(device)
        sections: dict[str, tuple[str, Callable[[], None]]] = {
            "sync": ("Host-device syncs outside logging steps", lambda: sync_check(device, sizes, scratch)),
            "epochs": (
                "Per epoch against the raw loop",
                lambda: epoch_table(device, sizes, args.compile_backend, budget, scratch),
            ),
            "lm": ("Language model", lambda: language_model(device, sizes, args, scratch)),
            "ddp": ("DDP smoke test", lambda: ddp_smoke(device, sizes, scratch)),
        }
        failed = []
        for name in args.sections:
            title, run = sections[name]
            if not budget.allows(title):
                continue
            try:
                run()
            except Exception:  # one broken section must not cost the others on a rare GPU slot
                failed.append(name)
                print(f"\n**failed**:\n\n```\n{traceback.format_exc()[-4000:]}```", flush=True)
        print(f"\ntotal: {budget.elapsed():.0f} s" + (f"; failed sections: {', '.join(failed)}" if failed else ""))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
