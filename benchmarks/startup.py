"""What a whole `python train.py` process costs against a hand-written script doing the same work.

    python benchmarks/startup.py                    # 5 alternating pairs of each workload (~2 min on 2 quiet cores)
    python benchmarks/startup.py --pairs 9 --pin-core 1     # every process pinned to CPU core 1
    python benchmarks/startup.py --workloads tiny           # only the tiny run
    python benchmarks/startup.py --compare-root ../main     # this tree, another checkout and the script, in turn

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


@dataclass(frozen=True)
class Command:
    """One variant of a workload: the arguments after `python`, run in `root` with `root/src` first on the path."""

    arguments: list[str]
    root: Path = REPO_ROOT

    def run(self, scratch: Path, pin_core: int | None) -> Timing:
        """One whole process: its wall time and the CPU time it (and its threads) used."""
        output = Path(tempfile.mkdtemp(dir=scratch))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(self.root / "src"), os.environ.get("PYTHONPATH", "")]),
            "TRAINSCOPE_OUTPUT_DIR": str(output),
            "TRAINSCOPE_DATA_DIR": str(scratch / "data"),  # one data folder: the sample is unpacked at warm-up
        }
        extra = ["--out", str(output)] if self.arguments[0] == HAND_WRITTEN else []
        preexec = (lambda: os.sched_setaffinity(0, {pin_core})) if pin_core is not None else None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, *self.arguments, *extra],
            cwd=self.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            sys.exit(f"{' '.join(self.arguments)} failed with exit code {result.returncode}:\n{result.stderr[-3000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Timing(wall, cpu)


def commands_of(workload: str, compare_root: Path | None) -> dict[str, Command]:
    trainscope, hand_written = WORKLOADS[workload]
    commands = {"trainscope": Command(trainscope), "hand-written": Command(hand_written)}
    if compare_root is not None:
        commands["compared"] = Command(trainscope, compare_root)
    return commands


def measure(commands: dict[str, Command], workload: str, pairs: int, scratch: Path, pin_core: int | None):
    """`pairs` rounds of every command, the order reversed every other round; one untimed warm-up of each first."""
    for command in commands.values():
        command.run(scratch, pin_core)
    timings: dict[str, list[Timing]] = {name: [] for name in commands}
    for pair in range(pairs):
        order = list(commands) if pair % 2 == 0 else list(reversed(commands))
        for name in order:
            timings[name].append(commands[name].run(scratch, pin_core))
            print(f"  {workload} round {pair + 1}/{pairs} {name}: {timings[name][-1].wall:.2f} s", file=sys.stderr)
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
    parser.add_argument(
        "--compare-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="also time the trainscope command of another checkout (e.g. a worktree of main), in the same rounds",
    )
    args = parser.parse_args()
    if args.pin_core is not None and args.pin_core not in os.sched_getaffinity(0):
        parser.error(f"--pin-core {args.pin_core}: this process may only use cores {sorted(os.sched_getaffinity(0))}")
    if args.compare_root is not None and not (args.compare_root / "train.py").is_file():
        parser.error(f"--compare-root {args.compare_root}: no train.py there; give a trainscope checkout")
    load = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="trainscope-startup-") as scratch_name:
        for workload in args.workloads:
            commands = commands_of(workload, args.compare_root)
            results[workload] = measure(commands, workload, args.pairs, Path(scratch_name), args.pin_core)
    pinned = f"pinned to core {args.pin_core}" if args.pin_core is not None else "not pinned"
    print(f"{args.pairs} alternating rounds per workload, {pinned}, load average {load:.1f} at start")
    if args.compare_root is not None:
        print(f"'compared': the trainscope command of {args.compare_root}")
    print(
        "| workload | variant | wall (s) | wall / hand-written | wall - hand-written (s) | CPU (s) "
        "| CPU / hand-written | target |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for workload, timings in results.items():
        floor = statistics.median(t.wall for t in timings["hand-written"])
        floor_cpu = statistics.median(t.cpu for t in timings["hand-written"])
        for name, runs in timings.items():
            wall = statistics.median(t.wall for t in runs)
            cpu = statistics.median(t.cpu for t in runs)
            target = verdict(workload, wall / floor, wall - floor) if name != "hand-written" else ""
            print(
                f"| {workload} | {name} | {wall:.2f} | {wall / floor:.3f} | {wall - floor:+.2f} | {cpu:.2f} "
                f"| {cpu / floor_cpu:.3f} | {target} |"
            )


if __name__ == "__main__":
    main()
