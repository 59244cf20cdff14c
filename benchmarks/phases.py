"""Where the fixed cost of one `python train.py` process goes, phase by phase.

    python benchmarks/phases.py                                   # the default command (cnn, mnist_sample, 3 epochs)
    python benchmarks/phases.py -- data=synthetic model=mlp trainer.max_epochs=1    # a tiny run
    python benchmarks/phases.py --repeat 3 -- data=synthetic model=mlp trainer.max_epochs=1
    python benchmarks/phases.py --root ../main . --clock cpu    # before/after: main and this tree, side by side

The parent starts the run as a child process (`python benchmarks/phases.py --child <overrides>`), which wraps
trainscope's own functions with timers (nothing in trainscope is changed) and then calls `trainscope.cli.train.main`
exactly as `train.py` does. The parent prints one table: the interpreter's start, the imports, Hydra's compose
and the config checks, building data/model/optimizer/callbacks, the first TensorBoard writes, each hook of each
callback, every checkpoint write, the test phase, metrics.json, the writer's close and the process exit (from
`main()` returning to the parent seeing the process gone). Rows are inclusive, indented under the phase that
contains them. `--clock wall` (default) times with `time.perf_counter`; `--clock cpu` with `time.process_time`
(the CPU time of the whole process, its threads included; the exit row is then the child's total CPU time from
`getrusage` minus what it had used when `main()` returned), which other processes on a busy machine barely
disturb. Read the medians of `--repeat N` runs. Timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMELINE_ENV = "TRAINSCOPE_PHASES_FILE"
CLOCK_ENV = "TRAINSCOPE_PHASES_CLOCK"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS[os.environ.get(CLOCK_ENV, "wall")]  # the child's; the parent sets it through the environment

# (module, attribute path, label): the functions whose time the table shows. A name imported into a module
# with `from x import f` is wrapped where it is called (the importing module's namespace).
WRAPPED = [
    ("trainscope.cli.train", "check_yaml_tree", "config: check YAML files"),
    ("trainscope.cli.train", "check_group_choices", "config: check group choices"),
    ("hydra._internal.hydra", "Hydra.create_main_hydra2", "hydra: create (config search path, plugins)"),
    ("hydra._internal.hydra", "Hydra.get_mode", "hydra: get_mode (compose #1, to read hydra.mode)"),
    ("hydra._internal.hydra", "Hydra.run", "hydra: run"),
    ("hydra._internal.hydra", "Hydra.compose_config", "hydra: compose"),
    ("hydra._internal.hydra", "configure_log", "hydra: configure logging"),
    ("hydra.core.utils", "configure_log", "hydra: configure logging"),
    ("hydra.core.utils", "run_job", "hydra: run_job"),
    ("hydra._internal.callbacks", "Callbacks.__init__", "hydra: callbacks"),
    ("trainscope.cli.train", "task", "task (the run, after Hydra's compose)"),
    ("trainscope.cli.train", "save_run_config", "save .hydra/ config"),
    ("trainscope.cli.train", "validate_config", "config: validate_config"),
    ("trainscope.cli.train", "run_lock", "run.lock"),
    ("trainscope.session.run", "train", "session.run.train"),
    ("trainscope.session.run", "build_data_and_model", "build data and model"),
    ("trainscope.session.run", "build_optimizer", "build optimizer"),
    ("trainscope.session.run", "build_scheduler", "build scheduler"),
    ("trainscope.session.run", "build_callbacks", "build callbacks"),
    ("trainscope.session.run", "RunWriter.__init__", "TensorBoard writer: open"),
    ("trainscope.session.run", "TrainerSettings.from_config", "trainer settings"),
    ("trainscope.session.run", "config_hash", "config hash"),
    ("trainscope.session.run", "Trainer.__init__", "Trainer()"),
    ("trainscope.session.run", "HParamsSession.from_config", "HParams: from_config"),
    ("trainscope.session.run", "HParamsSession.start", "HParams: session start"),
    ("trainscope.session.run", "HParamsSession.end", "HParams: session end"),
    ("trainscope.session.run", "reserve_space", "space reserve"),
    ("trainscope.session.run", "Trainer.fit", "fit"),
    ("trainscope.session.run", "Trainer._train_epoch", "train epoch"),
    ("trainscope.session.run", "Trainer._validate", "validation"),
    ("trainscope.session.run", "Trainer.save_checkpoint", "checkpoint: save (incl. flush)"),
    ("trainscope.engine.trainer", "save_checkpoint", "checkpoint: serialize + atomic write last.pt"),
    ("trainscope.engine.trainer", "keep_as_best", "checkpoint: best.pt"),
    ("trainscope.session.run", "RunWriter.flush", "TensorBoard writer: flush"),
    ("trainscope.session.run", "_test_best_model", "test phase"),
    ("trainscope.session.run", "load_checkpoint", "test: load best.pt"),
    ("trainscope.session.run", "Trainer.evaluate", "evaluate"),
    ("trainscope.session.run", "_RunClosing.close", "closing"),
    ("trainscope.session.run", "release_space", "space reserve: release"),
    ("trainscope.session.run", "write_metrics", "metrics.json"),
    ("trainscope.session.run", "RunWriter.close", "TensorBoard writer: close"),
]


class Timeline:
    """Inclusive time per label, with the nesting depth and first start of each, for the child's report."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.first: dict[str, float] = {}
        self.depth: dict[str, int] = {}
        self._stack: list[str] = []

    def timed(self, label: str, function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.first.setdefault(label, clock())
            self.depth.setdefault(label, len(self._stack))
            self._stack.append(label)
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.total[label] += clock() - start
                self.count[label] += 1
                self._stack.pop()

        return wrapper

    def add(self, label: str, seconds: float, at: float) -> None:
        self.first.setdefault(label, at)
        self.depth.setdefault(label, len(self._stack))
        self.total[label] += seconds
        self.count[label] += 1

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"label": label, "seconds": self.total[label], "count": self.count[label], "depth": self.depth[label]}
            for label in sorted(self.first, key=self.first.__getitem__)
        ]


