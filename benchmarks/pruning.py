"""Median pruning against no pruning: the same 20-trial TPE sweep of `hparams_search=mnist_cnn`, same seeds.

    python benchmarks/pruning.py [--n-trials 20] [--out outputs/benchmarks/pruning] [-- extra overrides]

Runs the two sweeps one after the other (so their wall times compare) and prints a Markdown table with
the epochs each trained, its wall time and its best `val/acc_best`. Target: the pruned sweep trains at
most half the epochs and its best value is within 0.5 points of the unpruned one.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from timed_sweep import REPO_ROOT, run_timed_sweep  # benchmarks/ is this script's first sys.path entry


def run_sweep(name: str, overrides: list[str], out: Path, n_trials: int, seed: int) -> dict[str, object]:
    arguments = [
        "hparams_search=mnist_cnn",
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweeper.seed={seed}",
        "logging.progress_bar=false",
        *overrides,
    ]
    wall, results = run_timed_sweep((out / name).resolve(), arguments)
    return {
        "name": name,
        "epochs": results["epochs_trained"],
        "wall": wall,
        "best": results["best_value"],
        "best_trial": results["best_trial"],
        "counts": results["counts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "outputs" / "benchmarks" / "pruning")
    parser.add_argument("--pruner-overrides", nargs="*", default=[], help="extra overrides for the pruned sweep only")
    parser.add_argument("overrides", nargs="*", help="extra overrides for both sweeps")
    args = parser.parse_args()
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out / stamp
    rows = [
        run_sweep(
            "median",
            ["hydra/sweeper/pruner=median", *args.pruner_overrides, *args.overrides],
            out,
            args.n_trials,
            args.seed,
        ),
        run_sweep("none", ["hydra/sweeper/pruner=none", *args.overrides], out, args.n_trials, args.seed),
    ]
    pruned, unpruned = rows
    print(
        f"pruning benchmark, {stamp}: hparams_search=mnist_cnn, {args.n_trials} TPE trials, seed {args.seed}, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, overrides: {' '.join(args.overrides) or 'none'}, "
        f"pruner overrides: {' '.join(args.pruner_overrides) or 'none'}"
    )
    print()
    print("| pruner | trials complete / pruned / failed | epochs trained | wall time (s) | best val/acc_best |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        counts = row["counts"]
        print(
            f"| {row['name']} | {counts['complete']} / {counts['pruned']} / {counts['failed']} | {row['epochs']} "
            f"| {row['wall']:.0f} | {row['best']:.4f} (trial {row['best_trial']}) |"
        )
    epoch_ratio = pruned["epochs"] / unpruned["epochs"]
    gap = (unpruned["best"] - pruned["best"]) * 100
    print()
    print(
        f"pruned/unpruned epochs: {epoch_ratio:.2f} (target <= 0.50), wall time: "
        f"{pruned['wall'] / unpruned['wall']:.2f}, best value gap: {gap:+.2f} points (target <= 0.5)"
    )


if __name__ == "__main__":
    main()
