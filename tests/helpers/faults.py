"""Faults and one-sided decisions injected into real training processes, for tests of what survives them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus

if TYPE_CHECKING:
    from trainscope.core.view import TrainerView
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


class HoldAfterFirstEpoch(Callback):
    """Keeps a run training (held at the end of its first epoch) until the file `release` exists, or `seconds`
    passed: a run that is surely still going while the test does something else, however loaded the machine."""

    def __init__(self, release: str, seconds: float = 240) -> None:
        self.release, self.seconds = Path(release), seconds

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        if trainer.state.epoch != 1:
            return
        deadline = time.monotonic() + self.seconds
        while not self.release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
