"""Weight and gradient histograms of every layer, every few epochs.

Histograms cost a device-to-host copy of every parameter, so they are written every `every_n_epochs`
epochs and on the last planned epoch, never per step. Gradients are those of the epoch's last training
batch: the loop clears them only at the start of the next step, so they are still there at epoch end.
"""

from __future__ import annotations

from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView


class WeightHistograms(Callback):
    """`weights/<parameter>` and `gradients/<parameter>` histograms at the end of every `every_n_epochs` epochs."""

    def __init__(self, every_n_epochs: int = 5, gradients: bool = True) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"logging.histograms_every_n_epochs must be >= 1 here, got {every_n_epochs}")
        self.every_n_epochs, self.gradients = every_n_epochs, gradients

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        epoch = trainer.state.epoch  # already counts the finished epoch
        if epoch % self.every_n_epochs and epoch != trainer.max_epochs:
            return
        writer, step = trainer.tensorboard.writer, trainer.state.global_step
        for name, parameter in trainer.model.named_parameters():
            writer.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), step)
            if self.gradients and parameter.grad is not None:
                writer.add_histogram(f"gradients/{name}", parameter.grad.detach().float().cpu(), step)
        trainer.tensorboard.flush()