def _wrap(timeline: Timeline, module_name: str, path: str, label: str) -> None:
    """Time `module_name.path` under `label`; a name another version of the tree lacks is left out."""
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
    if owner is not None and hasattr(owner, name):
        setattr(owner, name, timeline.timed(label, getattr(owner, name)))


def _time_callbacks(timeline: Timeline) -> None:
    """Every hook of every callback, as `callback <Class>.<hook>` (per-step hooks summed over the run)."""
    from trainscope.core.callback import CallbackList

    def call(self: CallbackList, hook: str, *args: Any) -> None:
        for callback in self._overriding_callbacks(hook):
            start = clock()
            getattr(callback, hook)(*args)
            timeline.add(f"callback {type(callback).__name__}.{hook}", clock() - start, start)

    CallbackList.call = call  # type: ignore[method-assign]


def child(overrides: list[str]) -> None:
    """Run `train.py <overrides>` in this process with timers around its phases; write the timeline as JSON."""
    report: dict[str, Any] = {"wall_started": time.time(), "clock_started": clock()}
    started = clock()
    timeline = Timeline()
    start = clock()
    import trainscope.cli.train as cli  # noqa: F401  (hydra, omegaconf, trainscope's config layer)

    timeline.add("import trainscope.cli.train (hydra, omegaconf)", clock() - start, start)
    start = clock()
    import trainscope.session.run  # noqa: F401  (torch, tensorboard: what task() imports first)

    timeline.add("import trainscope.session.run (torch, tensorboard, ...)", clock() - start, start)
    for module_name, path, label in WRAPPED:
        _wrap(timeline, module_name, path, label)
    _time_callbacks(timeline)
    sys.argv = ["train.py", *overrides]
    main_start = clock()
    report["child_setup_seconds"] = main_start - started

    original_main = cli.main

    def timed_main() -> None:
        """main() as train.py runs it; the timeline is written when it returns (or exits), before the exit."""
        try:
            timeline.timed("main() (compose, checks, task)", original_main)()
        finally:
            report["main_returned"] = time.time()
            report["clock_main_returned"] = clock()
            report["rows"] = timeline.rows()
            Path(os.environ[TIMELINE_ENV]).write_text(json.dumps(report))

    entrypoint = getattr(cli, "entrypoint", None)  # the process exit train.py uses, where the tree has one
    if entrypoint is not None:
        cli.main = timed_main
        entrypoint()
    else:
        timed_main()


