"""Training health checks: callbacks that spot a sick run while it trains and say what to try.

Each check is its own callback (`conf/callbacks/health_*.yaml`), so any one can be turned off with
`callbacks.health_<name>=null`. A problem is reported three ways, at most once per epoch per check:

- a warning in the terminal (and `train.log`) naming the symptom and the fix to try;
- a TensorBoard text entry `health/<check>` with the same message;
- a TensorBoard scalar `health/<check>` from the first time the check fires on: at every epoch end 1 if it fired
  during that epoch, else 0; a check that stops the run writes its 1 at the failing step. A healthy run has no
  `health/*` chart, so the Scalars tab opens on the run's own curves.

Only `NonFiniteCheck` (gradients; a non-finite loss is stopped by the loop) and the divergence half of
`LearningRateCheck` stop the run (status `failed`); the others warn, because a rising loss can recover and the
user decides. All checks read values the loop has already synced (`step_metrics` on logging steps, epoch
metrics), so they add no GPU waits.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from typing import Any

from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView

log = logging.getLogger(__name__)


class HealthCheck(Callback):
    """Base class: `report` a problem once per epoch; the `health/<name>` scalar is written every epoch once the
    check has fired."""

    name = "check"

    def __init__(self) -> None:
        self._fired_this_epoch = False
        self._problem_ongoing = False
        self._has_fired = False
        self.reports = 0

    def report(self, trainer: TrainerView, message: str, advice: str, stops_run: bool = False) -> None:
        """Tell the user about a problem, unless this check already did in this epoch.

        A check that stops the run writes its scalar now, because no epoch end will follow.
        """
        if self._fired_this_epoch:
            return
        self._fired_this_epoch = self._has_fired = True
        self.reports += 1
        step = trainer.state.global_step
        log.warning("health/%s: %s. Try: %s", self.name, message, advice)
        writer = trainer.tensorboard.writer
        writer.add_text(f"health/{self.name}", f"**{message}** (step {step})\n\nTry: {advice}", step)
        if stops_run:
            writer.add_scalar(f"health/{self.name}", 1.0, step)
        trainer.tensorboard.flush()

    def fail(self, trainer: TrainerView, message: str, advice: str) -> None:
        """Report a problem that ends the run, and stop it as failed."""
        self.report(trainer, message, advice, stops_run=True)
        trainer.request_stop(f"{message}: try {advice}", status=RunStatus.FAILED)

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        self.check_epoch(trainer, metrics)
        fired, self._fired_this_epoch = self._fired_this_epoch, False
        self._has_fired = self._has_fired or fired
        if self._has_fired:
            trainer.tensorboard.writer.add_scalar(f"health/{self.name}", float(fired), trainer.state.global_step)

    def check_epoch(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        """Epoch-level test; override in checks that look at whole epochs."""

    def ongoing(self, problem: bool) -> bool:
        """For conditions that last several epochs: True only when `problem` starts, so the terminal gets
        one warning per episode; the `health/<check>` scalar stays 1 for every epoch it lasts."""
        started = problem and not self._problem_ongoing
        self._problem_ongoing = problem
        if problem and not started:
            self._fired_this_epoch = True  # no new warning, but the scalar stays 1 while it lasts
        return started

    def state_dict(self) -> dict[str, Any]:
        return {"reports": self.reports, "problem_ongoing": self._problem_ongoing}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reports = int(state.get("reports", 0))
        self._problem_ongoing = bool(state.get("problem_ongoing", False))


class NonFiniteCheck(HealthCheck):
    """NaN or Inf loss or gradient norm: reported at once; the run stops as failed (the last good checkpoint stays).

    One place decides each stop: a non-finite loss is stopped by the loop itself (so a run fails even with
    `callbacks=none`), and this check only reports it; a non-finite gradient norm, which the loop does not
    read, is stopped here. Gradient norms are checked on logging steps only (when the loop has read them
    anyway). With fp16 mixed precision an Inf gradient is normal (the grad scaler skips that step), so
    gradients are not checked then.
    """

    name = "nonfinite"
    ADVICE = "a lower optimizer.lr, trainer.grad_clip=1.0, or trainer.precision=32"

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        if step_metrics is None:
            return
        step = trainer.state.global_step
        loss = step_metrics.get("train/loss_step", 0.0)
        grad_norm = step_metrics.get("train/grad_norm", 0.0)
        if not math.isfinite(loss):
            self.report(trainer, f"train loss is {loss} at step {step}", self.ADVICE, stops_run=True)
        elif not math.isfinite(grad_norm) and not trainer.scaler.is_enabled():
            self.fail(trainer, f"gradient norm is {grad_norm} at step {step} (NaN/Inf gradients)", self.ADVICE)

    def on_train_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        self._report_loss(trainer, "train", metrics)

    def on_validation_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        self._report_loss(trainer, "val", metrics)

    def _report_loss(self, trainer: TrainerView, split: str, metrics: dict[str, float]) -> None:
        loss = metrics.get(f"{split}/loss", 0.0)
        if not math.isfinite(loss):
            message = f"{split} loss is {loss} in epoch {trainer.state.epoch + 1}"
            self.report(trainer, message, self.ADVICE, stops_run=True)


class GradientExplosionCheck(HealthCheck):
    """Warns when the gradient norm jumps far above its running median (an exploding gradient)."""

    name = "exploding_gradients"

    def __init__(self, factor: float = 10.0, window: int = 50, min_history: int = 5) -> None:
        super().__init__()
        if factor <= 1:
            raise ValueError(f"health_gradients.factor must be > 1, got {factor}")
        self.factor, self.min_history = factor, min_history
        self.history: deque[float] = deque(maxlen=window)

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        grad_norm = _finite_logged_value(step_metrics, "train/grad_norm")
        if grad_norm is None:
            return
        if len(self.history) >= self.min_history:
            median = statistics.median(self.history)
            if median > 0 and grad_norm > self.factor * median:
                self.report(
                    trainer,
                    f"gradient norm {grad_norm:.3g} at step {trainer.state.global_step} is "
                    f"{grad_norm / median:.0f}x its running median {median:.3g}",
                    "trainer.grad_clip=1.0, a lower optimizer.lr, or a warmup (scheduler=onecycle)",
                )
        self.history.append(grad_norm)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.history.clear()
        self.history.extend(state.get("history", []))


class TrendCheck(HealthCheck):
    """Base class of the checks that watch a loss over `patience` epochs (a rise must exceed `min_delta`)."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0) -> None:
        super().__init__()
        self.patience, self.min_delta = patience, min_delta


