"""Whether this process is one worker of a torchrun job: read from the environment torchrun's agent sets.

One rule for every layer (the CLI asks before torch loads, the engine before it joins the group), so a
stray `RANK` in a user's shell never makes a single run behave like rank 1 of a job.
"""

from __future__ import annotations

import os

LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun's elastic agent sets for every worker; `init_process_group("env://")` reads it."""


def in_torchrun_job() -> bool:
    """Started by torchrun (or `trainer.devices=N`, which runs torch's elastic agent)."""
    return all(name in os.environ for name in LAUNCH_ENV)


def torchrun_rank() -> int:
    """This process's global rank in its torchrun job; 0 outside one."""
    return int(os.environ["RANK"]) if in_torchrun_job() else 0
