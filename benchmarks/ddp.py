"""What data-parallel training costs, and how it scales.

    python benchmarks/ddp.py                       # CPU: `python train.py` vs `torchrun --nproc_per_node=1`
    python benchmarks/ddp.py --device cuda         # CUDA: 1, 2, ... every visible GPU, per-GPU batch fixed

CPU mode runs the same run (data=synthetic, model=mlp by default) as a plain process and as a one-process torchrun
job, which joins a gloo group of one and trains through DistributedDataParallel, the per-step metric all-reduce
and the per-step stop agreement: the difference is what the DDP machinery costs with no one to talk to.
CUDA mode runs torchrun with 1..N processes (NCCL), batch `--batch-size` per GPU, and reports global samples per
second and the scaling efficiency against one GPU.

Each variant trains `--epochs` epochs; the first is a warm-up, and of the others (`time/epoch_seconds`, read from
the run's TensorBoard events) the median and the fastest epoch over all rounds are reported: on a shared machine
the fastest is the better estimate of what the code itself costs. Variants run interleaved for `--rounds` rounds so load
from other processes hits each alike. Whole-process start-up (Hydra, torch import, process group) is not in the
epoch time. Results go in benchmarks/RESULTS.md; timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_args(args: argparse.Namespace, device: str) -> list[str]:
    return [
        "data=synthetic",
        f"data.num_samples={args.num_samples}",
        f"data.batch_size={args.batch_size}",
        f"model={args.model}",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.device={device}",
        "trainer.test=false",
        "logging.progress_bar=false",
    ]


def epoch_seconds(output_root: Path) -> list[float]:
    """Epoch times of the one run under `output_root`, first (warm-up) epoch left out."""
    (run_dir,) = (output_root / "runs").glob("*/*")
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    times = [event.value for event in events.Scalars("time/epoch_seconds")]
    return times[1:] if len(times) > 1 else times


def timed_run(launcher: list[str], args: argparse.Namespace, device: str, scratch: Path) -> list[float]:
    output_root = Path(tempfile.mkdtemp(dir=scratch))
    env = {**os.environ, "TRAINSCOPE_OUTPUT_DIR": str(output_root), "TRAINSCOPE_DATA_DIR": str(scratch / "data")}
    command = [*launcher, "train.py", *run_args(args, device)]
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    return epoch_seconds(output_root)


def torchrun(nprocs: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nprocs}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--num-samples", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=128, help="per process")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    if args.device == "cpu":
        variants = {"no DDP (python train.py)": [sys.executable], "DDP, 1 rank (torchrun, gloo)": torchrun(1)}
        device = "cpu"
    else:
        gpus = torch.cuda.device_count()
        if gpus == 0:
            sys.exit("error: --device cuda needs a GPU; none is visible")
        variants = {f"{n} GPU": torchrun(n) for n in range(1, gpus + 1)}
        device = "auto"  # cuda:<local_rank> in each process

    samples_per_epoch = round(args.num_samples * 0.9)  # data=synthetic keeps val_fraction=0.1 for validation
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, device {args.device}, model {args.model}, "
        f"{samples_per_epoch} train samples, batch {args.batch_size} per process, {args.epochs} epochs, "
        f"{args.rounds} rounds"
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            for name, launcher in variants.items():
                times[name].extend(timed_run(launcher, args, device, Path(scratch)))

    baseline = min(times[next(iter(variants))])
    for index, (name, measured) in enumerate(times.items()):
        seconds = min(measured)
        # each process trains its own shard of the train split (padded to equal shards)
        rate = samples_per_epoch / seconds
        if args.device == "cpu":
            print(
                f"{name:32s} fastest epoch {seconds:7.3f} s (median {statistics.median(measured):7.3f} s)  "
                f"{rate:9.0f} samples/s  overhead {seconds / baseline - 1:+.1%}"
            )
        else:
            speed_up = baseline / seconds  # ideal: N GPUs each train 1/N of the steps
            print(
                f"{name:32s} fastest epoch {seconds:7.3f} s (median {statistics.median(measured):7.3f} s)  "
                f"{rate:9.0f} samples/s  "
                f"speed-up {speed_up:.2f}x  efficiency {speed_up / (index + 1):.0%}"
            )


if __name__ == "__main__":
    main()
