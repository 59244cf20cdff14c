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

from trainscope.callbacks.build import METRICS_CSV, OPTUNA_PRUNING, STOP_ON_SIGNAL, build_callbacks
from trainscope.callbacks.stop_on_signal import PhaseCut, StopOnSignal
from trainscope.config.groups.logging import LoggingConfig
from trainscope.config.resumable import config_hash
from trainscope.config.run_names import SWEPT_KEYS_FILE
from trainscope.config.schema import optimized_metric_names
from trainscope.core.checkpoint_io import (
    EMA_WEIGHTS,
    error_detail,
    load_checkpoint,
    weights_fingerprint,
    weights_to_test,
)
from trainscope.core.errors import (
    CheckpointError,
    ConfigError,
    RunDirError,
    TrainingFailed,
    TrainscopeError,
    is_disk_full,
)
from trainscope.core.interruption import RunInterrupted, resume_command
from trainscope.core.run_dir import (
    BEST,
    CHECKPOINT_DIR,
    METRICS_FILE,
    TOKENIZER_DIR,
    RunStatus,
    best_values,
    release_space,
    reserve_space,
    write_metrics,
)
from trainscope.distributed.process_group import process_group
from trainscope.engine.build import (
    build_data_and_model,
    build_optimizer,
    build_scheduler,
    count_parameters,
)
from trainscope.engine.settings import TrainerSettings
from trainscope.engine.trainer import Trainer
from trainscope.session.resume import load_resume_checkpoint, purge_step
from trainscope.tasks import Task
from trainscope.tensorboard.hparams import HParamsSession, metric_columns
from trainscope.tensorboard.serve import Board, serve
from trainscope.tensorboard.writer import RunWriter

log = logging.getLogger(__name__)

RANK_ZERO_ONLY_CALLBACKS = (OPTUNA_PRUNING, METRICS_CSV)
"""Callbacks that talk to the outside world (the Optuna study, the run's metrics.csv) from rank 0 alone; their stop
requests reach the other ranks through the trainer's stop agreement."""


@dataclass
class RunResult:
    """What a finished run reports to the entrypoint and to sweepers."""

    status: RunStatus
    reason: str
    metrics: dict[str, float]  # last epoch metrics, test metrics and run facts
    objective: float | tuple[float, ...]


def train(cfg: DictConfig, run_dir: Path, stop_on_signal: StopOnSignal | None = None) -> RunResult:
    """Train as `cfg` says, writing everything into `run_dir`; raises TrainingFailed if the run fails.

    `stop_on_signal`: the handler the entrypoint installed when the run started (a signal during start-up then
    stops the run before its first step); without one, signals are handled from the first step on.
    """
    started = time.time()
    resumed = load_resume_checkpoint(cfg) if cfg.get("resume") else None  # before any work: fail fast
    device, data, model, task = build_data_and_model(cfg, initial_weights=resumed is None)
    optimizer = build_optimizer(cfg, model)
    scheduler, interval = build_scheduler(cfg, optimizer, source_length=len(data.train))
    group = process_group()  # one process of a torchrun job, or the only one
    callbacks = build_callbacks(cfg, task, stop_on_signal, model)
    stop_on_signal = callbacks.callbacks[STOP_ON_SIGNAL]
    if not group.is_main:
        for name in RANK_ZERO_ONLY_CALLBACKS:
            callbacks.callbacks.pop(name, None)
    # Rank 0 writes the run's one event file; the other ranks log through a writer that keeps nothing.
    settings = TrainerSettings.from_config(cfg)
    tensorboard = RunWriter(
        run_dir, flush_secs=settings.logging.flush_secs, purge_step=purge_step(resumed), enabled=group.is_main
    )
    one_progress_bar = replace(settings.logging, progress_bar=settings.logging.progress_bar and group.is_main)
    trainer = Trainer(
        replace(settings, logging=one_progress_bar),  # one progress bar per run
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
        task=task,
    )
    if resumed is not None:
        try:
            trainer.load_state_dict(resumed)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:  # a checkpoint from somewhere else
            raise CheckpointError(
                f"resume: the checkpoint of {run_dir} does not fit this run ({error_detail(error)}); was it "
                "written by another config or trainscope version? start a new run"
            ) from None

    in_sweep = (run_dir.parent / SWEPT_KEYS_FILE).is_file()  # a sweep's run: watch the whole sweep
    board_folder = run_dir.parent if in_sweep else run_dir
    log.info("run directory: %s  |  watch it live: tensorboard --logdir %s", run_dir, board_folder)
    board = _serve(settings.logging, board_folder, in_sweep) if group.is_main else None
    # a sweep's server stays for the trials after this one (they reuse it); a single run's stops with the run
    stop_board = board.stop if board is not None and not (in_sweep or settings.logging.serve_stay) else _nothing
    log.info("model %s: %d parameters, device %s", cfg.model._target_, count_parameters(model), device)
    if group.enabled:
        log.info(
            "distributed: %d processes, %d samples per step (data.batch_size=%d per process)",
            group.world_size,
            group.world_size * int(cfg.data.batch_size),
            int(cfg.data.batch_size),
        )
    session = HParamsSession.from_config(cfg, tensorboard.writer, run_dir, metric_columns(task.hparams_metrics()))
    closing = _RunClosing(cfg, trainer, session, tensorboard, started, writes_files=group.is_main)
    if group.is_main:
        reserve_space(run_dir)
        save_tokenizer(data, run_dir)
    stop_on_signal.install()
    try:
        if resumed is None:
            session.start()
        else:
            session.resume()  # one session per run: the first segment wrote its start info
        test_metrics = _fit_and_test(cfg, trainer, stop_on_signal)
    except BaseException as error:
        if is_disk_full(error):  # rather than the loop's `OSError: [Errno 28] ...`: what happened, in words
            trainer.status = RunStatus.FAILED
            trainer.stop_reason = f"disk full: could not write to {run_dir} ({error.strerror})"
        closing.close({})
        stop_board()
        stop_on_signal.restore()
        reported = closing.one_line_error(error)
        if reported is error:
            raise
        raise reported from error
    metrics = closing.close(test_metrics)
    stop_board()
    stop_on_signal.restore()
    if closing.write_error is not None:
        raise closing.one_line_error(closing.write_error) from closing.write_error
    if trainer.status == RunStatus.INTERRUPTED:
        interrupted = RunInterrupted(run_dir, stop_on_signal.signal_number, trainer.state.global_step)
        log.warning("%s", interrupted)
        raise interrupted
    if trainer.status == RunStatus.FAILED:
        raise TrainingFailed(f"training failed: {trainer.stop_reason}")
    return RunResult(trainer.status, trainer.stop_reason, metrics["final"], objective(cfg, metrics["final"]))


