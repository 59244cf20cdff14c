"""`finetune.freeze` and its schedule on a real Trainer: frozen parameters stay bit-identical and get no optimizer
state until they unfreeze, gradual unfreezing goes from the output side, and the counts reach the log and the Text
tab; a pattern that names nothing is one line."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import resume_cli, single_run_dir, start_training
from tests.helpers.events import read_events
from tests.helpers.in_process import make_trainer
from trainscope.callbacks.freezing import PARAMETERS_TEXT, Freezing
from trainscope.config.groups.finetune import FinetuneConfig
from trainscope.core.callback import CallbackList
from trainscope.core.errors import ConfigError
from trainscope.models import GPT, SmallCNN
from trainscope.models.parts import head_name, layer_groups, select_parameters


def freezing_trainer(run_dir: Path, **finetune: object):
    trainer = make_trainer(run_dir, max_epochs=3)
    freezing = Freezing(FinetuneConfig.from_config(finetune), trainer.model)
    trainer.callbacks = CallbackList({"finetune": freezing})
    return trainer


def test_frozen_until_epoch_2_then_trained_with_the_optimizer_state_of_the_rest_intact(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trainer = freezing_trainer(tmp_path, freeze="backbone", unfreeze_at_epoch=2)
    backbone = trainer.model.net[1].weight
    before = backbone.detach().clone()
    trainer.max_epochs = 2
    with caplog.at_level(logging.INFO, logger="trainscope.callbacks.freezing"):
        trainer.fit()
    assert torch.equal(backbone, before), "a frozen parameter changed"
    assert backbone not in trainer.optimizer.state, "a frozen parameter got optimizer state"
    head_state = {key: value.clone() for key, value in trainer.optimizer.state[trainer.model.net[4].weight].items()}
    assert "parameters (start): 68 of 1,108 trainable, 1,040 frozen | net.1 0/1,040  net.4 68/68" in caplog.text

    trainer.max_epochs, trainer.status = 3, "running"
    trainer.fit()  # the third epoch: unfrozen, the head's momentum carried on
    assert not torch.equal(backbone, before)
    assert backbone in trainer.optimizer.state
    assert not torch.equal(
        trainer.optimizer.state[trainer.model.net[4].weight]["momentum_buffer"], head_state["momentum_buffer"]
    )
    trainer.tensorboard.close()
    texts = read_events(tmp_path).Tags()["tensors"]
    assert f"{PARAMETERS_TEXT}/text_summary" in texts


def test_gradual_unfreezing_goes_one_layer_group_at_a_time_from_the_output_side() -> None:
    model = SmallCNN(input_shape=[1, 12, 12], num_classes=4)
    config = FinetuneConfig.from_config({"freeze": "backbone", "unfreeze_at_step": 10, "unfreeze_every": 5})
    freezing = Freezing(config, model)
    groups = layer_groups(model)
    assert [group[0] for group in groups][-2:] == ["classifier.1.weight", "classifier.4.weight"]
    assert head_name(model) == "classifier.4"
    assert [freezing.unfrozen_at(0, step) for step in (0, 9, 10, 14, 15, 100)] == [0, 0, 1, 1, 2, 5]
    assert freezing.groups[0][0] is model.classifier[1].weight  # the layer next to the head thaws first


def test_backbone_of_a_gpt_leaves_its_tied_head_and_embedding_trainable() -> None:
    model = GPT(vocab_size=16, block_size=8, n_layer=1, n_head=1, n_embd=8)
    frozen = select_parameters(model, ["backbone"], "finetune.freeze")
    assert "token_embedding.weight" not in frozen and "blocks.0.attention_norm.weight" in frozen


def test_a_pattern_that_names_no_parameter_is_one_line() -> None:
    model = SmallCNN(input_shape=[1, 12, 12], num_classes=4)
    with pytest.raises(ConfigError) as refused:
        select_parameters(model, ["feature.*"], "finetune.freeze")
    assert str(refused.value) == (
        "finetune.freeze: 'feature.*' matches no parameter of SmallCNN; use backbone, a module name or an fnmatch "
        "pattern of parameter names, e.g. features.0, features.1, features.4, features.5"
    )


def test_a_schedule_without_frozen_parameters_is_refused() -> None:
    with pytest.raises(ConfigError, match="need frozen parameters; set finetune.freeze"):
        FinetuneConfig.from_config({"unfreeze_at_epoch": 2})
    with pytest.raises(ConfigError, match="set one of them"):
        FinetuneConfig.from_config({"freeze": "backbone", "unfreeze_at_epoch": 2, "unfreeze_at_step": 3})


# A CNN (with BatchNorm) on small images, deterministic, a checkpoint every 3 steps: 9 batches an epoch.
UNFREEZING_RUN = [
    "data=synthetic",
    "data.num_samples=320",
    "data.batch_size=32",
    "data.input_shape=[1,12,12]",
    "model=cnn",
    "trainer.deterministic=true",
    "trainer.max_epochs=3",
    "trainer.test=false",
    "logging=minimal",
    "logging.progress_bar=false",
    "callbacks.checkpoint.every_n_steps=3",
    "finetune.freeze=backbone",
    "finetune.unfreeze_at_epoch=2",
    "finetune.freeze_bn=true",
]


def kill_in_epoch_3(output_root: Path, process: subprocess.Popen[str]) -> Path:
    """SIGKILL the run at its first checkpoint inside the third epoch; its run directory."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        for last in (output_root / "runs").glob("*/*/checkpoints/last.pt"):
            with contextlib.suppress(Exception):  # a checkpoint being replaced: look again
                state = torch.load(last, weights_only=True)["trainer"]
                if state["epoch"] == 2 and state["batch_in_epoch"] > 0:
                    process.send_signal(signal.SIGKILL)
                    process.communicate()
                    return last.parent.parent
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no checkpoint inside epoch 3:\n{process.communicate()[0]}")


@pytest.mark.slow
def test_sigkill_after_the_unfreeze_point_then_resume_equals_the_uninterrupted_run(
    tmp_path: Path, data_dir: Path
) -> None:
    straight_root, killed_root = tmp_path / "straight", tmp_path / "killed"
    straight = start_training(UNFREEZING_RUN, straight_root, data_dir)
    killed = start_training(UNFREEZING_RUN, killed_root, data_dir)
    run_dir = kill_in_epoch_3(killed_root, killed)
    resumed = resume_cli(run_dir, data_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    straight_output, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, straight_output
    straight_dir = single_run_dir(straight_root)

    expected = torch.load(straight_dir / "checkpoints" / "last.pt", weights_only=True)
    actual = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert actual["trainer"]["global_step"] == expected["trainer"]["global_step"] == 27
    for name, value in expected["model"].items():
        assert torch.equal(actual["model"][name], value), f"{name} differs after the resume"
    assert [epoch["val/loss"] for epoch in actual["trainer"]["history"]] == [
        epoch["val/loss"] for epoch in expected["trainer"]["history"]
    ]


@pytest.mark.parametrize(
    ("build", "head"),
    [
        (lambda: __import__("timm").create_model("resnet10t", num_classes=3), "fc"),  # timm's get_classifier()
        (lambda: __import__("torchvision").models.resnet18(num_classes=3), "fc"),
        (lambda: __import__("torchvision").models.mobilenet_v3_small(num_classes=3), "classifier.3"),
    ],
    ids=["timm", "torchvision_resnet", "torchvision_mobilenet"],
)
def test_the_head_of_timm_and_torchvision_models(build, head: str) -> None:
    model = build()
    assert head_name(model) == head
    frozen = set(select_parameters(model, ["backbone"], "finetune.freeze"))
    assert {name for name, _ in model.named_parameters()} - frozen == {f"{head}.weight", f"{head}.bias"}


def test_freezing_every_parameter_is_one_line_and_a_model_with_nothing_trainable_fails_before_a_step(
    tmp_path: Path,
) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1)
    with pytest.raises(ConfigError, match=r"finetune.freeze=net freezes every parameter of MLP, so nothing would"):
        Freezing(FinetuneConfig.from_config({"freeze": "net"}), trainer.model)
    for parameter in trainer.model.parameters():  # a model that froze itself
        parameter.requires_grad_(False)
    freezing = Freezing(FinetuneConfig.from_config({"freeze": "net.4", "unfreeze_at_epoch": 1}), trainer.model)
    trainer.callbacks = CallbackList({"finetune": freezing})
    trainer.fit()
    trainer.tensorboard.close()
    assert trainer.status == "failed" and trainer.stop_reason.startswith("nothing trains: every parameter is frozen")
    assert trainer.state.global_step == 0
