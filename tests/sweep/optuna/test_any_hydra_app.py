"""`hydra/sweeper=trainscope_optuna` with plain Hydra apps that know nothing of trainscope but its trial API.

Each app (tests/any_app/) reports a rising curve to `trainscope.sweep.trial()` and raises
`optuna.TrialPruned` when told to; the sweep uses median pruning and sqlite storage and runs under
`python -W error`. The apps' configs are the kind the old injected `++callbacks.optuna_pruning` and
`optuna_trial` broke: a dataclass schema, a list `callbacks`, Lightning-style `callbacks`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.helpers.cli import REPO_ROOT

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s

APPS = REPO_ROOT / "tests" / "any_app"
VALUES = (0.9, 0.1, 0.5, 0.3, 0.7)
STEPS = 5


def sweep(app: str, sweep_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            app,
            "--multirun",
            "hydra/sweeper=trainscope_optuna",
            f"hydra.sweep.dir={sweep_dir}",
            f"hydra.sweeper.storage=sqlite:///{sweep_dir / 'study.db'}",
            "hydra.sweeper.study_name=any",
            *args,
        ],
        cwd=APPS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def load_study(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="any", storage=f"sqlite:///{sweep_dir / 'study.db'}")


def expected_states(trials: list[optuna.trial.FrozenTrial]) -> list[TrialState]:
    """MedianPruner (1 startup trial, no warm-up) on curves x·step/STEPS: a trial stops at its first step
    exactly when its x is below the median x of the trials completed before it."""
    states, completed = [], []
    for trial in sorted(trials, key=lambda t: t.number):
        x = trial.params["x"]
        if completed and x < statistics.median(completed):
            states.append(TrialState.PRUNED)
        else:
            states.append(TrialState.COMPLETE)
            completed.append(x)
    return states


@pytest.mark.parametrize(
    "app, config_keys",
    [
        ("dict_app.py", {"x", "steps", "sizes"}),
        ("dataclass_app.py", {"x", "steps"}),
        ("list_callbacks_app.py", {"x", "steps", "callbacks"}),
        ("lightning_style_app.py", {"x", "steps", "callbacks"}),
    ],
)
def test_any_app_is_pruned_through_the_trial_api(app: str, config_keys: set[str], tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = sweep(
        app,
        sweep_dir,
        "hydra.sweep.subdir=${hydra.job.override_dirname}",  # run dirs named by the overrides alone
        "hydra.sweeper.direction=maximize",
        f"hydra.sweeper.n_trials={len(VALUES)}",
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.seed=3",  # grid order 0.3, 0.7, 0.1, 0.9, 0.5: 0.1 and 0.5 are pruned
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        f"x=choice({','.join(map(str, VALUES))})",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    trials = load_study(sweep_dir).trials
    assert sorted(t.params["x"] for t in trials) == sorted(VALUES)
    states = [t.state for t in sorted(trials, key=lambda t: t.number)]
    assert states == expected_states(trials)
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for trial in trials:
        steps = sorted(trial.intermediate_values)
        assert steps == ([1] if trial.state == TrialState.PRUNED else list(range(1, STEPS + 1)))

    run_dirs = sorted(path.name for path in sweep_dir.iterdir() if (path / ".hydra").is_dir())  # not report/ (issue 26)
    assert run_dirs == sorted(f"x={x}" for x in VALUES)  # nothing but the sampled value in the names
    for name in run_dirs:
        config = yaml.safe_load((sweep_dir / name / ".hydra" / "config.yaml").read_text())
        assert set(config) == config_keys  # nothing injected into the app's config


def test_a_search_key_no_trial_can_apply_is_one_error_before_the_first_trial(tmp_path: Path) -> None:
    """Every trial failed on it before, and the sweep exited 0 when n_trials <= max_failures."""
    sweep_dir = tmp_path / "sweep"
    result = sweep(
        "dict_app.py",
        sweep_dir,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.max_failures=3",
        "sizes.1=choice(32,64)",  # `sizes` has one entry: no trial's config can be composed
    )
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith(
        "error: no trial could run: a search key does not fit the app's config ("
    ), result.stderr
    assert "sizes.1" in error_lines[0] and "Traceback" not in result.stdout + result.stderr
    assert load_study(sweep_dir).trials == [], "no trial was started"


def test_the_documented_example_app_prunes(tmp_path: Path) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    app = REPO_ROOT / "examples" / "optuna_pruning" / "app.py"
    args = [f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=8"]
    result = subprocess.run(
        [sys.executable, "-W", "error", str(app), "-m", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna" and results["counts"]["pruned"] > 0
    assert results["counts"]["complete"] + results["counts"]["pruned"] == 8
    alone = subprocess.run(  # in tmp_path: Hydra's default outputs/<date>/<time>/ lands there, not in the checkout
        [sys.executable, "-W", "error", str(app), "lr=0.3"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert alone.returncode == 0, alone.stderr  # outside a sweep trial() is None and the app just runs
    assert list(tmp_path.glob("outputs/*/*/.hydra")), "the single run wrote its directory under tmp_path"


def test_a_schema_app_runs_in_two_worker_processes_under_w_error(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = sweep(
        "dataclass_app.py",
        sweep_dir,
        "hydra.sweep.subdir=${hydra.job.override_dirname}",
        "hydra.sweeper.n_jobs=2",
        f"hydra.sweeper.n_trials={len(VALUES)}",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        f"x=choice({','.join(map(str, VALUES))})",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr  # workers ran under -W error too

    workers = {
        json.loads((sweep_dir / f"optuna_worker_{index}" / "worker.json").read_text())["pid"] for index in (0, 1)
    }
    trials = load_study(sweep_dir).trials
    assert len(trials) == len(VALUES), [(t.number, t.state, t.params, t.system_attrs, t.user_attrs) for t in trials]
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert {t.system_attrs["trainscope:owner"]["pid"] for t in trials} <= workers  # none in the sweep's process
    for trial in trials:
        config = yaml.safe_load((sweep_dir / f"x={trial.params['x']}" / ".hydra" / "config.yaml").read_text())
        assert set(config) == {"x", "steps"}  # the ConfigStore schema reached the workers; nothing injected
