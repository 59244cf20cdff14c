"""One training run, from composed config to run directory: build, fit, test, write metrics.json.

Data flows one way: config → build → loop → callbacks → run directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from trainscope.callbacks.build import STOP_ON_SIGNAL, build_callbacks
from trainscope.config.resumable import config_hash
from trainscope.config.schema import optimized_metric_names
from trainscope.core.checkpoint_io import load_checkpoint
from trainscope.core.errors import ConfigError, TrainingFailed
from trainscope.core.interruption import RunInterrupted
from trainscope.core.run_dir import BEST, CHECKPOINT_DIR, RunStatus, best_values, write_metrics
from trainscope.engine.build import (
    build_data_and_model,
    build_optimizer,
    build_scheduler,
    count_parameters,
)
from trainscope.engine.distributed import process_group
from trainscope.engine.settings import TrainerSettings
from trainscope.engine.trainer import Trainer
from trainscope.session.resume import load_resume_checkpoint, purge_step
from trainscope.tensorboard.hparams import HParamsSession
from trainscope.tensorboard.writer import RunWriter

log = logging.getLogger(__name__)

RANK_ZERO_ONLY_CALLBACKS = ("optuna_pruning",)
"""Callbacks that talk to the outside world (the Optuna study) from rank 0 alone; their stop requests reach the
other ranks through the trainer's stop agreement."""


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
    group = process_group()  # one process of a torchrun job, or the only one
    resumed = load_resume_checkpoint(cfg) if cfg.get("resume") else None  # before any work: fail fast
    device, data, model = build_data_and_model(cfg)
    optimizer = build_optimizer(cfg, model)
    scheduler, interval = build_scheduler(cfg, optimizer, steps_per_epoch=len(data.train))
    callbacks = build_callbacks(cfg)
    if not group.is_main:
        for name in RANK_ZERO_ONLY_CALLBACKS:
            callbacks.callbacks.pop(name, None)
    stop_on_signal = callbacks.callbacks[STOP_ON_SIGNAL]
    # Rank 0 writes the run's one event file; the other ranks log through a writer that keeps nothing.
    tensorboard = RunWriter(
        run_dir, flush_secs=float(cfg.logging.flush_secs), purge_step=purge_step(resumed), enabled=group.is_main
    )
    settings = TrainerSettings.from_config(cfg)
    trainer = Trainer(
        replace(settings, progress_bar=settings.progress_bar and group.is_main),  # one progress bar per run
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
        distributed=group,
    )
    if resumed is not None:
        trainer.load_state_dict(resumed)

    log.info("run directory: %s  |  watch it live: tensorboard --logdir %s", run_dir, run_dir)
    log.info("model %s: %d parameters, device %s", cfg.model._target_, count_parameters(model), device)
    if group.enabled:
        log.info(
            "distributed: %d processes, %d samples per step (data.batch_size=%d per process)",
            group.world_size,
            group.world_size * int(cfg.data.batch_size),
            int(cfg.data.batch_size),
        )
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
            trainer.save_checkpoint()
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
        if group.is_main:  # every rank holds the same metrics; one writes the file
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
    return RunResult(trainer.status, trainer.stop_reason, metrics["final"], objective(cfg, metrics["final"]))


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


def objective(cfg: DictConfig, final: dict[str, float]) -> float | tuple[float, ...]:
    """The value(s) named by `optimized_metric`, for sweepers: one float, or a tuple for several."""
    names = optimized_metric_names(cfg)
    missing = [name for name in names if name not in final]
    if missing:
        raise ConfigError(f"optimized_metric {missing[0]!r} was not logged; choose one of: {', '.join(sorted(final))}")
    values = tuple(float(final[name]) for name in names)
    return values[0] if len(values) == 1 else values
