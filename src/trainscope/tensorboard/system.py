"""Hardware scalars the loop does not log itself: CUDA peak memory per epoch."""

from __future__ import annotations

import torch

from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView


class CudaMemoryLogger(Callback):
    """`memory/cuda_peak_mb` (peak allocated during the epoch, validation included) and
    `memory/cuda_reserved_mb`; does nothing on CPU."""

    def on_train_epoch_start(self, trainer: TrainerView) -> None:
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        if trainer.device.type != "cuda":
            return
        step, megabyte = trainer.state.global_step, 2**20
        trainer.tensorboard.scalar(
            "memory/cuda_peak_mb", torch.cuda.max_memory_allocated(trainer.device) / megabyte, step
        )
        trainer.tensorboard.scalar(
            "memory/cuda_reserved_mb", torch.cuda.memory_reserved(trainer.device) / megabyte, step
        )
