"""Sweeps through Hydra's launchers: `hydra/launcher=joblib` (processes on this machine) and `submitit_local`
(the code path of `submitit_slurm`, with local processes instead of SLURM jobs).

An Optuna sweep runs `n_jobs` worker jobs through the launcher, each pulling trials from the study; a grid
sweep hands its runs to the launcher as Hydra's own sweeper does. Each test runs what a user runs and checks
the study, the run directories and what the trials reported through the trial channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from optuna.trial import TrialState

from tests.helpers.cli import TINY
from tests.test_optuna_sweep import SEARCH, last_line, load_study, run_dirs
from trainscope.trial.attributes import HOST_ATTR, OWNER_ATTR, RUN_DIR_ATTR

LAUNCHERS = ["joblib", "submitit_local"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_optuna_sweep_runs_its_trials_in_worker_jobs_of_the_launcher(launcher: str, train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = train(
        "-m",
        *SEARCH,
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra/launcher={launcher}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=2",
        "trainer.max_epochs=2",
        "hydra/sweeper/pruner=none",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "optuna: 3 trials: 3 complete, 0 pruned, 0 failed" in last_line(result)

    trials = load_study(sweep_dir).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    dirs = run_dirs(sweep_dir)
    assert [d.name.split("_", 1)[0] for d in dirs] == ["0", "1", "2"]
    workers = {json.loads((sweep_dir / f"optuna_worker_{i}" / "worker.json").read_text())["pid"] for i in (0, 1)}
    owners = {t.system_attrs[OWNER_ATTR]["pid"] for t in trials}
    assert owners <= workers and len(workers) == 2  # trials ran in the launcher's worker jobs
    for number, trial in enumerate(trials):
        # every worker's run directories are findable from the study: host and run dir per trial
        assert trial.user_attrs[RUN_DIR_ATTR] == str(dirs[number]) and trial.user_attrs[HOST_ATTR]
        assert sorted(trial.intermediate_values) == [1, 2]  # the trial channel reached each job
        metrics = yaml.safe_load((dirs[number] / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["optuna"]["trial"] == number
        saved = yaml.safe_load((dirs[number] / ".hydra" / "overrides.yaml").read_text())
        assert not any("TRAINSCOPE_TRIAL" in line for line in saved)  # the channel stays out of the config


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_grid_sweep_runs_through_the_launcher(launcher: str, train: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "grid"
    result = train(
        "-m",
        *TINY,
        "trainer.max_epochs=1",
        "optimizer.lr=0.01,0.02",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra/launcher={launcher}",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "multirun: 2 succeeded, 0 failed" in result.stdout
    dirs = sorted(path for path in sweep_dir.iterdir() if path.is_dir() and path.name[0].isdigit())
    assert [d.name.split("_", 1)[0] for d in dirs] == ["0", "1"]
    pids = set()
    for run_dir, lr in zip(dirs, (0.01, 0.02), strict=True):
        assert yaml.safe_load((run_dir / "metrics.json").read_text())["status"] == "completed"
        assert yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["optimizer"]["lr"] == lr
        pids.add(int(next(run_dir.glob("events.out.tfevents.*")).name.split(".")[-2]))
    assert len(pids) == 2  # each run in a process of the launcher (the basic one runs both in the sweep's)


def test_the_slurm_launcher_config_composes_into_submitit_slurm(train: Any) -> None:
    result = train("hparams_search=synthetic", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra")
    assert result.returncode == 0, result.stderr[-3000:]
    launcher = yaml.safe_load(result.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["partition"], launcher["gpus_per_node"], launcher["array_parallelism"]) == ("gpu", 1, 256)
