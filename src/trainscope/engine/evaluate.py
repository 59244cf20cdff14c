"""Evaluate a finished run on its test split, from nothing but its run directory.

The run's own saved config (`.hydra/config.yaml`) rebuilds the data and the model exactly as training did
(`build_data_and_model`), its best checkpoint supplies the weights, and the trainer's own `evaluate`
computes the metrics, so the numbers match what training logged for the same checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainscope.engine.build import build_data_and_model, build_optimizer
from trainscope.engine.callbacks import CallbackList
from trainscope.engine.checkpoint import BEST, CHECKPOINT_DIR, LAST, load_checkpoint
from trainscope.engine.trainer import Trainer
from trainscope.errors import CheckpointError, DataError
from trainscope.monitor.run_summary import METRICS_FILE, read_run_summary, write_run_summary
from trainscope.monitor.tensorboard import TensorBoardMonitor

log = logging.getLogger(__name__)

SAVED_CONFIG = Path(".hydra") / "config.yaml"


def check_run_dir(run_dir: Path) -> Path:
    """`run_dir` if it is a training run directory, else a one-line CheckpointError saying what to pass."""
    if not (run_dir / SAVED_CONFIG).is_file():
        raise CheckpointError(
            f"run={run_dir} is not a run directory (no {SAVED_CONFIG} in it); pass a training run's folder, "
            "e.g. run=outputs/runs/<date>/<time>_<overrides>"
        )
    return run_dir


def load_run_config(run_dir: Path, device: str | None = None) -> DictConfig:
    """The run's saved config; `device` (if given) replaces its trainer.device."""
    cfg = OmegaConf.load(check_run_dir(run_dir) / SAVED_CONFIG)
    if device is not None:
        cfg.trainer.device = device
    return cfg


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """`best` (falling back to `last`), `last`, or an explicit path."""
    directory = run_dir / CHECKPOINT_DIR
    if which == "best":
        candidates = [directory / BEST, directory / LAST]
    elif which == "last":
        candidates = [directory / LAST]
    else:
        candidates = [Path(which)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = " or ".join(path.name for path in candidates)
    raise CheckpointError(
        f"no checkpoint to evaluate: {names} not found in {candidates[0].parent} "
        "(was the run trained with callbacks.checkpoint=null?)"
    )


def evaluate_run(run_dir: Path, checkpoint: str = "best", device: str | None = None) -> dict[str, float]:
    """Test the run's checkpoint; write test/* into its metrics.json and its TensorBoard run; return them."""
    cfg = load_run_config(run_dir, device)
    checkpoint_path = find_checkpoint(run_dir, checkpoint)
    torch_device, data, model = build_data_and_model(cfg)
    if data.test is None:
        raise DataError(f"data={cfg.data.get('dataset', '?')} of run {run_dir} has no test split to evaluate")
    state = load_checkpoint(checkpoint_path, torch_device)
    model.load_state_dict(state["model"])
    summary: dict[str, Any] = read_run_summary(run_dir) if (run_dir / METRICS_FILE).is_file() else {}
    step = int(summary.get("global_step", state["trainer"]["global_step"]))

    # A second writer in the run directory appends a new event file to the same TensorBoard run; no HParams
    # session records: the run's session was written once, by training.
    monitor = TensorBoardMonitor(run_dir, flush_secs=float(cfg.logging.flush_secs))
    try:
        optimizer = build_optimizer(cfg, model)  # unused, but part of a Trainer
        trainer = Trainer(cfg, model, data, optimizer, None, "epoch", CallbackList({}), monitor, run_dir, torch_device)
        metrics = trainer.evaluate(data.test, "test")
        monitor.scalars(metrics, step)
    finally:
        monitor.close()

    summary["test"] = metrics
    summary["final"] = {**summary.get("final", {}), **metrics}
    summary["evaluated_checkpoint"] = str(checkpoint_path)
    write_run_summary(run_dir, summary)
    log.info("%s (%s): %s", run_dir, checkpoint_path.name, "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return metrics
