"""What a whole `python train.py` process costs against a hand-written script doing the same work.

    python benchmarks/startup.py                    # 5 alternating pairs of each workload (~2 min on 2 quiet cores)
    python benchmarks/startup.py --pairs 9 --pin-core 1     # every process pinned to CPU core 1
    python benchmarks/startup.py --workloads tiny           # only the tiny run

Two workloads, each run as whole processes (interpreter start to exit, as a user or a sweep trial feels it):

  default   `python train.py` (SmallCNN on the bundled MNIST sample, 3 epochs, test at the end)
            against `python benchmarks/hand_written.py`
  tiny      `python train.py data=synthetic model=mlp trainer.max_epochs=1`
            against `python benchmarks/hand_written.py --tiny`: nearly all of it is fixed cost

`benchmarks/hand_written.py` trains the same network on the same data, split, seed, optimizer, batch size and
epochs, validates every epoch, saves the best model and tests it: what trainscope adds on top is its config
system, checks, monitoring, checkpoints and run directory. One untimed warm-up process of each command first
(file caches, the data sample's one-time unpacking), then `--pairs` pairs, alternating which command goes
first; the table shows medians of wall time and CPU time (user + system of the process and its threads), the
ratio and the difference of the medians. `--pin-core N` pins every process to core N (`os.sched_setaffinity`;
torch then uses one thread), which takes the other processes of a busy machine out of the comparison more
than it takes them out of the wall time. Results go in benchmarks/RESULTS.md; timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HAND_WRITTEN = str(Path(__file__).with_name("hand_written.py"))

WORKLOADS = {
    "default": (["train.py"], [HAND_WRITTEN]),
    "tiny": (["train.py", "data=synthetic", "model=mlp", "trainer.max_epochs=1"], [HAND_WRITTEN, "--tiny"]),
}
TARGET_RATIO = {"default": 1.05}  # trainscope's median wall / the hand-written script's
TARGET_EXTRA_SECONDS = {"tiny": 0.4}  # trainscope's median wall - the hand-written script's


@dataclass
class Timing:
    wall: float
    cpu: float


def run_once(arguments: list[str], scratch: Path, pin_core: int | None) -> Timing:
    """One whole process: its wall time and the CPU time it (and its threads) used."""
    output = Path(tempfile.mkdtemp(dir=scratch))
    env = {
        **os.environ,
        "TRAINSCOPE_OUTPUT_DIR": str(output),
        "TRAINSCOPE_DATA_DIR": str(scratch / "data"),  # one data folder: the sample is unpacked once, at warm-up
    }
    extra = ["--out", str(output)] if arguments[0] == HAND_WRITTEN else []
    preexec = (lambda: os.sched_setaffinity(0, {pin_core})) if pin_core is not None else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *arguments, *extra],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(arguments)} failed with exit code {result.returncode}:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def measure(workload: str, pairs: int, scratch: Path, pin_core: int | None) -> dict[str, list[Timing]]:
    trainscope, hand_written = WORKLOADS[workload]
    commands = {"trainscope": trainscope, "hand-written": hand_written}
    for arguments in commands.values():
        run_once(arguments, scratch, pin_core)  # warm-up, not timed
    timings: dict[str, list[Timing]] = {name: [] for name in commands}
    for pair in range(pairs):
        order = list(commands) if pair % 2 == 0 else list(reversed(commands))
        for name in order:
            timings[name].append(run_once(commands[name], scratch, pin_core))
            print(f"  {workload} pair {pair + 1}/{pairs} {name}: {timings[name][-1].wall:.2f} s", file=sys.stderr)
    return timings


def verdict(workload: str, ratio: float, extra: float) -> str:
    if workload in TARGET_RATIO:
        target = TARGET_RATIO[workload]
        return f"ratio <= {target}: {'met' if ratio <= target else 'missed'}"
    target = TARGET_EXTRA_SECONDS[workload]
    return f"extra <= {target} s: {'met' if extra <= target else 'missed'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5, help="alternating pairs per workload (default 5)")
    parser.add_argument("--pin-core", type=int, default=None, metavar="N", help="pin every process to CPU core N")
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    args = parser.parse_args()
    if args.pin_core is not None and args.pin_core not in os.sched_getaffinity(0):
        parser.error(f"--pin-core {args.pin_core}: this process may only use cores {sorted(os.sched_getaffinity(0))}")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="trainscope-startup-") as scratch_name:
        results = {name: measure(name, args.pairs, Path(scratch_name), args.pin_core) for name in args.workloads}
    pinned = f"pinned to core {args.pin_core}" if args.pin_core is not None else "not pinned"
    print(f"{args.pairs} alternating pairs per workload, {pinned}, load average {load:.1f} at start")
    print(
        "| workload | trainscope wall (s) | hand-written wall (s) | wall ratio | wall extra (s) "
        "| trainscope CPU (s) | hand-written CPU (s) | CPU ratio | target |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for workload, timings in results.items():
        ours = statistics.median(t.wall for t in timings["trainscope"])
        floor = statistics.median(t.wall for t in timings["hand-written"])
        ours_cpu = statistics.median(t.cpu for t in timings["trainscope"])
        floor_cpu = statistics.median(t.cpu for t in timings["hand-written"])
        print(
            f"| {workload} | {ours:.2f} | {floor:.2f} | {ours / floor:.3f} | {ours - floor:+.2f} "
            f"| {ours_cpu:.2f} | {floor_cpu:.2f} | {ours_cpu / floor_cpu:.3f} "
            f"| {verdict(workload, ours / floor, ours - floor)} |"
        )


if __name__ == "__main__":
    main()
