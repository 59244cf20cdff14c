"""scheduler=warmup_cosine and optimizer.weight_decay_on, built from the real config tree."""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.core.errors import ConfigError
from trainscope.engine.build import build_optimizer, build_scheduler
from trainscope.engine.schedules import WarmupCosine, warmup_cosine_lr
from trainscope.models import GPT, SmallCNN
from trainscope.tensorboard.writer import per_group_tags


def composed(*overrides: str) -> DictConfig:
    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def nanogpt_get_lr(it: int, learning_rate: float, min_lr: float, warmup_iters: int, lr_decay_iters: int) -> float:
    """nanoGPT train.py's get_lr, written out as it is there."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def learning_rates(scheduler: WarmupCosine, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    """The lr each of `steps` optimizer steps ran with."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_the_schedule_is_nanogpts_warmup_then_cosine_to_min_lr() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-3)
    scheduler = WarmupCosine(optimizer, total_steps=2000, warmup_steps=100, min_lr=1e-4)
    seen = learning_rates(scheduler, optimizer, 2100)
    expected = [nanogpt_get_lr(step, 1e-3, 1e-4, 100, 2000) for step in range(2100)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[0] == pytest.approx(1e-3 / 101) and seen[100] == pytest.approx(1e-3)
    assert seen[1050] == pytest.approx(5.5e-4) and seen[2000:] == pytest.approx([1e-4] * 100)


def test_a_resumed_schedule_continues_where_it_stopped() -> None:
    def fresh() -> tuple[torch.optim.Optimizer, WarmupCosine]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.5)
        return optimizer, WarmupCosine(optimizer, total_steps=50, warmup_steps=5, min_lr=0.01)

    optimizer, scheduler = fresh()
    uninterrupted = learning_rates(scheduler, optimizer, 50)
    optimizer, scheduler = fresh()
    learning_rates(scheduler, optimizer, 20)
    saved = (optimizer.state_dict(), scheduler.state_dict())
    optimizer, scheduler = fresh()
    optimizer.load_state_dict(saved[0])
    scheduler.load_state_dict(saved[1])
    assert learning_rates(scheduler, optimizer, 30) == pytest.approx(uninterrupted[20:], rel=1e-12)


def test_scheduler_warmup_cosine_decays_over_the_runs_length_unless_told() -> None:
    cfg = composed("optimizer=adamw", "scheduler=warmup_cosine", "trainer.max_epochs=3")
    model = SmallCNN([1, 28, 28], 10)
    scheduler, interval = build_scheduler(cfg, build_optimizer(cfg, model), source_length=40)
    assert interval == "step" and isinstance(scheduler, WarmupCosine)
    assert (scheduler.total_steps, scheduler.warmup_steps, scheduler.min_lr) == (120, 100, 1e-4)
    cfg = composed("optimizer=adamw", "scheduler=warmup_cosine", "+scheduler.total_steps=110")
    scheduler, _ = build_scheduler(cfg, build_optimizer(cfg, model), source_length=40)
    assert scheduler.total_steps == 110


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"total_steps": 100, "warmup_steps": 100}, r"scheduler.warmup_steps=100 must be below the 100 steps"),
        ({"total_steps": 0}, r"scheduler.total_steps must be an integer >= 1, got 0"),
        ({"total_steps": 10, "min_lr": 0.5}, r"scheduler.min_lr must be a number in \[0, optimizer.lr=0.1\]"),
    ],
)
def test_bad_schedule_settings_are_one_line(arguments: dict[str, object], message: str) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    with pytest.raises(ConfigError, match=message):
        WarmupCosine(optimizer, **{"warmup_steps": 2, **arguments})  # type: ignore[arg-type]


def test_warmup_cosine_lr_is_never_zero_and_ends_at_min_lr() -> None:
    assert warmup_cosine_lr(0, 1.0, 0.1, 0, 10) == 1.0
    assert warmup_cosine_lr(0, 1.0, 0.1, 4, 10) == 0.2
    assert warmup_cosine_lr(10, 1.0, 0.1, 4, 10) == pytest.approx(0.1)


# ----------------------------------------------------------------------------------------------------------
# optimizer.weight_decay_on


def decay_of(optimizer: torch.optim.Optimizer) -> dict[int, float]:
    return {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}


def test_adamw_decays_only_matrices_not_biases_norms_or_the_tied_embedding() -> None:
    cfg = composed("optimizer=adamw", "optimizer.weight_decay=0.1")
    model = GPT(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=16)
    optimizer = build_optimizer(cfg, model)
    decay = decay_of(optimizer)
    named = dict(model.named_parameters())  # the tied lm_head.weight is listed once, as token_embedding.weight
    assert len(decay) == len(named) == sum(1 for _ in model.parameters())
    decayed = {name for name, p in named.items() if decay[id(p)] == 0.1}
    assert decayed == {
        f"blocks.{i}.{layer}.weight"
        for i in range(2)
        for layer in ("attention.qkv", "attention.out", "feed_forward.up", "feed_forward.down")
    }
    for name in (
        "token_embedding.weight",
        "position_embedding.weight",
        "final_norm.weight",
        "blocks.0.attention.qkv.bias",
    ):
        assert decay[id(named[name])] == 0.0
    assert isinstance(optimizer, torch.optim.AdamW)


def test_sgd_and_adam_decay_every_parameter_as_torch_does() -> None:
    model = SmallCNN([1, 28, 28], 10)
    for name in ("sgd", "adam"):
        cfg = composed(f"optimizer={name}", "optimizer.weight_decay=0.01")
        assert set(decay_of(build_optimizer(cfg, model)).values()) == {0.01}
    cfg = composed("optimizer=sgd", "optimizer.weight_decay_on=matrices", "optimizer.weight_decay=0.01")
    decay = decay_of(build_optimizer(cfg, model))
    assert {decay[id(p)] for p in model.parameters() if p.ndim == 4} == {0.01}
    assert {decay[id(p)] for p in model.parameters() if p.ndim == 1} == {0.0}  # conv biases and batch norms


def test_an_unknown_weight_decay_rule_is_one_line() -> None:
    cfg = composed("optimizer=adamw", "optimizer.weight_decay_on=embeddings")
    with pytest.raises(ConfigError, match=r"optimizer.weight_decay_on must be one of all, matrices, got 'embeddings'"):
        build_optimizer(cfg, SmallCNN([1, 28, 28], 10))


def test_the_decay_groups_share_one_learning_rate_tag() -> None:
    cfg = composed("optimizer=adamw")
    optimizer = build_optimizer(cfg, GPT(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16))
    assert len(optimizer.param_groups) == 2
    assert per_group_tags("lr", [group["lr"] for group in optimizer.param_groups]) == {"lr": 0.001}
    assert per_group_tags("lr", [0.1, 0.2]) == {"lr/group0": 0.1, "lr/group1": 0.2}
