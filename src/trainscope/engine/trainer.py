"""The training loop: one obvious path from the first batch to metrics.json.

Losses and accuracies accumulate on the device and are read only every `log_every_n_steps` steps and at
epoch end, so the loop never waits on the GPU in between. Callbacks watch through the hooks in
`trainscope.engine.callbacks`; they stop the run only through `request_stop`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from trainscope.data import BatchSource, DataModule
from trainscope.engine.callbacks import CallbackList
from trainscope.engine.resume import config_hash
from trainscope.errors import ConfigError
from trainscope.monitor.progress import EpochProgress
from trainscope.monitor.tensorboard import TensorBoardMonitor

log = logging.getLogger(__name__)

STOP_STATUSES = ("stopped_early", "pruned", "failed", "interrupted")


@dataclass
class TrainState:
    """Where the run is: what a checkpoint needs to continue exactly."""

    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained (mid-epoch checkpoints)
    best_val_acc: float = float("-inf")
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains `model` on `data`, logging to `monitor` and calling `callbacks` at each hook."""

    def __init__(
        self,
        cfg: DictConfig,
        model: nn.Module,
        data: DataModule,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scheduler_interval: str,
        callbacks: CallbackList,
        monitor: TensorBoardMonitor,
        run_dir: Path,
        device: torch.device,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.data = data
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.callbacks = callbacks
        self.monitor = monitor
        self.run_dir = run_dir
        self.device = device
        self.state = TrainState()
        # Resolving and hashing the config costs tens of ms: once per run, not at every checkpoint.
        self.config_hash = config_hash(cfg)
        self.status = "running"
        self.stop_reason = ""
        self.max_epochs = int(cfg.trainer.max_epochs)
        self.log_every = int(cfg.logging.log_every_n_steps)
        self.autocast_dtype = _autocast_dtype(str(cfg.trainer.precision), device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.autocast_dtype == torch.float16)
        self.grad_clip = cfg.trainer.grad_clip
        self._last_grad_norm: Tensor | float = float("nan")
        self.progress = EpochProgress(enabled=bool(cfg.logging.progress_bar))
        self.running_sums = torch.zeros(2, 3, device=device)  # this epoch's and this log window's sums
        self._batch_counts: dict[int, Tensor] = {}
        self.channels_last = bool(cfg.trainer.get("channels_last", False))
        # The compiled module shares the model's parameters; `self.model` stays the plain module, so
        # checkpoints and callbacks see its state_dict without torch.compile's `_orig_mod.` prefix.
        self.forward = compiled(model, cfg.trainer.get("compile", False))

    # ----------------------------------------------------------------------------------------------
    # control

    def request_stop(self, reason: str, status: str) -> None:
        """The one signal callbacks send into the loop: stop after the current step."""
        if status not in STOP_STATUSES:
            raise ValueError(f"status must be one of {STOP_STATUSES}, got {status!r}")
        if self.status in STOP_STATUSES:
            return  # the first reason wins: a NaN that triggers early stopping is still a failure
        self.status, self.stop_reason = status, reason
        log.warning("stopping: %s", reason)

    @property
    def stopping(self) -> bool:
        return self.status in STOP_STATUSES

    # ----------------------------------------------------------------------------------------------
    # the loop

    def fit(self) -> None:
        """Train until max_epochs or a stop request; `self.status` says how it ended."""
        self.callbacks.call("on_fit_start", self)
        try:
            while self.state.epoch < self.max_epochs and not self.stopping:
                train_metrics = self._train_epoch()
                if self.status in ("failed", "interrupted"):
                    break  # an interrupted epoch is finished by the resumed run, not validated now
                val_metrics = self.evaluate(self.data.val, "val", self.cfg.trainer.limit_val_batches)
                self.callbacks.call("on_validation_end", self, val_metrics)
                self._end_epoch(train_metrics, val_metrics)
            if not self.stopping:
                self.status = "completed"
        except BaseException as error:
            if not self.stopping:
                self.status, self.stop_reason = "failed", f"{type(error).__name__}: {error}"
            raise
        finally:
            self.progress.close()
            self.callbacks.call("on_fit_end", self)
            self.monitor.flush()

    def _train_epoch(self) -> dict[str, float]:
        source = self.data.train
        epoch = self.state.epoch
        total = _limited_length(source, self.cfg.trainer.limit_train_batches)
        source.set_epoch(epoch)
        self.model.train()
        self.callbacks.call("on_train_epoch_start", self)
        self.progress.start_epoch(epoch, self.max_epochs, total, self.state.batch_in_epoch)

        if self.state.batch_in_epoch == 0:
            self.running_sums.zero_()
        # Views into `running_sums` (loss * n, correct, n): a mid-epoch checkpoint keeps the partial epoch.
        epoch_sums, window_sums = self.running_sums.unbind(0)
        window_start = time.perf_counter()
        epoch_start = time.perf_counter()
        for inputs, targets in source.iter_from(self.state.batch_in_epoch):
            if self.state.batch_in_epoch >= total:
                break
            self.running_sums += self._train_step(inputs, targets)  # both rows: epoch and window
            self.state.global_step += 1
            self.state.batch_in_epoch += 1

            step_metrics = None
            if self.state.global_step % self.log_every == 0:
                step_metrics = self._read_window(window_sums, time.perf_counter() - window_start)
                window_sums.zero_()
                window_start = time.perf_counter()
            self.progress.advance(self.state.batch_in_epoch, step_metrics)
            self.callbacks.call("on_train_batch_end", self, step_metrics)
            if self.stopping:
                break

        self.progress.close()
        if self.status == "interrupted":
            return {}
        loss_sum, correct, count = epoch_sums.tolist()
        metrics = {
            "train/loss": loss_sum / max(count, 1),
            "train/acc": correct / max(count, 1),
            "time/epoch_seconds": time.perf_counter() - epoch_start,
        }
        if not math.isfinite(metrics["train/loss"]):
            self.request_stop(
                f"train loss is {metrics['train/loss']} in epoch {epoch + 1}: "
                "try a lower optimizer.lr or trainer.grad_clip",
                status="failed",
            )
        self.callbacks.call("on_train_epoch_end", self, metrics)
        return metrics

    def _train_step(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """One optimizer step; returns (loss * n, correct, n) on the device, without syncing."""
        with self._autocast():
            logits = self.forward(self._to_memory_format(inputs))
            loss = F.cross_entropy(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            self._last_grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), float(self.grad_clip))
        elif (self.state.global_step + 1) % self.log_every == 0:
            self._last_grad_norm = _global_grad_norm(self.model)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        count = self._count(targets.shape[0])
        correct = (logits.detach().argmax(dim=1) == targets).sum()
        return torch.stack((loss.detach().float() * count, correct.float(), count))

    def _count(self, batch_size: int) -> Tensor:
        """`batch_size` as a device scalar, made once per size: a new tensor every step is a host-to-device copy."""
        count = self._batch_counts.get(batch_size)
        if count is None:
            count = self._batch_counts[batch_size] = torch.tensor(float(batch_size), device=self.device)
        return count

    def _to_memory_format(self, inputs: Tensor) -> Tensor:
        """Image batches in channels_last when `trainer.channels_last` is on (the model's weights are too)."""
        if self.channels_last and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _read_window(self, window_sums: Tensor, seconds: float) -> dict[str, float]:
        """The one place step metrics are read from the device: every `log_every_n_steps` steps."""
        loss_sum, correct, count = window_sums.tolist()
        metrics = {
            "train/loss_step": loss_sum / max(count, 1),
            "train/acc_step": correct / max(count, 1),
            "train/grad_norm": float(self._last_grad_norm),
            "train/samples_per_sec": count / max(seconds, 1e-9),
            **self.learning_rates(),
        }
        self.monitor.scalars(metrics, self.state.global_step)
        if not math.isfinite(metrics["train/loss_step"]):
            self.request_stop(
                f"train loss is {metrics['train/loss_step']} at step {self.state.global_step}: "
                "try a lower optimizer.lr or trainer.grad_clip",
                status="failed",
            )
        return metrics

    def learning_rates(self) -> dict[str, float]:
        return per_group_tags("lr", [float(group["lr"]) for group in self.optimizer.param_groups])

    @torch.no_grad()
    def evaluate(self, source: BatchSource, prefix: str, limit: int | float | None = None) -> dict[str, float]:
        """Mean loss and accuracy of the model on `source`, as `<prefix>/loss` and `<prefix>/acc`."""
        self.model.eval()
        total = _limited_length(source, limit)
        want_batches = prefix == "val" and self.callbacks.wants("on_validation_batch_end")
        sums = torch.zeros(3, device=self.device)
        for index, (inputs, targets) in enumerate(source):
            if index >= total:
                break
            with self._autocast():
                logits = self.forward(self._to_memory_format(inputs))
            loss = F.cross_entropy(logits.float(), targets, reduction="sum")
            correct = (logits.argmax(dim=1) == targets).sum()
            sums += torch.stack((loss, correct.float(), self._count(targets.shape[0])))
            if want_batches:
                self.callbacks.call("on_validation_batch_end", self, inputs, targets, logits)
        loss_sum, correct, count = sums.tolist()
        return {f"{prefix}/loss": loss_sum / max(count, 1), f"{prefix}/acc": correct / max(count, 1)}

    def _end_epoch(self, train_metrics: dict[str, float], val_metrics: dict[str, float]) -> None:
        self.state.epoch += 1
        self.state.batch_in_epoch = 0
        if val_metrics["val/acc"] > self.state.best_val_acc:
            self.state.best_val_acc = val_metrics["val/acc"]
        metrics = {
            **train_metrics,
            **val_metrics,
            "val/acc_best": self.state.best_val_acc,
            "epoch": float(self.state.epoch),
        }
        if not self.stopping and not math.isfinite(val_metrics["val/loss"]):
            self.request_stop(f"val loss is {val_metrics['val/loss']}", status="failed")
        self.state.history.append(metrics)
        self.monitor.scalars(metrics, self.state.global_step)
        self.monitor.flush()  # a live TensorBoard sees each epoch at once
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(metrics[self.cfg.monitor.metric])
            else:
                self.scheduler.step()
        self.callbacks.call("on_epoch_end", self, metrics)
        log.info(
            "epoch %d/%d  train/loss %.4f  train/acc %.4f  val/loss %.4f  val/acc %.4f  (%.1fs)",
            self.state.epoch,
            self.max_epochs,
            metrics["train/loss"],
            metrics["train/acc"],
            metrics["val/loss"],
            metrics["val/acc"],
            metrics["time/epoch_seconds"],
        )

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # ----------------------------------------------------------------------------------------------
    # checkpoint state

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
                "best_val_acc": self.state.best_val_acc,
                "history": self.state.history,
                "running_sums": self.running_sums.cpu(),
            },
            "callbacks": self.callbacks.state_dict(),
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
            best_val_acc=trainer_state["best_val_acc"],
            history=list(trainer_state["history"]),
        )
        if "running_sums" in trainer_state:
            self.running_sums.copy_(trainer_state["running_sums"])
        self.callbacks.load_state_dict(checkpoint["callbacks"])
        restore_rng_state(checkpoint["rng"])


