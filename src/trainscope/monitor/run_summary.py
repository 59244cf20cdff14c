"""`metrics.json`: the run's outcome in one small file that sweepers, scripts and people read."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"


def best_values(history: list[dict[str, float]]) -> dict[str, float]:
    """Best value of every epoch metric: the minimum for losses and times, the maximum for the rest."""
    best: dict[str, float] = {}
    for metrics in history:
        for tag, value in metrics.items():
            if math.isnan(value):
                continue
            lower_is_better = "loss" in tag or tag.startswith("time/")
            if tag not in best or (value < best[tag] if lower_is_better else value > best[tag]):
                best[tag] = value
    return best


def _json_safe(value: Any) -> Any:
    """NaN/Inf are not JSON: write them as null so every JSON reader accepts the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    return value


def write_run_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write metrics.json atomically, so a reader never sees half a file."""
    path = run_dir / METRICS_FILE
    tmp_path = path.with_name(path.name + ".tmp")
    tmp_path.write_text(json.dumps(_json_safe(summary), indent=2, sort_keys=True) + "\n")
    os.replace(tmp_path, path)
    return path


def read_run_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / METRICS_FILE).read_text())
