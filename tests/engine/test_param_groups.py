"""`optimizer.param_groups` and `optimizer.layer_decay`: each parameter in one named group with its own learning
rate, a scheduler scaling every group, and `lr/<group>` in TensorBoard."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.events import read_events
from tests.helpers.in_process import composed_run_config, make_trainer
from trainscope.core.errors import ConfigError
from trainscope.engine.build import build_optimizer
from trainscope.engine.param_groups import optimizer_groups
from trainscope.models import MLP, resnet18_small


def test_a_head_group_with_lr_scale_and_the_rest_in_default() -> None:
    model = MLP(input_shape=[1, 8, 8], num_classes=3, hidden_sizes=[16])
    config = composed_run_config(
        Path("/unused"),
        "model=mlp",
        "optimizer=adamw",
        "optimizer.param_groups=[{name: head, params: net.4, lr_scale: 10, weight_decay: 0}]",
    )
    optimizer = build_optimizer(config, model)
    groups = {(group["name"], group["weight_decay"]): group for group in optimizer.param_groups}
    assert groups["head", 0.0]["lr"] == pytest.approx(0.01)
    assert groups["default", 0.01]["lr"] == groups["default", 0.0]["lr"] == 0.001  # matrices decayed, biases not
    head = [p for group in optimizer.param_groups if group["name"] == "head" for p in group["params"]]
    assert {id(p) for p in head} == {id(model.net[4].weight), id(model.net[4].bias)}
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))


def test_layer_decay_lowers_the_rate_layer_by_layer_from_the_head_down() -> None:
    model = resnet18_small(input_shape=[1, 12, 12], num_classes=4)
    groups = optimizer_groups(model, lr=1.0, weight_decay=0.0, weight_decay_on="all", layer_decay=0.5)
    rates = {group["name"]: group["lr"] for group in groups}
    assert rates["default.layer0"] == 1.0  # fc
    assert rates["default.layer1"] == 0.5  # the last block of layer4
    assert min(rates.values()) == 0.5 ** (len(rates) - 1)  # conv1, the farthest from the head
    assert next(group for group in groups if group["name"] == "default.layer0")["params"][0] is model.fc.weight


def test_a_pattern_that_names_nothing_is_one_line() -> None:
    model = MLP(input_shape=[1, 8, 8], num_classes=3, hidden_sizes=[16])
    with pytest.raises(ConfigError, match=r"optimizer.param_groups\[0\].params: 'head' matches no parameter of MLP"):
        optimizer_groups(model, lr=1.0, weight_decay=0.0, weight_decay_on="all", groups=[{"params": "head"}])


def test_every_groups_rate_is_a_tensorboard_scalar_and_the_scheduler_scales_each(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1)
    groups = optimizer_groups(
        trainer.model,
        lr=0.1,
        weight_decay=0.0,
        weight_decay_on="all",
        groups=[{"name": "head", "params": "net.4", "lr_scale": 10}],
    )
    trainer.optimizer = torch.optim.SGD(groups, lr=0.1)
    trainer.scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    trainer.scheduler_interval = "step"
    trainer.fit()
    trainer.tensorboard.close()
    events = read_events(tmp_path)
    head, default = (events.Scalars(f"lr/{name}") for name in ("head", "default"))
    assert [point.step for point in head] == [point.step for point in default] and head
    for head_point, default_point in zip(head, default, strict=True):
        assert head_point.value == pytest.approx(10 * default_point.value)  # one factor for both
    assert head[-1].value < 1.0