def per_group_tags(base: str, values: list[Any]) -> dict[str, Any]:
    """`{base: value}` for one optimizer param group, `{base/group<i>: value, ...}` for several."""
    if len(values) == 1:
        return {base: values[0]}
    return {f"{base}/group{index}": value for index, value in enumerate(values)}


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocasts on CPU and CUDA; fp16 mixed precision only on CUDA (on CPU it runs in fp32)."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "16":
        if device.type != "cuda":
            log.warning("trainer.precision=16 needs CUDA; training in 32-bit on %s", device)
            return None
        return torch.float16
    return None


def compiled(model: nn.Module, setting: bool | str | None) -> nn.Module:
    """`trainer.compile`: false = eager, true = torch.compile with inductor, a string = that dynamo backend."""
    if setting is None or setting is False:
        return model
    if setting is True:
        return torch.compile(model)
    if setting not in torch.compiler.list_backends(exclude_tags=()):
        raise ConfigError(
            f"trainer.compile must be true, false or a torch.compile backend (inductor, aot_eager, eager, "
            f"cudagraphs, ...), got {setting!r}"
        )
    return torch.compile(model, backend=str(setting))


def _limited_length(source: BatchSource, limit: int | float | None) -> int:
    """Batches to run per epoch: all, an int count, or a float fraction (as Lightning's limit_*_batches)."""
    if limit is None:
        return len(source)
    if isinstance(limit, float) and limit <= 1.0:
        return max(1, int(len(source) * limit))
    return min(len(source), int(limit))


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
