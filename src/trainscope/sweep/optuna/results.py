"""`<sweep_dir>/optimization_results.yaml` and the sweep's last terminal line, both from the study itself.

Built from the storage (not from this process's memory), so a resumed or cooperating sweep reports the
whole study.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from trainscope.core.run_dir import atomic_write, read_metrics
from trainscope.sweep.optuna.study import count_trials
from trainscope.trial.attributes import RUN_DIR_ATTR
from trainscope.trial.storage import dashboard_command, redact

RESULTS_FILE = "optimization_results.yaml"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _trial_entry(trial: FrozenTrial, metric_names: Sequence[str]) -> dict[str, Any]:
    return {
        "number": trial.number,
        "values": dict(zip(metric_names, (_plain(v) for v in trial.values or []), strict=False)),
        "params": {name: _plain(value) for name, value in trial.params.items()},
        "run_dir": trial.user_attrs.get(RUN_DIR_ATTR),
    }


def epochs_trained(trial: FrozenTrial) -> int:
    """Epochs the trial's run trained: its metrics.json, else the epochs it reported to the pruner."""
    run_dir = trial.user_attrs.get(RUN_DIR_ATTR)
    if run_dir:
        try:
            return int(read_metrics(Path(run_dir)).get("epochs_run") or 0)
        except (OSError, ValueError, TypeError):
            pass
    return len(trial.intermediate_values)


def study_results(study: optuna.Study, *, n_trials: int, metric_names: Sequence[str], storage: str) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    counts = count_trials(trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    results: dict[str, Any] = {
        "name": "optuna",  # the official hydra-optuna-sweeper's keys: name, best_params, best_value, solutions
        "study_name": study.study_name,
        "storage": redact(storage),
        "dashboard": dashboard_command(redact(storage)),
        "optimized_metric": list(metric_names) if len(metric_names) > 1 else metric_names[0],
        "direction": [d.name.lower() for d in study.directions]
        if len(study.directions) > 1
        else study.direction.name.lower(),
        "n_trials": n_trials,
        "counts": dataclasses.asdict(counts),
        "epochs_trained": sum(epochs_trained(t) for t in trials),
    }
    if len(metric_names) == 1:
        best = study.best_trial if complete else None
        results.update(
            best_value=_plain(best.value) if best else None,
            best_params={k: _plain(v) for k, v in best.params.items()} if best else None,
            best_trial=best.number if best else None,
            best_run_dir=best.user_attrs.get(RUN_DIR_ATTR) if best else None,
        )
    else:
        pareto = study.best_trials if complete else []
        results["solutions"] = [
            {"params": {k: _plain(v) for k, v in t.params.items()}, "values": [_plain(v) for v in t.values]}
            for t in pareto
        ]
        results["best_trials"] = [_trial_entry(t, metric_names) for t in pareto]
    return results


def write_results(sweep_dir: str | os.PathLike[str], results: dict[str, Any]) -> Path:
    path = Path(sweep_dir) / RESULTS_FILE
    atomic_write(path, yaml.safe_dump(results, sort_keys=False, default_flow_style=False).encode())
    return path


def results_line(results: dict[str, Any], results_path: Path) -> str:
    """`optuna: 20 trials: 12 complete, 7 pruned, 1 failed; best val/acc_best=0.9731 (trial 7, <dir>)`."""
    counts = results["counts"]
    finished = counts["complete"] + counts["pruned"] + counts["failed"]
    text = (
        f"optuna: {finished} trials: {counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed"
    )
    if counts["interrupted"]:
        text += f" ({counts['interrupted']} interrupted and retried)"
    if counts["running"]:  # this process's trials are done: these run in other processes, now
        text += f", {counts['running']} still running in another process"
    if "best_trials" in results:
        text += f"; {len(results['best_trials'])} Pareto-optimal trials"
    elif results.get("best_trial") is not None:
        value = results["best_value"]
        shown = f"{value:.6g}" if isinstance(value, float) else value
        text += (
            f"; best {results['optimized_metric']}={shown} (trial {results['best_trial']}, {results['best_run_dir']})"
        )
    else:
        text += "; no trial completed"
    return f"{text}; results: {results_path}"
