"""`trainer.devices=N`: one run trained by N processes on this machine, without typing `torchrun`.

This process keeps the run directory Hydra gave it and asks torch's elastic agent (the engine of `torchrun`) to
start `python -m trainscope.cli.train` N times with the same overrides in that directory. The workers form the
process group and train; this process waits, then hands back the run's `metrics.json` (`trainscope.session.run`
reports it as it reports a single-process run), so a sweep trial (`trainer.devices=N` in each trial) records a
distributed run like any other. SIGTERM to this process reaches the workers through the agent: they stop after
the current step, rank 0 writes one checkpoint, and this process exits 143 like a single-process run.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from trainscope.config.overrides import hydra_quote
from trainscope.core.errors import TrainingFailed
from trainscope.core.interruption import RunInterrupted
from trainscope.core.run_dir import RunStatus, read_metrics

log = logging.getLogger(__name__)


def launch(nprocs: int, command: Sequence[str]) -> None:
    """Run `command` (a Python argv after the interpreter) in `nprocs` processes on this machine, as
    `torchrun --standalone --nproc_per_node=<nprocs>` would: torch's elastic agent starts, watches and stops them.

    Raises torch's `ChildFailedError` when a worker fails and `SignalException` when this process gets SIGTERM
    (after the agent has passed it to the workers and waited for them).
    """
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nprocs,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # a free port, like torchrun --standalone
        max_restarts=0,
        monitor_interval=0.5,
    )
    elastic_launch(config, sys.executable)(*command)


def run_on_devices(run_dir: Path, devices: int, overrides: list[str]) -> dict[str, Any]:
    """Train the run `overrides` describe in `devices` processes, in `run_dir`; returns its metrics.json.

    Raises `RunInterrupted` and `TrainingFailed` as a single-process run does.
    """
    command = [
        "-m",
        "trainscope.cli.train",
        *overrides,
        f"hydra.run.dir={hydra_quote(run_dir)}",
        "hydra.output_subdir=null",  # this process already wrote .hydra/
    ]
    log.info("starting %d training processes (torch.distributed elastic agent) in %s", devices, run_dir)
    try:
        launch(devices, command)
    except SignalException as signalled:  # the agent has stopped the workers: they saved a checkpoint
        raise RunInterrupted(run_dir, int(signalled.sigval), _metrics(run_dir).get("global_step", 0)) from None
    except ChildFailedError as failure:
        metrics = _metrics(run_dir)
        exit_code = failure.get_first_failure()[1].exitcode
        if metrics.get("status") == RunStatus.INTERRUPTED and exit_code > 128:
            raise RunInterrupted(run_dir, exit_code - 128, metrics.get("global_step", 0)) from None
        reason = metrics.get("reason") or f"a training process exited with code {exit_code}"
        raise TrainingFailed(f"training failed: {reason}") from None
    return read_metrics(run_dir)


def _metrics(run_dir: Path) -> dict[str, Any]:
    """The run's metrics.json, or nothing when no worker got as far as writing it."""
    try:
        return read_metrics(run_dir)
    except (OSError, ValueError):
        return {}
