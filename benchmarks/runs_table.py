"""How long `trainscope-runs` takes to list 1,000 run directories (target: under 2 s).

    python benchmarks/runs_table.py [--runs 1000] [--out DIR]

Writes `--runs` synthetic run directories shaped like real ones (the saved `.hydra/` files of a composed default
config, metrics.json as a run writes it, a 10-epoch metrics.csv, checkpoints, an event file, a free run.lock;
one run in 20 died before writing metrics.json, so its row is read from metrics.csv), then times the whole
command as a user runs it (a fresh `python -m trainscope.runs <dir>`, interpreter start included) for each
output format, and the same with `--group-by`. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from trainscope.config.resolvers import register_resolvers  # noqa: E402
from trainscope.core.metrics_csv import append_row  # noqa: E402
from trainscope.core.run_dir import write_metrics  # noqa: E402


def saved_config_texts() -> tuple[str, str]:
    """A composed default config as Hydra saves it (unresolved), and a hydra.yaml of the same size."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    content = OmegaConf.to_container(cfg, resolve=False)
    hydra = content.pop("hydra")
    hydra["runtime"] = {"choices": {"model": "cnn", "data": "mnist_sample", "optimizer": "adam"}}
    return yaml.safe_dump(content, sort_keys=False), yaml.safe_dump({"hydra": hydra}, sort_keys=False)


def write_runs(root: Path, count: int) -> None:
    config, hydra = saved_config_texts()
    for index in range(count):
        lr, seed, model = (0.1, 0.01, 0.001, 0.0001)[index % 4], index % 5, ("mlp", "cnn")[index // 500 % 2]
        run_dir = root / f"multirun/2026-01-01/12-00-{index // 100:02d}/{index % 100}_lr={lr},seed={seed}"
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra/config.yaml").write_text(config)
        (run_dir / ".hydra/hydra.yaml").write_text(hydra)
        overrides = [f"model={model}", f"optimizer.lr={lr}", f"trainer.seed={seed}"]
        (run_dir / ".hydra/overrides.yaml").write_text(yaml.safe_dump(overrides))
        (run_dir / "checkpoints").mkdir()
        for name in ("best.pt", "last.pt"):
            (run_dir / "checkpoints" / name).write_bytes(bytes(1024))
        (run_dir / f"events.out.tfevents.{index}.host.1.0").write_bytes(bytes(256))
        (run_dir / "run.lock").write_text("1\n")
        (run_dir / "train.log").write_text("log\n")
        history = []
        for epoch in range(1, 11):
            metrics = {
                "train/loss": 1 / epoch + index * 1e-4,
                "train/acc": 1 - 1 / (epoch + 1),
                "val/loss": 1.1 / epoch,
                "val/acc": 0.9 + epoch / 200 - seed / 1000,
                "epoch": float(epoch),
                "time/epoch_seconds": 3.0,
            }
            metrics["val/acc_best"] = max(m["val/acc"] for m in [*history, metrics])
            history.append(metrics)
            append_row(run_dir, 1.7e9 + epoch, epoch * 100, {**metrics, "lr_epoch": lr})
        if index % 20 == 19:
            continue  # died before metrics.json: its row comes from metrics.csv
        best = {tag: max(m[tag] for m in history) for tag in history[-1]}
        write_metrics(
            run_dir,
            {
                "status": "completed",
                "reason": "",
                "epochs_run": 10,
                "global_step": 1000,
                "wall_time_seconds": 31.5,
                "final": {**history[-1], "test/loss": 0.1, "test/acc": 0.95, "time/wall_seconds": 31.5},
                "best": best,
                "test": {"test/loss": 0.1, "test/acc": 0.95},
                "optimized_metric": "val/acc_best",
                "monitor": {"metric": "val/acc", "mode": "max"},
                "run_dir": str(run_dir),
            },
        )


def time_command(arguments: list[str], rounds: int = 3) -> tuple[float, str]:
    """The median wall time of `python -m trainscope.runs <arguments>`, and its output of the last round."""
    times, output = [], ""
    env = {**os.environ, "COLUMNS": "200"}
    for _ in range(rounds):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "trainscope.runs", *arguments], capture_output=True, text=True, env=env, check=True
        )
        times.append(time.perf_counter() - started)
        output = result.stdout
    return sorted(times)[len(times) // 2], output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="where to write the runs (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = args.out or Path(temporary)
        started = time.perf_counter()
        write_runs(root, args.runs)
        print(f"wrote {args.runs} run directories in {time.perf_counter() - started:.1f} s under {root}\n")
        baseline, _ = time_command(["--help"])
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}")
        print(f"`python -m trainscope.runs --help` (interpreter start and imports): {baseline:.2f} s\n")
        print("| command | wall time (median of 3) | rows |")
        print("| --- | --- | --- |")
        for arguments in (
            [],
            ["--format", "csv"],
            ["--format", "json"],
            ["--format", "markdown"],
            ["--group-by"],
            ["--filter", "status=completed", "--sort=-val/acc", "--format", "csv"],
        ):
            seconds, output = time_command([str(root), *arguments])
            if "csv" in arguments:
                rows = len(list(csv.reader(output.splitlines()))) - 1
            elif "json" in arguments:
                rows = len(json.loads(output))
            else:
                rows = "-"
            verdict = "ok" if seconds < 2 else "OVER 2 s"
            print(f"| `trainscope-runs DIR {' '.join(arguments)}` | {seconds:.2f} s ({verdict}) | {rows} |")


if __name__ == "__main__":
    main()
