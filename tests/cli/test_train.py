"""The foundation, as a user meets it: `python train.py ...` trains into its own run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from tests.helpers.cli import REPO_ROOT, TINY
from tests.helpers.events import read_events
from trainscope.config.resolvers import register_resolvers
from trainscope.engine.build import build_optimizer
from trainscope.models.build import build_model

EPOCH_TAGS = ["train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "train/epoch"]
STEP_TAGS = ["train/loss_step", "train/acc_step", "lr", "train/grad_norm", "train/samples_per_sec"]


@pytest.mark.slow
def test_synthetic_run_writes_events_checkpoints_and_metrics(train) -> None:
    result = train(*TINY)
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()

    # 256 samples, 10% validation → 231 train samples → 8 batches of 32 per epoch, 2 epochs.
    events = read_events(run_dir)
    tags = events.Tags()["scalars"]
    for tag in EPOCH_TAGS + ["test/loss", "test/acc"]:
        assert tag in tags, f"missing {tag}: {tags}"
    for tag in EPOCH_TAGS:
        assert [event.step for event in events.Scalars(tag)] == [8, 16]
    for tag in STEP_TAGS:
        assert [event.step for event in events.Scalars(tag)] == list(range(2, 17, 2))
    assert not [path for path in run_dir.iterdir() if path.is_dir() and list(path.glob("events.*"))]

    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs_run"] == 2
    assert summary["final"]["val/acc"] == pytest.approx(events.Scalars("val/acc")[-1].value)
    assert set(summary["test"]) == {"test/loss", "test/acc"}
    assert (run_dir / "train.log").read_text().count("epoch ") >= 2
    assert (run_dir / ".hydra" / "config.yaml").is_file()

    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    config = compose_config(["data=synthetic", "model=mlp"])
    model = build_model(config.model)
    model.load_state_dict(best["model"])


def compose_config(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.mark.parametrize("model", ["mlp", "cnn", "lenet", pytest.param("resnet18", marks=pytest.mark.slow)])
@pytest.mark.parametrize("shape", [[1, 28, 28], [3, 32, 32]], ids=["mnist_shape", "cifar_shape"])
def test_every_model_trains_a_step_on_every_input_shape(model: str, shape: list[int]) -> None:
    config = compose_config([f"model={model}", "data=synthetic", f"data.input_shape=[{','.join(map(str, shape))}]"])
    network = build_model(config.model, tuple(shape), config.data.num_classes)  # model.init_from is trainscope's
    optimizer = build_optimizer(config, network)  # optimizer.weight_decay_on is trainscope's, not torch's
    inputs, targets = torch.randn(4, *shape), torch.randint(0, config.data.num_classes, (4,))
    loss = torch.nn.functional.cross_entropy(network(inputs), targets)
    loss.backward()
    optimizer.step()
    assert network(inputs).shape == (4, config.data.num_classes)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model=nope", "model=nope"),
        ("optimizer.lr=-1", "optimizer.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("trainer.max_epochs=-1", "trainer.max_epochs"),
        ("optimizer.lr=abc", "optimizer.lr"),
    ],
)
def test_bad_input_is_one_line_without_traceback(train, override: str, named: str) -> None:
    result = train(*TINY, override)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(error_lines) <= 2, result.stderr
    assert named in error_lines[-1]


def test_model_error_lists_the_options(train) -> None:
    result = train("model=nope")
    assert "cnn, custom, gpt, hf, lenet, mlp, resnet18, timm" in result.stderr


@pytest.mark.slow
def test_same_seed_deterministic_runs_match(train, tmp_path: Path) -> None:
    args = [*TINY, "trainer.deterministic=true", "trainer.seed=7", "model=cnn", "data.input_shape=[1,12,12]"]
    first = train(*args)
    assert first.returncode == 0, first.stderr
    second_cli = type(train)(tmp_path / "second", train.data_dir)
    second = second_cli(*args)
    assert second.returncode == 0, second.stderr
    first_metrics = json.loads((train.run_dir() / "metrics.json").read_text())
    second_metrics = json.loads((second_cli.run_dir() / "metrics.json").read_text())
    for key in ("train/loss", "val/loss", "val/acc", "test/acc"):
        assert first_metrics["final"][key] == second_metrics["final"][key], key


@pytest.mark.slow
def test_cnn_learns_real_mnist_sample(train) -> None:
    result = train("model=cnn", "data=mnist_sample", "trainer.max_epochs=2", "trainer.test=false")
    assert result.returncode == 0, result.stderr
    summary = json.loads((train.run_dir() / "metrics.json").read_text())
    assert summary["final"]["val/acc_best"] >= 0.90, summary["final"]


@pytest.mark.slow
def test_long_or_slashed_overrides_still_make_one_run_directory(train) -> None:
    long_pattern = "x" * 300  # an exclude pattern that matches nothing: only makes the command line long
    result = train(
        *TINY, "trainer.max_epochs=1", "callbacks.checkpoint.monitor=val/acc", f"hparams.exclude=[{long_pattern}]"
    )
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()  # exactly one directory, directly under runs/<date>/
    assert len(run_dir.name.encode()) <= 255
    assert "monitor=val_acc" in run_dir.name  # the short form of callbacks.checkpoint.monitor=val/acc
    assert (run_dir / "metrics.json").is_file()
