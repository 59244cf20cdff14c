"""One training run, from composed config to run directory: build, fit, test, write metrics.json.

Data flows one way: config → build → loop → callbacks → run directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from trainscope.callbacks.build import STOP_ON_SIGNAL, build_callbacks
from trainscope.config.resumable import config_hash
from trainscope.config.schema import optimized_metric_names
from trainscope.core.checkpoint_io import load_checkpoint, save_checkpoint
from trainscope.core.errors import ConfigError, TrainingFailed
from trainscope.core.interruption import RunInterrupted
from trainscope.core.run_dir import BEST, CHECKPOINT_DIR, RunStatus, best_values, write_metrics
from trainscope.engine.build import (
    build_data_and_model,
    build_optimizer,
    build_scheduler,
    count_parameters,
)
from trainscope.engine.settings import TrainerSettings
from trainscope.engine.trainer import Trainer
from trainscope.session.resume import load_resume_checkpoint, purge_step
from trainscope.tensorboard.hparams import HParamsSession
from trainscope.tensorboard.writer import RunWriter

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run reports to the entrypoint and to sweepers."""

    status: RunStatus
    reason: str
    metrics: dict[str, float]  # last epoch metrics, test metrics and run facts
    objective: float | tuple[float, ...]


def train(cfg: DictConfig, run_dir: Path) -> RunResult:
    """Train as `cfg` says, writing everything into `run_dir`; raises TrainingFailed if the run fails."""
    started = time.time()
    resumed = load_resume_checkpoint(cfg) if cfg.get("resume") else None  # before any work: fail fast
    device, data, model = build_data_and_model(cfg)
    optimizer = build_optimizer(cfg, model)
    scheduler, interval = build_scheduler(cfg, optimizer, steps_per_epoch=len(data.train))
    callbacks = build_callbacks(cfg)
    stop_on_signal = callbacks.callbacks[STOP_ON_SIGNAL]
    tensorboard = RunWriter(run_dir, flush_secs=float(cfg.logging.flush_secs), purge_step=purge_step(resumed))
    trainer = Trainer(
        TrainerSettings.from_config(cfg),
        model,
        data,
        optimizer,
        scheduler,
        interval,
        callbacks,
        tensorboard,
        run_dir,
        device,
        # Resolving and hashing the config costs tens of ms: once per run, not at every checkpoint.
        config_hash=config_hash(cfg),
    )
    if resumed is not None:
        trainer.load_state_dict(resumed)

    log.info("run directory: %s  |  watch it live: tensorboard --logdir %s", run_dir, run_dir)
    log.info("model %s: %d parameters, device %s", cfg.model._target_, count_parameters(model), device)
    session = HParamsSession.from_config(cfg, tensorboard.writer, run_dir)
    if resumed is None:
        session.start()
    else:
        session.resume()  # one session per run: the first segment wrote its start info
    test_metrics: dict[str, float] = {}
    stop_on_signal.install()
    try:
        trainer.fit()
        if trainer.status == RunStatus.INTERRUPTED:
            # mid-epoch too: the resumed run finishes this epoch exactly
            save_checkpoint(run_dir, trainer, trainer.config_hash)
        if (
            cfg.trainer.test
            and data.test is not None
            and trainer.status
            in (
                RunStatus.COMPLETED,
                RunStatus.STOPPED_EARLY,
            )
        ):
            test_metrics = _test_best_model(trainer)
    finally:
        metrics = _run_metrics(cfg, trainer, test_metrics, time.time() - started)
        write_metrics(run_dir, metrics)
        session.end(trainer.status, trainer.state.global_step)
        tensorboard.close()
        stop_on_signal.restore()
    if trainer.status == RunStatus.INTERRUPTED:
        interrupted = RunInterrupted(run_dir, stop_on_signal.signal_number, trainer.state.global_step)
        log.warning("%s", interrupted)
        raise interrupted
    if trainer.status == RunStatus.FAILED:
        raise TrainingFailed(f"training failed: {trainer.stop_reason}")
    return RunResult(trainer.status, trainer.stop_reason, metrics["final"], _objective(cfg, metrics["final"]))


def _test_best_model(trainer: Trainer) -> dict[str, float]:
    """Evaluate the best checkpoint (the last weights when no checkpoint was kept) on the test split."""
    best_path = trainer.run_dir / CHECKPOINT_DIR / BEST
    if best_path.is_file():
        trainer.model.load_state_dict(load_checkpoint(best_path, trainer.device)["model"])
    metrics = trainer.evaluate(trainer.data.test, "test")
    trainer.tensorboard.scalars(metrics, trainer.state.global_step)
    log.info("test/loss %.4f  test/acc %.4f", metrics["test/loss"], metrics["test/acc"])
    return metrics


def _run_metrics(cfg: DictConfig, trainer: Trainer, test_metrics: dict[str, float], seconds: float) -> dict[str, Any]:
    """The content of metrics.json."""
    history = trainer.state.history
    metric_names = optimized_metric_names(cfg)
    final = {
        **(history[-1] if history else {}),
        **test_metrics,
        "model/num_parameters": float(count_parameters(trainer.model)),
        "time/wall_seconds": seconds,
    }
    return {
        "status": trainer.status,
        "reason": trainer.stop_reason,
        "epochs_run": trainer.state.epoch,
        "global_step": trainer.state.global_step,
        "wall_time_seconds": seconds,
        "final": final,
        "best": best_values(history),
        "test": test_metrics,
        "optimized_metric": metric_names if len(metric_names) > 1 else metric_names[0],
        "run_dir": str(trainer.run_dir),
    }


def _objective(cfg: DictConfig, final: dict[str, float]) -> float | tuple[float, ...]:
    """The value(s) named by `optimized_metric`, for sweepers: one float, or a tuple for several."""
    names = optimized_metric_names(cfg)
    missing = [name for name in names if name not in final]
    if missing:
        raise ConfigError(f"optimized_metric {missing[0]!r} was not logged; choose one of: {', '.join(sorted(final))}")
    values = tuple(float(final[name]) for name in names)
    return values[0] if len(values) == 1 else values
