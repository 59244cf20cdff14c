"""Continue a run inside the run: load its newest good checkpoint and tell TensorBoard where to pick up.

`load_resume_checkpoint` loads the newest good checkpoint (falling back from a corrupt `last.pt` to `previous.pt`),
checks the config hash it was written with, and `purge_step` tells TensorBoard to drop events the killed segment
logged after that checkpoint. The command line was rewritten before Hydra started (`trainscope.cli.resume_arguments`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from trainscope.config.resumable import config_hash, resumable_keys_text
from trainscope.core.checkpoint_io import load_latest_checkpoint
from trainscope.core.errors import CheckpointError, ConfigError
from trainscope.core.run_dir import SAVED_CONFIG, RunStatus, check_run_dir, run_status
from trainscope.distributed.process_group import process_group

log = logging.getLogger(__name__)


def _check_world_size(run_dir: Path, saved: int | None) -> None:
    """A run continues on as many processes as it trained on: another count changes the samples per step and
    which process reads which sample, so the continued run would no longer be the run it resumes."""
    current = process_group().world_size
    if saved is not None and saved != current:
        raise ConfigError(
            f"resume: {run_dir} trained on {saved} processes, this job has {current}; resume it on {saved} "
            f"(trainer.devices={saved}, or torchrun with {saved} processes in all), or start a new run"
        )


def load_resume_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """The checkpoint `cfg.resume` continues from, checked against the current config.

    Loaded to the CPU (RNG states must stay there); `Trainer.load_state_dict` moves the rest.
    """
    run_dir = Path(str(cfg.resume))
    check_run_dir(run_dir, "resume", need_checkpoint=True)
    checkpoint, path = load_latest_checkpoint(run_dir)
    saved_hash = checkpoint.get("config_hash")
    if saved_hash is not None and saved_hash != config_hash(cfg):
        raise ConfigError(
            f"resume: {path} was written with a different config than {run_dir / SAVED_CONFIG} "
            f"now gives (only {resumable_keys_text()} may change); start a new run"
        )
    state = checkpoint.get("trainer")
    if not isinstance(state, dict) or not all(
        isinstance(state.get(key), int) and not isinstance(state.get(key), bool)
        for key in ("epoch", "batch_in_epoch", "global_step")
    ):
        raise CheckpointError(f"resume: {path} holds no trainer state to continue from; start a new run")
    _check_world_size(run_dir, state.get("world_size"))  # absent in checkpoints older than the check
    max_steps = cfg.trainer.get("max_steps")
    if max_steps is not None and state["global_step"] >= int(max_steps):
        raise ConfigError(
            f"resume: {run_dir} already trained {state['global_step']} steps (trainer.max_steps={max_steps}); "
            "it is complete"
        )
    max_epochs = int(cfg.trainer.max_epochs)
    # An interrupted run that trained every epoch was cut in its test phase: resuming it runs that phase.
    if max_steps is None and state["epoch"] >= max_epochs and run_status(run_dir) != RunStatus.INTERRUPTED:
        raise ConfigError(
            f"resume: {run_dir} already trained {state['epoch']} epochs (trainer.max_epochs={max_epochs}); "
            f"pass trainer.max_epochs={state['epoch'] + 1} or more to train it longer"
        )
    log.info(
        "resuming %s from %s: epoch %d, batch %d, step %d",
        run_dir,
        path.name,
        state["epoch"] + 1,
        state["batch_in_epoch"],
        state["global_step"],
    )
    return checkpoint


def purge_step(checkpoint: dict[str, Any] | None) -> int:
    """First step TensorBoard must forget: anything a killed segment logged after its checkpoint.

    Points *at* the checkpoint's step were logged and flushed before it was written (the checkpoint callback
    runs after every other callback and flushes first), so they stay; the resumed run logs from the next step
    on. A kill before the new checkpoint's rename leaves the old one, whose purge drops the half-logged step
    (a mid-epoch checkpoint is never written at an epoch's last step, whose epoch-end points come after it).
    A fresh run gets 0: its writer then opens with a session-start marker too, because TensorBoard's Python
    loader (`--load_fast=false`) treats the first marker of a run as the initial start and purges only on
    later ones.
    """
    if checkpoint is None:
        return 0
    return int(checkpoint["trainer"]["global_step"]) + 1