def _serve(logging_config: LoggingConfig, folder: Path, in_sweep: bool) -> Board | None:
    """With `logging.serve=true`, a TensorBoard over `folder` (started, or the one already serving it), its URL
    logged. A port in use or a server that does not start is a warning: a viewer is no reason to lose a run."""
    if not logging_config.serve:
        return None
    try:
        board = serve(folder, logging_config.serve_port)
    except ConfigError as error:
        log.warning("tensorboard not started: %s; training goes on", error)
        return None
    if not board.started:
        how = f"already running (pid {board.pid})"
    elif in_sweep or logging_config.serve_stay:
        how = f"stays after the run: stop it with kill {board.pid}"
    else:
        how = "stops with the run"
    log.info("tensorboard: %s  (%s, serving %s)", board.url, how, folder)
    return board


def _nothing() -> None:
    """The stop of a server this run does not stop."""


def save_tokenizer(data: Any, run_dir: Path) -> None:
    """A language model's run keeps its tokenizer (`<run_dir>/tokenizer/`): sampling and `eval.py` need nothing
    but the run, even after the corpus or the Hub's copy changed."""
    tokenizer = getattr(data, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.save(run_dir / TOKENIZER_DIR)


def _fit_and_test(cfg: DictConfig, trainer: Trainer, stop_on_signal: StopOnSignal) -> dict[str, float]:
    """Train; then test the best model if the run completed or stopped early. The test metrics.

    A signal during the test phase cuts it at once: training's last checkpoint is written, so the run is
    recorded `interrupted` (no test metrics) and `resume=` trains nothing more and runs the test phase again.
    """
    trainer.fit()
    if trainer.status == RunStatus.INTERRUPTED:
        # mid-epoch too: the resumed run finishes this epoch exactly
        trainer.save_checkpoint()
    tested = cfg.trainer.test and trainer.data.test is not None
    if tested and trainer.status in (RunStatus.COMPLETED, RunStatus.STOPPED_EARLY):
        try:
            with stop_on_signal.cutting_at_once():
                return _test_best_model(trainer)
        except PhaseCut as cut:
            trainer.status = RunStatus.INTERRUPTED
            trainer.stop_reason = f"interrupted by {cut} during the test phase"
    return {}


class _RunClosing:
    """The end of every run, however it ends: metrics.json, the HParams session end, TensorBoard closed.

    Each step is tried even when an earlier one could not write (a full disk), metrics.json first since
    sweepers and scripts read it; what could not be written is remembered for the one error line.
    """

    def __init__(
        self,
        cfg: DictConfig,
        trainer: Trainer,
        session: HParamsSession,
        tensorboard: RunWriter,
        started: float,
        writes_files: bool,
    ) -> None:
        self.cfg = cfg
        self.trainer = trainer
        self.session = session
        self.tensorboard = tensorboard
        self.started = started
        self.writes_files = writes_files  # rank 0 (or the only process): every rank holds the same metrics
        self.metrics_error: OSError | None = None
        self.write_error: OSError | None = None  # the first one, metrics.json's included

    def close(self, test_metrics: dict[str, float]) -> dict[str, Any]:
        """Write everything that ends the run; the content of metrics.json (written or not)."""
        trainer = self.trainer
        metrics = _run_metrics(self.cfg, trainer, test_metrics, time.time() - self.started)
        if self.writes_files:
            release_space(trainer.run_dir)
            try:
                write_metrics(trainer.run_dir, metrics)
            except OSError as error:
                self.metrics_error = self.write_error = error
        # a full disk fails the run but leaves it resumable: its HParams session stays open for the resumed run
        resumable = trainer.stop_reason.startswith("disk full")
        for step in (
            lambda: self.session.end(trainer.status, trainer.state.global_step, leave_open=resumable),
            self.tensorboard.close,
        ):
            try:
                step()
            except OSError as error:
                self.write_error = self.write_error or error
        return metrics

    def one_line_error(self, error: BaseException) -> BaseException:
        """The error to report for `error`: a full disk becomes one line saying what is kept and what to run;
        a one-line error gains a note when metrics.json is missing; anything else is returned unchanged."""
        run_dir = self.trainer.run_dir
        if self.metrics_error is not None:
            note = f"{METRICS_FILE} could not be written either ({self.metrics_error.strerror})"
        else:
            note = f"{METRICS_FILE} records the run as {self.trainer.status}"
        if is_disk_full(error):
            return RunDirError(
                f"disk full: could not write to {run_dir} ({error.strerror}); {note}, and the last checkpoint is "
                f"kept: free disk space, then resume with: {resume_command(run_dir)}"
            )
        if isinstance(error, TrainscopeError) and self.metrics_error is not None:
            return type(error)(f"{error}; {note}")
        return error


def _test_best_model(trainer: Trainer) -> dict[str, float]:
    """Evaluate the best checkpoint (the last weights when no checkpoint was kept) on the test split: its weights'
    moving average when `callbacks.ema` kept one."""
    best_path = trainer.run_dir / CHECKPOINT_DIR / BEST
    # When the model still holds the weights best.pt was written from (the last epoch was the best), reading
    # the file back would load the same values.
    if best_path.is_file() and (trainer.best_weights != weights_fingerprint(trainer.model) or _keeps_average(trainer)):
        trainer.model.load_state_dict(weights_to_test(load_checkpoint(best_path, trainer.device)))
    metrics = trainer.evaluate(trainer.data.test, "test")
    trainer.tensorboard.scalars(metrics, trainer.state.global_step)
    log.info("%s", "  ".join(f"{tag} {metrics[tag]:.4f}" for tag in trainer.task.shown("test") if tag in metrics))
    return metrics


def _keeps_average(trainer: Trainer) -> bool:
    """Whether a callback keeps a moving average of the weights, which the test phase tests instead."""
    return any(EMA_WEIGHTS in state for state in trainer.callbacks.state_dict().values())


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
    monitor = {"metric": str(cfg.monitor.metric), "mode": str(cfg.monitor.mode)}
    return {
        "status": trainer.status,
        "reason": trainer.stop_reason,
        "epochs_run": trainer.state.epoch,
        "global_step": trainer.state.global_step,
        "wall_time_seconds": seconds,
        "final": final,
        "best": best_values(history, {**_task_modes(trainer.task, history), monitor["metric"]: monitor["mode"]}),
        "test": test_metrics,
        "optimized_metric": metric_names if len(metric_names) > 1 else metric_names[0],
        "monitor": monitor,  # what checkpoints/best.pt was chosen by: the runs table's best value
        "run_dir": str(trainer.run_dir),
    }


def train_on_devices(cfg: DictConfig, run_dir: Path, devices: int, overrides: list[str]) -> RunResult:
    """`trainer.devices=N`: the run trained by `devices` processes on this machine, reported as `train` reports one."""
    from trainscope.distributed.launch import run_on_devices  # torch's elastic agent, only when asked for

    metrics = run_on_devices(run_dir, devices, overrides)
    final = metrics["final"]
    return RunResult(RunStatus(metrics["status"]), metrics["reason"], final, objective(cfg, final))


def _task_modes(task: Task, history: list[dict[str, float]]) -> dict[str, str]:
    """Which way each logged metric is better, as the task says (`val/rmse`: min), for metrics.json's `best`."""
    return {tag: mode for epoch in history for tag in epoch if (mode := task.mode(tag)) is not None}


def objective(cfg: DictConfig, final: dict[str, float]) -> float | tuple[float, ...]:
    """The value(s) named by `optimized_metric`, for sweepers: one float, or a tuple for several."""
    names = optimized_metric_names(cfg)
    missing = [name for name in names if name not in final]
    if missing:
        raise ConfigError(f"optimized_metric {missing[0]!r} was not logged; choose one of: {', '.join(sorted(final))}")
    values = tuple(float(final[name]) for name in names)
    return values[0] if len(values) == 1 else values
