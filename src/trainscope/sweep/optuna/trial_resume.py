"""An interrupted trial continues from its checkpoint: its retry resumes the interrupted run in place.

When a sweep is stopped (SIGTERM from a scheduler's preemption, Ctrl-C, a killed process), the running
trial's run saves a checkpoint and the trial is recorded FAIL as interrupted (not counted in `n_trials`);
Optuna queues its configuration again as a new trial, whose system attributes name the interrupted one
(`failed_trial`) and whose user attributes carry the interrupted run's `run_dir`. When a sweep claims that
retry and the run directory lies in its own sweep directory with a checkpoint, the job resumes it there
(`resume=<run_dir>` and `hydra.sweep.subdir=<its name>`, the path `python train.py resume=` takes)
instead of training from scratch; the directory keeps the interrupted trial's number in its name. A run
in another machine's sweep directory, one that never reached its first checkpoint, or an app without a
`resume` key starts again from scratch.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from optuna.trial import FrozenTrial

from trainscope.config.overrides import hydra_quote
from trainscope.core.run_dir import RunStatus, has_checkpoint, run_status
from trainscope.trial.attributes import RETRY_OF_ATTR, RUN_DIR_ATTR


def run_to_resume(trial: FrozenTrial, sweep_dir: Path, config: DictConfig) -> Path | None:
    """The interrupted run that the retry `trial` continues from its checkpoint; None to start afresh."""
    recorded = trial.user_attrs.get(RUN_DIR_ATTR)
    if RETRY_OF_ATTR not in trial.system_attrs or not recorded or "resume" not in config:
        return None
    run_dir = Path(str(recorded))
    if run_dir.parent.resolve() != sweep_dir.resolve() or not has_checkpoint(run_dir):
        return None
    if run_status(run_dir) not in (None, RunStatus.INTERRUPTED):  # None: killed before it wrote metrics.json
        return None  # it ended after all (its sweep died while recording it): never write into it again
    return run_dir


def resume_overrides(run_dir: Path) -> list[str]:
    """The job overrides that continue `run_dir` in place: its own subdirectory, and `resume=` it."""
    return [f"hydra.sweep.subdir={hydra_quote(run_dir.name)}", f"resume={hydra_quote(run_dir)}"]
