"""`finetune.freeze` and its schedule on a real Trainer: frozen parameters stay bit-identical and get no optimizer
state until they unfreeze, gradual unfreezing goes from the output side, and the counts reach the log and the Text
tab; a pattern that names nothing is one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

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
