"""The HParams and Scalars views as a user opens them (issue 29): a real TensorBoard over a realistic `outputs/`
(single runs, two grids over different keys, one with a diverged run, an Optuna search without a test split and
with a pruned trial), over one sweep folder and over one run directory, asked through its HTTP API."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_script
from tests.helpers.tensorboard_server import experiment, metric_values, session_groups, start_tensorboard, wait_for
from trainscope.config.run_names import swept_keys
from trainscope.core.run_dir import RunStatus
from trainscope.tensorboard.hparams import TRIAL_STATE_TAG, TRIAL_STATES
from trainscope.tensorboard.trial_names import MAX_NAME_CHARS

pytestmark = pytest.mark.slow  # five real `python train.py` processes build the tree once

TINY = ["data=synthetic", "data.num_samples=128", "model=mlp", "trainer.max_epochs=1", "logging=minimal"]
LEARNS = ["optimizer=sgd", "data.batch_size=32", "model.hidden_sizes=[16]"]
# The Optuna grid sampler with seed 4 runs 0.3, then 2e-6 (pruned after one epoch by the median of 0.3), then 0.2.
OPTUNA = [
    "hparams_search=synthetic",
    *LEARNS,
    "data.num_samples=128",
    "trainer.max_epochs=2",
    "logging=minimal",
    "optimizer.lr=choice(0.3,0.2,1e-6,2e-6,3e-6)",
    "hydra/sweeper/sampler=grid",
    "hydra.sweeper.seed=4",
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "hydra.sweeper.n_trials=3",
]
SESSION_STATUS = {
    RunStatus.COMPLETED: "STATUS_SUCCESS",
    RunStatus.STOPPED_EARLY: "STATUS_SUCCESS",
    RunStatus.PRUNED: "STATUS_FAILURE",
    RunStatus.FAILED: "STATUS_FAILURE",
    RunStatus.INTERRUPTED: "STATUS_UNKNOWN",
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("views") / "outputs"
    commands = [
        TINY,
        [*TINY, "optimizer.lr=0.05"],
        ["-m", *TINY, *LEARNS, "optimizer.lr=0.1,1e30"],  # 1e30: the loss turns NaN, the run fails
        ["-m", *OPTUNA],
        ["-m", *TINY, "data.batch_size=16,32", "trainer.seed=1"],
    ]
    for args in commands:
        result = run_script("train.py", args, root, data_dir)
        assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-2000:]
    return root


def run_dirs(folder: Path) -> list[Path]:
    return sorted(path.parent for path in folder.rglob("metrics.json"))


def status_of(run_dir: Path) -> str:
    return json.loads((run_dir / "metrics.json").read_text())["status"]


def check_views(logdir: Path) -> list[dict[str, Any]]:
    """Every assertion of the issue's done-when over one folder; the sessions, for more."""
    runs = run_dirs(logdir)
    url = start_tensorboard(logdir)
    groups = wait_for(lambda: len(session_groups(url)) == len(runs) and session_groups(url), what=f"{len(runs)} rows")
    with urllib.request.urlopen(f"{url}/data/runs", timeout=10) as response:
        listed = json.loads(response.read())
    # no `.` pseudo-run of a declaration file: the run directories, and an Optuna study's `report` run
    expected = {"." if run == logdir else str(run.relative_to(logdir)) for run in runs}
    assert "." not in listed or expected == {"."}, listed
    assert {run for run in listed if run.rsplit("/", 1)[-1] != "report"} == expected, listed

    names = [group["name"] for group in groups]
    assert len(set(names)) == len(names) and all(len(name) <= MAX_NAME_CHARS for name in names), names

    shown = experiment(url)
    columns = {info["name"] for info in shown["hparamInfos"]}
    sweeps = {run.parent for run in runs if swept_keys(run.parent) is not None}
    for session in (group["sessions"][0] for group in groups):
        swept = swept_keys(Path(session["modelUri"]).parent) or []
        hparams = next(group["hparams"] for group in groups if group["sessions"][0] is session)
        assert {key for key in swept if key in hparams} <= columns, (swept, sorted(columns))
    metrics = [info["name"]["tag"] for info in shown["metricInfos"]]
    assert metrics[0] == TRIAL_STATE_TAG and not [tag for tag in metrics if tag.startswith("test/")], metrics

    by_dir = {Path(group["sessions"][0]["modelUri"]): group["sessions"][0] for group in groups}
    assert set(by_dir) == {run.resolve() for run in runs}
    for run_dir, session in by_dir.items():
        status = status_of(run_dir)
        assert session["status"] == SESSION_STATUS[RunStatus(status)], (run_dir.name, status, session["status"])
        values = metric_values(session)
        assert values[TRIAL_STATE_TAG] == TRIAL_STATES[RunStatus(status)], (run_dir.name, status)
        if status == RunStatus.COMPLETED:
            assert set(metrics) <= set(values), (run_dir.name, set(metrics) - set(values))
    assert sweeps or len(runs) == 1
    return [group["sessions"][0] for group in groups]


def test_hparams_over_all_of_outputs_show_every_sweeps_columns_status_and_values(outputs: Path) -> None:
    statuses = sorted(status_of(run) for run in run_dirs(outputs))
    assert statuses == ["completed"] * 7 + ["failed", "pruned"], statuses  # the tree is as the issue describes
    sessions = check_views(outputs)
    assert len(sessions) == 9


def test_hparams_over_one_sweep_and_one_run_directory(outputs: Path) -> None:
    (optuna_sweep,) = {run.parent for run in run_dirs(outputs) if status_of(run) == RunStatus.PRUNED}
    check_views(optuna_sweep)
    check_views(run_dirs(optuna_sweep)[0])
