"""Parallel trials: the same 24-trial TPE sweep of `hparams_search=synthetic`, same seeds, with 1 and 2 workers,
through the default path (the sweeper's own worker processes) and through `hydra/launcher=joblib`.

    python benchmarks/parallel_trials.py [--n-trials 24] [--out outputs/benchmarks/parallel] [-- extra overrides]

Runs the sweeps one after the other (so their wall times compare) and prints a Markdown table: wall time
to finish, best `val/acc_best`, and worker idle time, read back from the study: for each worker process
(the trials' owner), the sweep's wall time minus the time its trials ran; it covers process start-up,
config composition, claiming trials and waiting for the last trial of another worker.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections import defaultdict
from pathlib import Path

import optuna
from timed_sweep import REPO_ROOT, run_timed_sweep  # benchmarks/ is this script's first sys.path entry

sys.path.insert(0, str(REPO_ROOT / "src"))

from trainscope.trial.attributes import OWNER_ATTR  # noqa: E402
from trainscope.trial.storage import open_storage  # noqa: E402

VARIANTS = {  # name: overrides
    "default, 1 worker": ["hydra.sweeper.n_jobs=1"],
    "default, 2 workers": ["hydra.sweeper.n_jobs=2"],
    "joblib, 1 worker": ["hydra.sweeper.n_jobs=1", "hydra/launcher=joblib"],
    "joblib, 2 workers": ["hydra.sweeper.n_jobs=2", "hydra/launcher=joblib"],
}


def run_sweep(name: str, overrides: list[str], out: Path, n_trials: int, extra: list[str]) -> dict[str, object]:
    sweep_dir = (out / name.replace(", ", "_").replace(" ", "_")).resolve()
    arguments = [
        "hparams_search=synthetic",
        f"hydra.sweeper.n_trials={n_trials}",
        "hydra.sweeper.seed=0",
        "hydra/sweeper/pruner=none",  # every variant trains the same epochs
        *overrides,
        *extra,
    ]
    wall, results = run_timed_sweep(sweep_dir, arguments)
    storage = open_storage(str(sweep_dir / "optuna_journal.log"))
    trials = optuna.load_study(study_name=results["study_name"], storage=storage).trials
    busy: dict[int, float] = defaultdict(float)
    for trial in trials:
        busy[trial.system_attrs[OWNER_ATTR]["pid"]] += (trial.datetime_complete - trial.datetime_start).total_seconds()
    idle = [wall - seconds for seconds in busy.values()]
    return {
        "name": name,
        "wall": wall,
        "best": results["best_value"],
        "complete": results["counts"]["complete"],
        "workers": len(busy),
        "idle_mean": sum(idle) / len(idle),
        "trial_mean": sum(busy.values()) / len(trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-trials", type=int, default=24)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "outputs" / "benchmarks" / "parallel")
    parser.add_argument("extra", nargs="*", help="overrides passed to every sweep (after --)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print("| variant | wall time (s) | best val/acc_best | complete | worker processes | idle per worker (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, overrides in VARIANTS.items():
        row = run_sweep(name, overrides, args.out, args.n_trials, args.extra)
        print(
            f"| {row['name']} | {row['wall']:.1f} | {row['best']:.4f} | {row['complete']} | {row['workers']} "
            f"| {row['idle_mean']:.1f} (mean trial {row['trial_mean']:.1f} s) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
