"""The training loop: one obvious path from the first batch to metrics.json.

What the problem is (the loss, the metrics, how a batch splits into inputs and targets) is the task's business
(`trainscope.tasks`). Losses and the task's statistics accumulate on the device and are read only every
`log_every_n_steps` steps and at epoch end, so the loop never waits on the GPU in between. Callbacks watch through
the hooks in `trainscope.core.callback` and a read-only view of the run (`trainscope.core.view.TrainerView`); they
stop the run only through `request_stop`.
"""

from __future__ import annotations

import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainscope.core.callback import CallbackList
from trainscope.core.checkpoint_io import WeightsFingerprint, keep_as_best, save_checkpoint, weights_fingerprint
from trainscope.core.run_dir import STOP_STATUSES, RunStatus
from trainscope.data import BatchSource, DataModule
from trainscope.distributed.process_group import SINGLE_PROCESS, ProcessGroup
from trainscope.engine.evaluation import evaluate
from trainscope.engine.forward import autocast, autocast_dtype, compiled, to_memory_format
from trainscope.engine.progress import EpochProgress
from trainscope.engine.settings import TrainerSettings
from trainscope.engine.steps import batches_per_epoch, epochs_to_train
from trainscope.tasks import Classification, Task, batch_count
from trainscope.tensorboard.writer import EPOCH_TAG, RunWriter, per_group_tags

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Where the run is: what a checkpoint needs to continue exactly."""

    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained (mid-epoch checkpoints)
    best_monitored: float | None = None  # best value so far of the task's monitored metric (`val/acc_best`)
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains `model` on `data`, logging to `tensorboard` and calling `callbacks` at each hook."""

    def __init__(
        self,
        settings: TrainerSettings,
        model: nn.Module,
        data: DataModule,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scheduler_interval: str,
        callbacks: CallbackList,
        tensorboard: RunWriter,
        run_dir: Path,
        device: torch.device,
        config_hash: str = "",
        distributed: ProcessGroup = SINGLE_PROCESS,
        task: Task | None = None,
    ) -> None:
        if task is None:  # the default task, as `task=classification`
            task = Classification()
            task.bind(data)
        self.task = task
        self.settings = settings
        self.model = model
        self.data = data
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.callbacks = callbacks
        self.tensorboard = tensorboard
        self.run_dir = run_dir
        self.device = device
        self.distributed = distributed
        self.state = TrainState()
        self.config_hash = config_hash  # written into every checkpoint, checked on resume
        self.best_weights: WeightsFingerprint | None = None  # the model's weights when best.pt was last written
        self.status = RunStatus.RUNNING
        self.stop_reason = ""
        self.accumulate = settings.trainer.accumulate_grad_batches
        self.max_steps = settings.trainer.max_steps
        # With max_steps the run lasts that many optimizer steps, in the epochs (validation periods) they take.
        self.max_epochs = epochs_to_train(settings.trainer, len(data.train))
        self.log_every = settings.logging.log_every_n_steps
        self.autocast_dtype = autocast_dtype(settings.trainer.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.autocast_dtype == torch.float16)
        self.grad_clip = settings.trainer.grad_clip
        self._last_grad_norm: Tensor | float = float("nan")
        self.progress = EpochProgress(enabled=settings.logging.progress_bar)
        # This epoch's and this log window's sums: (loss * n, the task's statistics, n).
        self.running_sums = torch.zeros(2, 2 + task.train_statistic_count, device=device)
        self._batch_counts: dict[int, Tensor] = {}
        self.channels_last = settings.trainer.channels_last
        # The compiled module shares the model's parameters; `self.model` stays the plain module, so
        # checkpoints and callbacks see its state_dict without torch.compile's `_orig_mod.` prefix.
        self.forward = compiled(model, settings.trainer.compile)
        # Training goes through DistributedDataParallel in a process group: it averages gradients across ranks
        # inside backward(). Evaluation keeps the plain module: ranks evaluate shards of different lengths, and
        # DDP's forward may start collectives that every rank would have to join.
        self.ddp_model = distributed.wrap(model, device) if distributed.enabled else None
        self.train_forward = (
            compiled(self.ddp_model, settings.trainer.compile) if self.ddp_model is not None else self.forward
        )
        # The gradients of the accumulating micro-batches of one optimizer step, summed on the device.
        self._pending_sums = torch.zeros(2 + task.train_statistic_count, device=device)

    # ----------------------------------------------------------------------------------------------
    # control

    def request_stop(self, reason: str, status: str) -> None:
        """The one signal callbacks send into the loop: stop after the current step."""
        if status not in STOP_STATUSES:
            raise ValueError(f"status must be one of {STOP_STATUSES}, got {status!r}")
        if self.status in STOP_STATUSES:
            return  # the first reason wins: a NaN that triggers early stopping is still a failure
        self.status, self.stop_reason = RunStatus(status), reason
        log.warning("stopping: %s", reason)

    @property
    def stopping(self) -> bool:
        return self.status in STOP_STATUSES

    @property
    def batches_per_epoch(self) -> int:
        """Training batches in one epoch, after `limit_train_batches`; with `val_check_interval` an epoch is that
        many optimizer steps (a validation period), at most one pass of the data."""
        return batches_per_epoch(self.settings.trainer, len(self.data.train))

    @property
    def reached_max_steps(self) -> bool:
        return self.max_steps is not None and self.state.global_step >= self.max_steps

    def _agree_on_stop(self) -> None:
        """Every rank stops at the same step: a stop requested on any rank (pruning or early stopping on rank 0,
        a signal) reaches the others here, or they would wait forever in the next gradient all-reduce."""
        if not self.distributed.enabled:
            return
        code = STOP_STATUSES.index(self.status) + 1 if self.stopping else 0
        agreed, reason = self.distributed.agree_on_stop(code, self.stop_reason)
        if agreed and not self.stopping:
            self.request_stop(reason, STOP_STATUSES[agreed - 1])

    def save_checkpoint(self, best: bool = False) -> None:
        """Write `checkpoints/last.pt` (and `best.pt`). Every rank holds the same state, so rank 0 alone writes."""
        if self.distributed.is_main:
            self.tensorboard.flush()  # the step's points reach the event file before a checkpoint claims the step
            save_checkpoint(self.run_dir, self, self.config_hash)
            if best:
                keep_as_best(self.run_dir)
        if best:
            self.best_weights = weights_fingerprint(self.model)

    # ----------------------------------------------------------------------------------------------
    # the loop

    def fit(self) -> None:
        """Train until max_epochs or a stop request; `self.status` says how it ended."""
        self.callbacks.call("on_fit_start", self)
        self._agree_on_stop()
        try:
            while self.state.epoch < self.max_epochs and not self.reached_max_steps and not self.stopping:
                train_metrics = self._train_epoch()
                if self.status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
                    break  # an interrupted epoch is finished by the resumed run, not validated now
                self._end_epoch(train_metrics, self._validate())
                self._agree_on_stop()
            if not self.stopping:
                self.status = RunStatus.COMPLETED
        except BaseException as error:
            if not self.stopping:
                self.status, self.stop_reason = RunStatus.FAILED, f"{type(error).__name__}: {error}"
            raise
        finally:
            self.progress.close()
            self.callbacks.call("on_fit_end", self)
            self.tensorboard.flush()

    def _train_epoch(self) -> dict[str, float]:
        source = self.data.train
        epoch = self.state.epoch
        total = self.batches_per_epoch
        source.set_epoch(epoch)
        self.model.train()
        self.callbacks.call("on_train_epoch_start", self)
        self.progress.start_epoch(epoch, self.max_epochs, total, self.state.batch_in_epoch)

        if self.state.batch_in_epoch == 0:
            self.running_sums.zero_()
        # Views into `running_sums` (loss * n, statistics, n): a mid-epoch checkpoint keeps the partial epoch.
        epoch_sums, window_sums = self.running_sums.unbind(0)
        window_start = time.perf_counter()
        epoch_start = time.perf_counter()
        for batch in source.iter_from(self.state.batch_in_epoch):
            if self.state.batch_in_epoch >= total:
                break
            inputs, targets = self.task.split_batch(batch)
            step_start = self.state.batch_in_epoch - self.state.batch_in_epoch % self.accumulate
            if self.state.batch_in_epoch == step_start:
                # cleared when a step begins, not after it: the histograms read the last step's gradients
                self.optimizer.zero_grad(set_to_none=True)
            self.state.batch_in_epoch += 1
            batches_in_step = min(self.accumulate, total - step_start)  # the epoch's last step may be shorter
            steps_now = self.state.batch_in_epoch == step_start + batches_in_step
            self._pending_sums += self._accumulate_gradients(inputs, targets, batches_in_step, synchronize=steps_now)
            if not steps_now:
                continue  # a stop, a log line and a checkpoint wait for the optimizer step
            self._optimizer_step()
            # Summed over ranks at every step (queued on the GPU stream, no host wait), so every rank holds the
            # group's sums: the logged train/* metrics are global and rank 0's checkpoint keeps the whole epoch.
            self.running_sums += self.distributed.all_reduce_sum(self._pending_sums)  # both rows
            self._pending_sums.zero_()
            self.state.global_step += 1

            step_metrics = None
            if self.state.global_step % self.log_every == 0:
                step_metrics = self._read_window(window_sums, time.perf_counter() - window_start)
                window_sums.zero_()
                window_start = time.perf_counter()
            self.progress.advance(self.state.batch_in_epoch, step_metrics)
            self.callbacks.call("on_train_batch_end", self, step_metrics)
            self._agree_on_stop()
            if self.stopping or self.reached_max_steps:
                break

        self.progress.close()
        if self.status == RunStatus.INTERRUPTED:
            return {}
        loss_sum, *statistics, count = epoch_sums.tolist()
        seconds = time.perf_counter() - epoch_start
        metrics = {
            "train/loss": loss_sum / max(count, 1),
            **{f"train/{name}": value for name, value in self.task.train_metrics(statistics, count, seconds).items()},
            "time/epoch_seconds": seconds,
        }
        if not math.isfinite(metrics["train/loss"]):
            self.request_stop(
                f"train loss is {metrics['train/loss']} in epoch {epoch + 1}: "
                "try a lower optimizer.lr or trainer.grad_clip",
                status=RunStatus.FAILED,
            )
        self.callbacks.call("on_train_epoch_end", self, metrics)
        return metrics

    def _validate(self) -> dict[str, float]:
        """`val/loss` and the task's `val/*` metrics; none at all without a validation split (`data.val_fraction=0`),
        rather than zeros that would read as real metrics."""
        if len(self.data.val) == 0:
            return {}
        val_metrics = self.evaluate(self.data.val, "val", self.settings.trainer.limit_val_batches)
        self.callbacks.call("on_validation_end", self, val_metrics)
        return val_metrics

    def _accumulate_gradients(self, inputs: Any, targets: Any, batches_in_step: int, synchronize: bool) -> Tensor:
        """Forward and backward of one batch, its loss divided by the step's `batches_in_step` so K batches of B
        add up to the gradient of one batch of K*B (`accumulate_grad_batches=K`). Under DDP only the last batch
        of a step (`synchronize`) all-reduces gradients: the others accumulate locally in `no_sync`. Returns
        (loss * n, the task's statistics, n) on the device, without syncing."""
        accumulating = self.ddp_model.no_sync() if self.ddp_model is not None and not synchronize else nullcontext()
        with accumulating:
            with autocast(self.device, self.autocast_dtype):
                outputs = self.task.forward(self.train_forward, to_memory_format(inputs, self.channels_last))
                loss = self.task.loss(outputs, targets)
            self.scaler.scale(loss / batches_in_step if batches_in_step > 1 else loss).backward()
        count = batch_count(self._batch_counts, outputs.shape[0], self.device)
        statistics = self.task.train_statistics(outputs.detach(), targets)
        return torch.stack((loss.detach().float() * count, *statistics, count))

    def _optimizer_step(self) -> None:
        """Clip and apply the accumulated gradients; step a per-step learning-rate schedule."""
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            self._last_grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), float(self.grad_clip))
        elif (self.state.global_step + 1) % self.log_every == 0:
            self._last_grad_norm = _global_grad_norm(self.model)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()

    def _read_window(self, window_sums: Tensor, seconds: float) -> dict[str, float]:
        """The one place step metrics are read from the device: every `log_every_n_steps` steps."""
        loss_sum, *statistics, count = window_sums.tolist()
        metrics = {
            "train/loss_step": loss_sum / max(count, 1),
            **{
                f"train/{name}_step": value
                for name, value in self.task.train_metrics(statistics, count, seconds).items()
            },
            "train/grad_norm": float(self._last_grad_norm),
            "train/samples_per_sec": count / max(seconds, 1e-9),
            **self.learning_rates(),
        }
        self.tensorboard.scalars(metrics, self.state.global_step)
        if not math.isfinite(metrics["train/loss_step"]):
            self.request_stop(
                f"train loss is {metrics['train/loss_step']} at step {self.state.global_step}: "
                "try a lower optimizer.lr or trainer.grad_clip",
                status=RunStatus.FAILED,
            )
        return metrics

    def learning_rates(self) -> dict[str, float]:
        groups = self.optimizer.param_groups
        return per_group_tags("lr", [float(group["lr"]) for group in groups], [group.get("name") for group in groups])

    def evaluate(self, source: BatchSource, prefix: str, limit: int | float | None = None) -> dict[str, float]:
        """The task's loss and metrics of the model on `source`, as `<prefix>/loss`, `<prefix>/acc`, ..."""
        on_batch = None
        if prefix == "val" and self.callbacks.wants("on_validation_batch_end"):

            def on_batch(inputs: Any, targets: Any, outputs: Tensor) -> None:
                self.callbacks.call("on_validation_batch_end", self, inputs, targets, outputs)

        return evaluate(
            self.forward,
            source,
            self.device,
            prefix,
            self.task,
            limit,
            self.autocast_dtype,
            self.channels_last,
            on_batch,
            # each rank evaluated its own shard: the sums of all shards cover the split exactly once
            reduce_sums=self.distributed.all_reduce_sum,
        )

    def _end_epoch(self, train_metrics: dict[str, float], val_metrics: dict[str, float]) -> None:
        self.state.epoch += 1
        self.state.batch_in_epoch = 0
        metrics = {**train_metrics, **val_metrics}
        monitor = self.task.monitor
        if monitor.metric in metrics:
            metrics[monitor.best_tag] = self._best_so_far(metrics[monitor.metric])
        metrics["epoch"] = float(self.state.epoch)
        if not self.stopping and not math.isfinite(val_metrics.get("val/loss", 0.0)):
            self.request_stop(
                f"val loss is {val_metrics['val/loss']} in epoch {self.state.epoch}: "
                "try a lower optimizer.lr or trainer.grad_clip",
                status=RunStatus.FAILED,
            )
        self.state.history.append(metrics)
        self.tensorboard.scalars(
            {EPOCH_TAG if tag == "epoch" else tag: value for tag, value in metrics.items()}, self.state.global_step
        )
        self.tensorboard.flush()  # a live TensorBoard sees each epoch at once
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(metrics[self.settings.monitor_metric])
            else:
                self.scheduler.step()
        self.callbacks.call("on_epoch_end", self, metrics)
        shown = (*self.task.shown("train"), *self.task.shown("val"))
        log.info(
            "epoch %d/%d  %s  (%.1fs)",
            self.state.epoch,
            self.max_epochs,
            "  ".join(f"{tag} {metrics[tag]:.4f}" for tag in shown if tag in metrics),
            metrics["time/epoch_seconds"],
        )

    def _best_so_far(self, value: float) -> float:
        """The best value of the task's monitored metric including this epoch's `value` (NaN never wins)."""
        best = self.state.best_monitored
        if best is None or math.isnan(best) or (value > best if self.task.monitor.mode == "max" else value < best):
            self.state.best_monitored = best = value
        return best

    # ----------------------------------------------------------------------------------------------
    # checkpoint state

    @property
    def _best_key(self) -> str:
        """The checkpoint's name for the best monitored value: `best_val_acc`, `best_val_r2`, ..."""
        return "best_" + self.task.monitor.metric.replace("/", "_")

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain tensors and Python values (loads with weights_only)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "trainer": {
                "epoch": self.state.epoch,
                "global_step": self.state.global_step,
                "batch_in_epoch": self.state.batch_in_epoch,
                self._best_key: self.state.best_monitored,
                "history": self.state.history,
                "running_sums": self.running_sums.cpu(),
                "world_size": self.distributed.world_size,
            },
            "callbacks": self.callbacks.state_dict(),
            "task": self.task.state_dict(),
            "data": self.data.state_dict(),
            "rng": capture_rng_state(),
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint["scheduler"] is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        trainer_state = checkpoint["trainer"]
        self.state = TrainState(
            epoch=trainer_state["epoch"],
            global_step=trainer_state["global_step"],
            batch_in_epoch=trainer_state["batch_in_epoch"],
            best_monitored=trainer_state.get(self._best_key),
            history=list(trainer_state["history"]),
        )
        if "running_sums" in trainer_state:
            self.running_sums.copy_(trainer_state["running_sums"])
        self.callbacks.load_state_dict(checkpoint["callbacks"])
        self.task.load_state_dict(checkpoint.get("task", {}))
        self.data.load_state_dict(checkpoint.get("data", {}))
        restore_rng_state(checkpoint["rng"])


def _global_grad_norm(model: nn.Module) -> Tensor:
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    if not norms:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack(norms))


def capture_rng_state() -> dict[str, Any]:
    """Every random generator the run uses, in a form `torch.load(weights_only=True)` accepts."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    random.setstate(state["python"])
