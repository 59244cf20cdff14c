"""Faults and one-sided decisions injected into real training processes, for tests of what survives them."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus

if TYPE_CHECKING:
    from trainscope.engine.trainer import Trainer


class KillRankAtStep(Callback):
    """SIGKILLs its own process after optimizer step `step` when it is rank `rank`, in torchrun's first attempt
    only (`TORCHELASTIC_RESTART_COUNT` 0): a worker dying mid-epoch at a known point, with no chance to clean up."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank = rank
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, step_metrics: dict[str, float] | None) -> None:
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if first_attempt and os.environ.get("RANK") == str(self.rank) and trainer.state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class StopOnRankAtStep(Callback):
    """Requests a stop on rank `rank` alone after step `step`, as the Optuna pruning callback does on rank 0."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank = rank
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, step_metrics: dict[str, float] | None) -> None:
        if os.environ.get("RANK") == str(self.rank) and trainer.state.global_step == self.step:
            trainer.request_stop(f"rank {self.rank} decided at step {self.step}", status=RunStatus.PRUNED)
