"""The study report and best.yaml on real Optuna studies built trial by trial with ask/tell (fast).

The end-to-end versions, a real `python train.py -m` sweep with pruning and the rerun of its best.yaml, are in
tests/sweep/optuna/test_sweep_report.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from PIL import Image

from tests.helpers.events import read_events
from trainscope.runs.best_config import best_config
from trainscope.runs.study_report import REPORT_FILE, study_report, write_report
from trainscope.trial.attributes import FAIL_REASON_ATTR, METRICS_STUDY_ATTR, MONITOR_STUDY_ATTR

SPACE = {
    "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True),
    "model.depth": IntDistribution(1, 4),
    "model": CategoricalDistribution(["mlp", "cnn"]),
}


def single_objective_study(tmp_path: Path) -> optuna.Study:
    """6 complete trials, 2 pruned after reporting, 1 failed with its reason: as the sweeper records them."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(study_name="demo", storage=storage, direction="maximize")
    study.set_user_attr(METRICS_STUDY_ATTR, ["val/acc_best"])
    study.set_user_attr(MONITOR_STUDY_ATTR, "val/acc")
    for number in range(9):
        trial = study.ask(SPACE)
        accuracy = 0.5 + 0.05 * number * (trial.params["model"] == "cnn") + 0.01 * trial.params["model.depth"]
        for epoch in (1, 2):
            trial.report(accuracy - 0.1 / epoch, epoch)
        if number in (2, 5):
            study.tell(trial, state=TrialState.PRUNED)
        elif number == 7:
            trial.set_user_attr(FAIL_REASON_ATTR, "training failed: train loss is nan in epoch 1")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, accuracy)
    return study


def test_the_report_draws_every_chart_writes_report_md_and_the_sweeps_tensorboard_run(tmp_path: Path) -> None:
    study = single_objective_study(tmp_path)
    report = study_report(study)
    assert (report.counts.complete, report.counts.pruned, report.counts.failed) == (6, 2, 1)
    assert [trial.number for trial in report.best] == [study.best_trial.number]
    assert set(report.importances["val/acc_best"]) == set(SPACE)
    assert sum(report.importances["val/acc_best"].values()) == pytest.approx(1.0)

    sweep_dir = tmp_path / "sweep"
    path = write_report(report, sweep_dir)
    charts = ["optimization_history", "intermediate_values", "param_importances", "parallel_coordinates"]
    assert sorted(p.stem for p in (sweep_dir / "report").glob("*.png")) == sorted(charts)
    events = read_events(sweep_dir / "report")
    for name in charts:
        (image,) = events.Images(f"report/{name}")  # TensorBoard's own reader
        assert image.step == 9  # the finished trials: complete, pruned and failed
        assert image.encoded_image_string == (sweep_dir / "report" / f"{name}.png").read_bytes()
        assert Image.open(io.BytesIO(image.encoded_image_string)).size == (image.width, image.height)
    (summary,) = events.Tensors("report/summary")
    markdown = path.read_text()
    assert path == sweep_dir / REPORT_FILE and summary.tensor_proto.string_val[0].decode() == markdown
    best = study.best_trial
    assert f"## Best trial: {best.number}" in markdown and f"- `val/acc_best` = {best.value:.6g}" in markdown
    assert "| 6 | 2 | 1 | 0 | 0 |" in markdown  # complete, pruned, failed, interrupted, running
    assert "| 7 | failed: training failed: train loss is nan in epoch 1 |" in markdown
    assert [line.split(" | ")[0] for line in markdown.splitlines() if " | pruned | " in line][1:] == ["| 2", "| 5"]
    for name in charts:
        assert f"![{name}](report/{name}.png)" in markdown


def test_a_multi_objective_study_gets_its_pareto_front_and_importances_per_objective(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr(METRICS_STUDY_ATTR, ["val/acc_best", "model/num_parameters"])
    for number in range(8):
        trial = study.ask(SPACE)
        study.tell(trial, [0.5 + 0.05 * trial.params["model.depth"], 1000.0 * trial.params["model.depth"] + number])
    report = study_report(study)
    assert {trial.number for trial in report.best} == {trial.number for trial in study.best_trials}
    assert "optimization_history" not in report.images  # one value per trial is what a history draws
    assert {"pareto_front", "param_importances_val_acc_best", "param_importances_model_num_parameters"} <= set(
        report.images
    )
    markdown = write_report(report, tmp_path).read_text()
    assert f"## Pareto front: {len(study.best_trials)} trials" in markdown


def test_a_study_without_a_complete_trial_says_so_and_draws_what_it_has(tmp_path: Path) -> None:
    study = optuna.create_study()
    trial = study.ask(SPACE)
    trial.report(0.3, 1)
    study.tell(trial, state=TrialState.PRUNED)
    report = study_report(study)
    assert report.best == [] and set(report.images) == {"optimization_history", "intermediate_values"}
    assert "No trial completed: there is no best trial yet." in write_report(report, tmp_path).read_text()


def test_best_config_writes_a_trials_command_line_as_an_experiment() -> None:
    groups = {"model", "data", "hparams_search", "optimizer", "hydra/sweeper"}
    overrides = [
        "hparams_search=synthetic",
        "model=mlp",
        "optimizer.lr=0.004430375245218269",
        "model.hidden_sizes=[16, 32]",
        "+trainer.note='a, b'",
        "~callbacks.early_stopping",
        "resume=/somewhere",
        "hydra.job.chdir=false",
    ]
    content, notes = best_config(overrides, groups)
    assert content == {
        "defaults": [{"override /hparams_search": "synthetic"}, {"override /model": "mlp"}],
        "optimizer": {"lr": 0.004430375245218269},
        "model": {"hidden_sizes": [16, 32]},
        "trainer": {"note": "a, b"},
    }
    assert notes == ["not carried over: ~callbacks.early_stopping (add it to the command line)"]
    from_experiment, _ = best_config(["experiment=mnist_cnn_tune", "optimizer.lr=0.01"], groups)
    # the trial's experiment is included (this file is the experiment), and it is not allowed to start a sweep
    assert from_experiment == {
        "defaults": ["/experiment/mnist_cnn_tune"],
        "hydra": {"mode": "RUN"},
        "optimizer": {"lr": 0.01},
    }


def test_a_report_that_cannot_be_written_is_a_warning_not_the_failure_of_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trainscope.runs.study import report_at_end

    study = single_objective_study(tmp_path)
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "report").write_text("a file where the report's folder goes")
    report_at_end(study, sweep_dir)  # returns: the sweep goes on to its last line
    err = capsys.readouterr().err
    assert err.startswith(f"warning: no study report in {sweep_dir}: ") and len(err.splitlines()) == 1