class LossTrendCheck(TrendCheck):
    """Warns when the epoch train loss has risen for `patience` epochs in a row."""

    name = "loss_rising"

    def check_epoch(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        losses = [epoch["train/loss"] for epoch in trainer.state.history if "train/loss" in epoch]
        if self.ongoing(_rising(losses, self.patience, self.min_delta)):
            recent = losses[-self.patience - 1 :]
            self.report(
                trainer,
                f"train/loss rose for {self.patience} epochs in a row ({recent[0]:.4g} -> {recent[-1]:.4g})",
                "a lower optimizer.lr, a decaying schedule (scheduler=cosine or plateau), or trainer.grad_clip=1.0",
            )


class OverfittingCheck(TrendCheck):
    """Warns when val loss rose for `patience` epochs while train loss fell: the model memorizes."""

    name = "overfitting"

    def check_epoch(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        history = [epoch for epoch in trainer.state.history if "val/loss" in epoch and "train/loss" in epoch]
        val_losses = [epoch["val/loss"] for epoch in history]
        train_losses = [-epoch["train/loss"] for epoch in history]  # "falling" = negated rising
        if self.ongoing(
            _rising(val_losses, self.patience, self.min_delta) and _rising(train_losses, self.patience, 0.0)
        ):
            recent = val_losses[-self.patience - 1 :]
            self.report(
                trainer,
                f"val/loss rose for {self.patience} epochs ({recent[0]:.4g} -> {recent[-1]:.4g}) "
                "while train/loss fell: the model is overfitting",
                "more data or augmentation (data.augment.*), optimizer.weight_decay, a smaller model, "
                "or early stopping on val/loss",
            )


class LearningRateCheck(HealthCheck):
    """A learning rate that is too high shows as a loss far above chance level.

    The reference is the task's baseline (`Task.baseline_loss`): the loss of a model that knows nothing, ln(classes)
    for a classifier that guesses uniformly, the loss of predicting the training mean for a regression. (A task
    without one, `task=custom`, is not judged.) Early in training (the
    first `early_epochs` epochs) a loss above `warn_factor` times that is a warning; at any time a loss
    above `diverge_factor` times that means training diverged and the run is stopped as failed. Both the
    losses of logging steps and every epoch's mean train loss are judged: an epoch shorter than
    `logging.log_every_n_steps` has no logging step, and its mean is then the only loss the loop reads.
    """

    name = "lr_too_high"

    def __init__(self, warn_factor: float = 3.0, diverge_factor: float = 100.0, early_epochs: int = 1) -> None:
        super().__init__()
        self.warn_factor, self.diverge_factor, self.early_epochs = warn_factor, diverge_factor, early_epochs

    def on_train_batch_end(self, trainer: TrainerView, step_metrics: dict[str, float] | None) -> None:
        loss = _finite_logged_value(step_metrics, "train/loss_step")
        if loss is not None:
            self._judge(trainer, loss, f"loss {loss:.3g} at step {trainer.state.global_step}")

    def on_train_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        loss = _finite_logged_value(metrics, "train/loss")
        if loss is not None:
            self._judge(trainer, loss, f"epoch {trainer.state.epoch + 1}'s mean train loss {loss:.3g}")

    def _judge(self, trainer: TrainerView, loss: float, what: str) -> None:
        chance = trainer.task.baseline_loss
        if not chance or not math.isfinite(chance) or chance <= 0:
            return
        lr = _lr_text(trainer)
        if loss > self.diverge_factor * chance:
            message = (
                f"training diverged: {what} is {loss / chance:.3g}x the chance-level "
                f"loss {chance:.3g}; the learning rate ({lr}) is far too high"
            )
            self.fail(trainer, message, "optimizer.lr 10-1000x lower, or trainer.grad_clip=1.0")
        elif trainer.state.epoch < self.early_epochs and loss > self.warn_factor * chance:
            self.report(
                trainer,
                f"{what} jumped above {self.warn_factor:g}x the chance-level loss "
                f"{chance:.3g}: the learning rate ({lr}) is probably too high",
                "optimizer.lr 3-10x lower, or a warmup (scheduler=onecycle)",
            )


def _finite_logged_value(metrics: dict[str, float] | None, tag: str) -> float | None:
    """`tag`'s value as the loop read it; None on steps that read nothing or when it is NaN/Inf (NonFiniteCheck's
    business)."""
    value = metrics.get(tag, float("nan")) if metrics is not None else float("nan")
    return value if math.isfinite(value) else None


def _rising(values: list[float], patience: int, min_delta: float) -> bool:
    """True when each of the last `patience` values exceeds the one before by more than `min_delta`."""
    if len(values) < patience + 1:
        return False
    recent = values[-patience - 1 :]
    return all(later > earlier + min_delta for earlier, later in zip(recent, recent[1:], strict=False))


def _lr_text(trainer: TrainerView) -> str:
    rates = sorted({group["lr"] for group in trainer.optimizer.param_groups})
    return "lr " + ", ".join(f"{rate:g}" for rate in rates)
