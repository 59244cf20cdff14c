"""A real Optuna sweep with pruning ends with its report and best.yaml, and best.yaml reruns the best trial (slow).

`python train.py -m hparams_search=synthetic` with a grid sampler over six learning rates (in a fixed order:
`hydra.sweeper.seed=4`) and the median pruner: two rates learn, three stay at chance level (one of them is
pruned after its first epoch) and 1e30 turns the loss into NaN, so the study has complete, pruned and failed
trials. Images are read back from the event file with TensorBoard's own reader.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers.cli import TrainCLI, error_line
from tests.helpers.events import read_events
from tests.helpers.run_dirs import runs_cli
from trainscope.trial.attributes import RUN_DIR_ATTR
from trainscope.trial.storage import open_storage

pytestmark = pytest.mark.slow

CHARTS = ["optimization_history", "intermediate_values", "param_importances", "parallel_coordinates"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], TrainCLI]:
    root = tmp_path_factory.mktemp("study")
    train = TrainCLI(root / "outputs", root / "data")
    sweep_dir = root / "sweep"
    result = train(
        "-m",
        "hparams_search=synthetic",
        "logging.log_every_n_steps=4",
        *("optimizer=sgd", "data.batch_size=32", "model.hidden_sizes=[16]"),
        "optimizer.lr=choice(0.3,0.2,1e-6,2e-6,3e-6,1e30)",
        *("hydra/sweeper/sampler=grid", "hydra.sweeper.seed=4", "hydra.sweeper.n_trials=6"),
        *("hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1"),
        f"hydra.sweep.dir={sweep_dir}",
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return sweep_dir, result, train


def load_study(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="synthetic", storage=open_storage(str(sweep_dir / "optuna_journal.log")))


def test_the_sweep_writes_its_report_into_tensorboard_and_report_md(sweep) -> None:
    sweep_dir, result, _ = sweep
    study = load_study(sweep_dir)
    states = [trial.state for trial in study.trials]
    assert (states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED), states.count(TrialState.FAIL)) == (
        4,
        1,
        1,
    )
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("optuna: 6 trials: 4 complete, 1 pruned, 1 failed; best val/acc_best=")
    assert (
        lines[-3]
        == f"[optuna] report: {sweep_dir}/report.md (4 charts; in TensorBoard: tensorboard --logdir {sweep_dir})"
    )

    events = read_events(sweep_dir / "report")  # the report's own run, not the sweep root's `.`
    for name in CHARTS:
        (image,) = events.Images(f"report/{name}")
        assert image.step == 6 and image.encoded_image_string == (sweep_dir / "report" / f"{name}.png").read_bytes()
    markdown = (sweep_dir / "report.md").read_text()
    (text,) = events.Tensors("report/summary")
    assert text.tensor_proto.string_val[0].decode() == markdown
    assert "| 4 | 1 | 1 | 0 | 0 |" in markdown  # complete, pruned, failed, interrupted, running
    for trial in study.trials:
        state = "failed: train loss is nan" if trial.state == TrialState.FAIL else trial.state.name.lower()
        assert f"| {trial.number} | {state}" in markdown
    best = study.best_trial
    assert (
        f"## Best trial: {best.number}" in markdown
        and f"- `optimizer.lr` = `{best.params['optimizer.lr']}`" in markdown
    )


def test_best_yaml_reruns_the_best_trial_and_reproduces_its_metrics_exactly(sweep, tmp_path: Path) -> None:
    sweep_dir, result, train = sweep
    best = load_study(sweep_dir).best_trial
    best_yaml = (sweep_dir / "best.yaml").read_text()
    trial_dir = Path(best.user_attrs[RUN_DIR_ATTR])
    assert best_yaml.startswith("# @package _global_\n")
    assert f"# run directory: {trial_dir}\n" in best_yaml
    assert f"# checkpoint: {trial_dir / 'checkpoints' / 'best.pt'}\n" in best_yaml
    assert f"trial {best.number}, val/acc_best={best.value!r}" in best_yaml
    assert (sweep_dir / "experiment" / "best.yaml").read_text() == best_yaml
    assert f"python train.py --config-dir {sweep_dir} experiment=best" in result.stdout

    rerun = train("--config-dir", str(sweep_dir), "experiment=best", f"hydra.run.dir={tmp_path / 'rerun'}")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    again = json.loads((tmp_path / "rerun" / "metrics.json").read_text())
    trial = json.loads((trial_dir / "metrics.json").read_text())
    assert again["final"]["val/acc_best"] == best.value
    timings = ("time/epoch_seconds", "time/wall_seconds")
    assert {k: v for k, v in again["final"].items() if k not in timings} == {
        k: v for k, v in trial["final"].items() if k not in timings
    }  # every metric, to the last bit: same config, same seed, same device


def test_the_report_is_made_again_on_demand_from_the_study(sweep) -> None:
    sweep_dir, _, _ = sweep
    before = {name: (sweep_dir / "report" / f"{name}.png").read_bytes() for name in CHARTS}
    again = runs_cli("--study", str(sweep_dir), timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].startswith("report: ")
    assert {name: (sweep_dir / "report" / f"{name}.png").read_bytes() for name in CHARTS} == before
    assert [image.step for image in read_events(sweep_dir / "report").Images("report/optimization_history")] == [6, 6]

    grid = runs_cli("--study", str(sweep_dir / "report"))
    assert grid.returncode == 2
    assert error_line(grid).startswith(f"error: --study {sweep_dir / 'report'} holds no Optuna study (")
