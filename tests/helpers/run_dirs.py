"""Run directories written file by file as a run writes them, for tests of what reads them (`trainscope-runs`).

The files go through the run-directory contract's own writers (`write_metrics`, `append_row`), so they have the
shape a real run gives them; the subprocess tests in tests/runs/ check the same against real `train.py` runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from tests.helpers.cli import REPO_ROOT
from trainscope.core.metrics_csv import append_row
from trainscope.core.run_dir import write_metrics


def fake_run(
    run_dir: Path,
    overrides: list[str],
    val_acc: list[float],
    *,
    status: str | None = "completed",
    test_acc: float | None = 0.5,
    monitor: tuple[str, str] = ("val/acc", "max"),
) -> Path:
    """A run that trained `len(val_acc)` epochs with these validation accuracies (status None: killed before
    metrics.json)."""
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"monitor": {"metric": monitor[0], "mode": monitor[1]}, "optimized_metric": "val/acc_best"}
    (run_dir / ".hydra/config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra/overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints/best.pt").write_bytes(b"weights")
    history: list[dict[str, float]] = []
    for epoch, accuracy in enumerate(val_acc, start=1):
        metrics = {"epoch": float(epoch), "val/loss": 1 - accuracy, "val/acc": accuracy}
        metrics["val/acc_best"] = max(accuracy, *(row["val/acc"] for row in history)) if history else accuracy
        history.append(metrics)
        append_row(run_dir, 1e9 + epoch, 10 * epoch, metrics)
    if status is not None:
        test = {} if test_acc is None else {"test/acc": test_acc}
        best = {tag: (min if "loss" in tag else max)(row[tag] for row in history) for tag in history[-1]}
        content: dict[str, Any] = {
            "status": status,
            "reason": "" if status == "completed" else f"{status} for a reason",
            "epochs_run": len(history),
            "global_step": 10 * len(history),
            "wall_time_seconds": 12.5,
            "final": {**history[-1], **test},
            "best": best,
            "test": test,
            "optimized_metric": "val/acc_best",
            "monitor": {"metric": monitor[0], "mode": monitor[1]},
        }
        write_metrics(run_dir, content)
    return run_dir


def runs_cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m trainscope.runs <args>` as a user runs it, 200 columns wide."""
    return subprocess.run(
        [sys.executable, "-m", "trainscope.runs", *args],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def plant_pickle(directory: Path) -> tuple[Path, Path]:
    """A `.pt` file that runs code when `torch.load(weights_only=False)` opens it (it creates `marker`)."""
    marker = directory / "the-pickle-ran"
    payload = directory / "weights.pt"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))

    torch.save(Exploit(), payload)
    return payload, marker