def measure(overrides: list[str], scratch: Path, root: Path, pin_core: int | None, cpu: bool) -> dict[str, Any]:
    """One child run: seconds per label, plus the interpreter's start, the exit and the whole process."""
    timeline_file = scratch / "timeline.json"
    output_root = Path(tempfile.mkdtemp(dir=scratch))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]),
        TIMELINE_ENV: str(timeline_file),
        CLOCK_ENV: "cpu" if cpu else "wall",
        "TRAINSCOPE_OUTPUT_DIR": str(output_root),
        "TRAINSCOPE_DATA_DIR": str(scratch / "data"),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    preexec = (lambda: os.sched_setaffinity(0, {pin_core})) if pin_core is not None else None
    result = subprocess.run(
        [sys.executable, __file__, "--child", *overrides],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=preexec,
    )
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        sys.exit(f"the run failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    report = json.loads(timeline_file.read_text())
    started = report["clock_started"] if cpu else report["wall_started"] - spawned
    seconds: dict[str, float] = {"python start (interpreter, site)": started}
    depth: dict[str, int] = {"python start (interpreter, site)": 0}
    counts: dict[str, int] = {}
    for row in report["rows"]:
        seconds[row["label"]] = row["seconds"]
        depth[row["label"]] = row["depth"]
        counts[row["label"]] = row["count"]
    exit_seconds = child_cpu - report["clock_main_returned"] if cpu else ended - report["main_returned"]
    seconds["exit (after main() returned: atexit, writer threads, teardown)"] = exit_seconds
    seconds["whole process"] = child_cpu if cpu else ended - spawned
    return {"seconds": seconds, "depth": depth, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs to take the median of")
    parser.add_argument(
        "--root",
        type=Path,
        nargs="+",
        default=[REPO_ROOT],
        help="the trainscope checkouts to time, one column each, runs alternating (default: this one)",
    )
    parser.add_argument("--pin-core", type=int, default=None, metavar="N", help="pin the run to CPU core N")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="cpu: process CPU time")
    parser.add_argument("overrides", nargs="*", help="train.py overrides (after --)")
    args = parser.parse_args()
    cpu = args.clock == "cpu"
    runs: dict[Path, list[dict[str, Any]]] = {root: [] for root in args.root}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for root in args.root:
            measure(args.overrides, scratch, root, args.pin_core, cpu)  # warm-up: file caches, the sample unpacked
        for _ in range(args.repeat):
            for root in args.root:
                runs[root].append(measure(args.overrides, scratch, root, args.pin_core, cpu))
    pinned = f", pinned to core {args.pin_core}" if args.pin_core is not None else ""
    print(f"python train.py {' '.join(args.overrides)}")
    print(
        f"(median of {args.repeat} after a warm-up run, {args.clock} ms, inclusive{pinned}; calls in the last column)"
    )
    for index, root in enumerate(args.root, start=1):
        print(f"  [{index}] {root}")
    print(f"{'phase':<74}" + "".join(f"{f'[{index}]':>9}" for index in range(1, len(args.root) + 1)) + "  calls")
    labels = list(dict.fromkeys(label for root_runs in runs.values() for label in root_runs[0]["seconds"]))
    for label in labels:
        first = next(root_runs[0] for root_runs in runs.values() if label in root_runs[0]["seconds"])
        indent = "  " * first["depth"].get(label, 0)
        cells = ""
        for root_runs in runs.values():
            values = [run["seconds"][label] for run in root_runs if label in run["seconds"]]
            cells += f"{1000 * statistics.median(values):>9.1f}" if values else f"{'-':>9}"
        counts = "/".join(str(root_runs[0]["counts"].get(label, 1)) for root_runs in runs.values())
        print(f"{indent + label:<74}{cells}  {counts}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
