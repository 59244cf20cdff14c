"""The user's own nn.Module (`model=custom`, trained on the user's own Dataset) and timm models (`model=timm`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.plugins.hparams import metadata
from torch import nn

from tests.helpers.cli import resume_cli, run_script
from tests.helpers.events import read_events
from trainscope.core.errors import ConfigError
from trainscope.models.build import build_model

SHAPES = [
    "data=custom",
    "data.train._target_=examples.shapes_dataset.Shapes",
    "+data.train.split=train",
    "+data.test._target_=examples.shapes_dataset.Shapes",
    "+data.test.split=test",
]
TINY_NET = ["model=custom", "model._target_=examples.tiny_net.TinyNet"]
OFFLINE = {"HF_HUB_OFFLINE": "1"}  # any download attempt fails instead of reaching the network


@pytest.mark.slow
def test_user_dataset_and_module_from_examples_train(train) -> None:
    result = train(*SHAPES, *TINY_NET, "+model.width=16", "optimizer.lr=0.01", "trainer.max_epochs=4")
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["test"]["test/acc"] >= 0.45  # three classes: chance is 0.33
    assert summary["final"]["model/num_parameters"] == sum(p.numel() for p in _tiny_net(width=16).parameters())
    tags = set(read_events(run_dir).Tags()["scalars"])
    assert {"val_precision/disc", "val_precision/square", "val_precision/cross"} <= tags  # Shapes.classes


def _tiny_net(**options: Any) -> nn.Module:
    from examples.tiny_net import TinyNet

    return TinyNet([1, 24, 24], 3, **options)


@pytest.mark.slow
def test_timm_model_sweep_eval_resume_and_hparams(train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    common = ["data=synthetic", "data.num_samples=128", "data.input_shape=[3,16,16]", "data.mean=[0.5,0.5,0.5]"]
    common += ["data.std=[0.28,0.28,0.28]", "data.batch_size=32", "model=timm", "trainer.max_epochs=1"]
    result = train("-m", *common, "model.name=test_resnet,test_efficientnet")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = next((train.output_root / "multirun").glob("*/*"))
    run_dirs = sorted(path for path in sweep_dir.iterdir() if path.is_dir() and path.name[0].isdigit())
    assert [json.loads((run / "metrics.json").read_text())["status"] for run in run_dirs] == ["completed"] * 2
    config = OmegaConf.load(run_dirs[0] / ".hydra" / "config.yaml")
    assert config.model.name == "test_resnet" and config.model.pretrained is False

    experiment = [
        metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
        for path in sweep_dir.glob("*/*tfevents*")  # each run declares the experiment itself (issue 29)
        for event in event_file_loader.EventFileLoader(str(path)).Load()
        for value in event.summary.value
        if value.tag == metadata.EXPERIMENT_TAG
    ]
    assert [info.name for info in experiment[-1].hparam_infos if info.differs] == ["model.name"]

    evaluated = run_script("eval.py", [f"run={run_dirs[0]}"], train.output_root, train.data_dir)
    assert evaluated.returncode == 0, evaluated.stderr
    trained = json.loads((run_dirs[0] / "metrics.json").read_text())["test"]["test/acc"]
    printed = dict(line.split() for line in evaluated.stdout.splitlines() if line.startswith("test/"))
    assert float(printed["test/acc"]) == pytest.approx(trained, abs=1e-6)

    resumed = resume_cli(run_dirs[1], train.data_dir, "trainer.max_epochs=2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dirs[1] / "metrics.json").read_text())["epochs_run"] == 2


@pytest.mark.parametrize(
    ("model_cfg", "message"),
    [
        (
            {"_target_": "examples.tiny_net.TinyNet", "channels": [8]},
            "does not take model.channels; start from model=custom",
        ),
        ({"_target_": "examples.tiny_net.Missing"}, "model._target_=examples.tiny_net.Missing cannot be imported"),
        ({"_target_": "examples.shapes_dataset.Shapes", "num_samples": 3}, "returned a Shapes, not a torch.nn.Module"),
        ({"_target_": "trainscope.models.timm_model", "name": "resnet10x"}, "not a timm model; did you mean resnet10t"),
    ],
)
def test_bad_model_configs_are_one_line(model_cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(OmegaConf.create(model_cfg), [1, 24, 24], 3)


def test_model_gets_data_shape_only_where_its_signature_takes_it() -> None:
    model = build_model(
        OmegaConf.create({"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 2}), [1, 2, 2], 3
    )
    assert isinstance(model, nn.Linear)
    net = build_model(
        OmegaConf.create({"_target_": "examples.tiny_net.TinyNet", "input_shape": None, "width": 4}), [3, 9, 9], 5
    )
    assert net(torch.zeros(2, 3, 9, 9)).shape == (2, 5)
