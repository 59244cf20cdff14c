"""How long a run is, in batches and optimizer steps: `max_epochs` or `max_steps`, `val_check_interval`,
`accumulate_grad_batches` and `limit_train_batches`, read in one place by the loop and the schedules.

An epoch is a pass over the training batches (after `limit_train_batches`); with `val_check_interval=N` it is
N optimizer steps (a validation period, at most one pass of the data), so validation, checkpoints, early stopping
and pruning follow the steps. `accumulate_grad_batches=K` makes each optimizer step K batches.
"""

from __future__ import annotations

import math

from trainscope.config.groups.trainer import TrainerConfig
from trainscope.engine.evaluation import limited_length


def batches_per_epoch(trainer: TrainerConfig, source_length: int) -> int:
    """Training batches in one epoch of a source of `source_length` batches."""
    batches = limited_length(range(source_length), trainer.limit_train_batches)
    interval = trainer.val_check_interval
    return batches if interval is None else min(batches, interval * trainer.accumulate_grad_batches)


def steps_per_epoch(trainer: TrainerConfig, source_length: int) -> int:
    """Optimizer steps in one epoch: a last, shorter accumulation at the epoch's end is a step too."""
    return math.ceil(batches_per_epoch(trainer, source_length) / trainer.accumulate_grad_batches)


def epochs_to_train(trainer: TrainerConfig, source_length: int) -> int:
    """`max_epochs`, or the epochs `max_steps` steps take (max_epochs is then ignored)."""
    if trainer.max_steps is None:
        return trainer.max_epochs
    return math.ceil(trainer.max_steps / steps_per_epoch(trainer, source_length))


def total_steps(trainer: TrainerConfig, source_length: int) -> int:
    """Optimizer steps of the whole run: what a schedule that decays to the run's end needs."""
    if trainer.max_steps is not None:
        return trainer.max_steps
    return steps_per_epoch(trainer, source_length) * trainer.max_epochs
