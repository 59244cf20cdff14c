"""Evaluate a finished run on its test split, from nothing but its run directory.

The run's own saved config (`.hydra/config.yaml`) rebuilds the data and the model exactly as training did
(`build_data_and_model`), its best checkpoint supplies the weights, and the loop's own `evaluate` computes the
metrics, so the numbers match what training logged for the same checkpoint. No trainer, no optimizer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from trainscope.config.inert import check_inert
from trainscope.config.targets import check_targets
from trainscope.config.yaml_files import load_yaml
from trainscope.core.checkpoint_io import find_checkpoint, load_checkpoint, load_model_weights, weights_to_test
from trainscope.core.errors import DataError, RunDirError, first_line
from trainscope.core.run_dir import METRICS_FILE, SAVED_CONFIG, check_run_dir, read_metrics, write_metrics
from trainscope.core.run_lock import run_lock
from trainscope.engine.build import build_data_and_model
from trainscope.engine.evaluation import evaluate
from trainscope.engine.forward import autocast_dtype, compiled
from trainscope.engine.settings import TrainerSettings
from trainscope.tensorboard.writer import RunWriter

log = logging.getLogger(__name__)


def load_run_config(run_dir: Path, device: str | None = None) -> DictConfig:
    """The run's saved config, checked to be inert (`config/inert.py`) before anything of it is resolved;
    `device` (if given) replaces its trainer.device."""
    path = check_run_dir(run_dir) / SAVED_CONFIG
    cfg = load_yaml(path)
    check_inert(cfg, run_dir, "run", str(path))
    if device is not None:
        cfg.trainer.device = device
    return cfg


def evaluate_run(
    run_dir: Path, checkpoint: str = "best", device: str | None = None, allow_targets: Sequence[str] = ()
) -> dict[str, float]:
    """Test the run's checkpoint; write test/* into its metrics.json and its TensorBoard run; return them.

    The run directory is untrusted input: its config builds only the `_target_`s `check_targets` allows
    (plus modules in `allow_targets`).
    """
    cfg = load_run_config(run_dir, device)
    check_targets(cfg, run_dir, allow_targets, "run")
    with run_lock(run_dir):  # a run still training rewrites metrics.json: one writer at a time
        return _evaluate(run_dir, cfg, checkpoint)


def _recorded_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's metrics.json, which eval adds its test metrics to, read as untrusted input: a file that is
    torn or not trainscope's is one line before anything is built, and is never overwritten."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        content = read_metrics(run_dir)
    except (OSError, ValueError, RecursionError) as error:
        problem = f"cannot be read ({first_line(error)})"
    else:
        if not isinstance(content, dict):
            problem = f"holds a {type(content).__name__}, not a JSON object"
        elif not isinstance(content.get("final", {}), dict):
            problem = "has a `final` that is not an object"
        elif "global_step" in content and (
            isinstance(content["global_step"], bool) or not isinstance(content["global_step"], int)
        ):
            problem = f"has global_step {content['global_step']!r}, not a whole number"
        else:
            return content
    raise RunDirError(
        f"run={run_dir}: {path} {problem}; it is torn or was not written by trainscope: move it aside (eval.py "
        "then writes a new one with the test metrics) or restore it, and evaluate again"
    )


def _evaluate(run_dir: Path, cfg: DictConfig, checkpoint: str) -> dict[str, float]:
    metrics_file = _recorded_metrics(run_dir)
    checkpoint_path = find_checkpoint(run_dir, checkpoint)
    torch_device, data, model, task = build_data_and_model(cfg)
    if data.test is None:
        raise DataError(f"data={cfg.data.get('dataset', '?')} of run {run_dir} has no test split to evaluate")
    state = load_checkpoint(checkpoint_path, torch_device)
    # the moving average of callbacks.ema, when the run kept one
    load_model_weights(model, {**state, "model": weights_to_test(state)}, checkpoint_path, run_dir)
    task.load_state_dict(state.get("task", {}))  # what training learned from its data (a regression's scaling)
    data.load_state_dict(state.get("data", {}))
    step = int(metrics_file.get("global_step", state["trainer"]["global_step"]))

    settings = TrainerSettings.from_config(cfg)
    test_metrics = evaluate(
        compiled(model, settings.trainer.compile),
        data.test,
        torch_device,
        "test",
        task,
        autocast_dtype=autocast_dtype(settings.trainer.precision, torch_device),
        channels_last=settings.trainer.channels_last,
    )
    # A second writer in the run directory appends a new event file to the same TensorBoard run; no HParams
    # session records: the run's session was written once, by training.
    tensorboard = RunWriter(run_dir, flush_secs=settings.logging.flush_secs)
    try:
        tensorboard.scalars(test_metrics, step)
    finally:
        tensorboard.close()

    metrics_file["test"] = test_metrics
    metrics_file["final"] = {**metrics_file.get("final", {}), **test_metrics}
    metrics_file["evaluated_checkpoint"] = str(checkpoint_path)
    write_metrics(run_dir, metrics_file)
    log.info("%s (%s): %s", run_dir, checkpoint_path.name, "  ".join(f"{k} {v:.4f}" for k, v in test_metrics.items()))
    return test_metrics
