"""How the processes of one torchrun job become one run: one run directory, chosen by rank 0.

Every rank runs `train.py` and Hydra itself, and Hydra's `${now:...}` can differ by a second between ranks (and
`unique_dir` gives each caller its own directory). So rank 0 alone lets Hydra choose; in its task it sends its
final command line and run directory to the others, which wait for them before starting Hydra and then run in
that directory without writing `.hydra/` again. Ranks other than 0 log only warnings and errors, tagged with their
rank, to the terminal; `train.log` is rank 0's.

When torchrun restarts the group (`--max-restarts`), the restarted rank 0 resumes the run the first attempt
started: the first attempt leaves the run directory's path in the agent's log folder for this job (where torchrun
also keeps the workers' error files), and a restart finds it there.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from trainscope.config.overrides import hydra_quote
from trainscope.core.run_dir import CHECKPOINT_DIR, LAST, PREVIOUS
from trainscope.distributed.environment import in_torchrun_job

if TYPE_CHECKING:
    from trainscope.distributed.process_group import ProcessGroup

log = logging.getLogger(__name__)

RUN_DIR_NOTE = "trainscope-run-dir"
"""The file in torchrun's per-job log folder that names the job's run directory."""


def join() -> ProcessGroup:
    """Join the job's process group (torch loads here, only in a torchrun job)."""
    from trainscope.distributed.process_group import start

    return start()


def leave() -> None:
    """Leave the process group cleanly at exit (nothing to do outside a torchrun job)."""
    if in_torchrun_job():
        from trainscope.distributed.process_group import stop

        stop()


def _run_dir_note() -> Path | None:
    """`<log_dir>/<run_id>/trainscope-run-dir`: torchrun gives each worker `<log_dir>/<run_id>/attempt_<n>/<local
    rank>/error.json`, a folder that lives as long as the job and is the same for every attempt on a node."""
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE", "")
    return Path(error_file).parents[2] / RUN_DIR_NOTE if error_file else None


def restart_arguments(arguments: list[str]) -> list[str]:
    """On a torchrun restart, `resume=<the first attempt's run dir>` added to `arguments`, if it has a checkpoint."""
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0:
        return arguments
    note = _run_dir_note()
    if note is None or not note.is_file():
        log.warning("torchrun restarted this job, but its first run directory is unknown: starting a new run")
        return arguments
    run_dir = Path(note.read_text().strip())
    checkpoints = run_dir / CHECKPOINT_DIR
    if not (checkpoints / LAST).is_file() and not (checkpoints / PREVIOUS).is_file():
        log.warning("torchrun restarted this job before %s had a checkpoint: starting a new run", run_dir)
        return arguments
    kept = [argument for argument in arguments if not argument.startswith("resume=")]
    return [*kept, f"resume={run_dir}"]


def announce_run(group: ProcessGroup, arguments: list[str], run_dir: Path) -> None:
    """Rank 0, inside its task: send the command line and run directory Hydra settled on to the other ranks."""
    group.broadcast_object((arguments, str(run_dir)))
    _remember_run_dir(group, run_dir)


def follow_rank_zero(group: ProcessGroup) -> list[str]:
    """Ranks > 0, before Hydra: rank 0's command line, pointed at rank 0's run directory, leaving `.hydra/` alone."""
    arguments, run_dir = group.broadcast_object(None)
    _remember_run_dir(group, Path(run_dir))
    kept = [argument for argument in arguments if not argument.startswith(("hydra.run.dir=", "hydra.output_subdir="))]
    return [*kept, f"hydra.run.dir={hydra_quote(run_dir)}", "hydra.output_subdir=null"]


def _remember_run_dir(group: ProcessGroup, run_dir: Path) -> None:
    """One process per node notes the run directory, so a restart finds it whichever node then hosts rank 0."""
    note = _run_dir_note()
    if group.local_rank == 0 and note is not None and note.parent.is_dir():
        note.write_text(f"{run_dir.resolve()}\n")


def log_as_rank(rank: int) -> None:
    """Ranks > 0: warnings and errors only, on the terminal, tagged `[rank N]`; `train.log` is rank 0's."""
    root = logging.getLogger()
    formatter = logging.Formatter(f"[rank {rank}][%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
        else:
            handler.setLevel(logging.WARNING)
            handler.setFormatter(formatter)
