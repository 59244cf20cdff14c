"""Sweeps follow the runs' task: the HParams columns they declare and the direction they optimize in."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.helpers.cli import REPO_ROOT
from trainscope.config.resolvers import register_resolvers
from trainscope.sweep.objectives import default_directions, hparams_metrics
from trainscope.tasks import Classification
from trainscope.tensorboard.hparams import DEFAULT_METRICS


def composed(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_the_default_columns_are_the_classification_tasks() -> None:
    assert hparams_metrics(composed()) == list(DEFAULT_METRICS)
    validation = [tag for tag in Classification().hparams_metrics() if not tag.startswith("test/")]
    assert ["trial_state", *validation, "train/epoch"] == list(DEFAULT_METRICS)
    assert hparams_metrics(OmegaConf.create({"optimized_metric": "objective"})) == list(DEFAULT_METRICS)  # no task


@pytest.mark.parametrize(
    ("overrides", "columns"),
    [
        (["task=regression"], ["val/r2", "val/r2_best", "val/rmse", "val/loss", "train/loss"]),
        (
            ["task=multilabel"],
            [
                "val/f1_macro",
                "val/f1_macro_best",
                "val/f1_micro",
                "val/map",
                "val/loss",
                "train/loss",
            ],
        ),  # fmt: skip
        (
            [
                "task=custom",
                "task.loss._target_=torch.nn.L1Loss",
                "task.monitor.metric=val/mae",
                "+task.metrics.mae._target_=torchmetrics.regression.MeanAbsoluteError",
            ],
            ["val/mae", "val/mae_best", "val/loss", "train/loss"],
        ),  # fmt: skip
    ],
)
def test_a_sweep_declares_its_tasks_validation_columns(overrides: list[str], columns: list[str]) -> None:
    # No test/* column: an untested run beside tested ones would lack it (issue 29), and the HParams table is for
    # choosing hyperparameters, on the validation split.
    assert hparams_metrics(composed(*overrides)) == ["trial_state", *columns, "train/epoch"]


def test_a_sweep_without_a_test_split_declares_no_test_metric() -> None:
    # A declared metric no run logs would empty the parallel-coordinates view (issue 29).
    columns = hparams_metrics(composed("task=regression", "trainer.test=false"))
    assert columns == ["trial_state", "val/r2", "val/r2_best", "val/rmse", "val/loss", "train/loss", "train/epoch"]


def test_directions_follow_the_task_unless_unknown() -> None:
    regression = composed("task=regression")
    assert default_directions(regression, ["val/r2_best", "val/rmse_best", "val/loss", "val_mae/age"]) == [
        "maximize", "minimize", "minimize", "minimize",
    ]  # fmt: skip
    assert default_directions(composed(), ["val/acc_best", "model/num_parameters"]) == ["maximize", "maximize"]
    custom = composed(
        "task=custom", "task.loss._target_=torch.nn.L1Loss", "task.monitor.metric=val/mae", "task.monitor.mode=min",
        "+task.metrics.r2._target_=torchmetrics.regression.R2Score",
    )  # fmt: skip
    assert default_directions(custom, ["val/mae_best", "val/r2"]) == ["minimize", "maximize"]  # torchmetrics says
