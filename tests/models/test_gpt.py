"""model=gpt: the built-in decoder-only transformer."""

from __future__ import annotations

import io
import math

import pytest
import torch

from trainscope.core.errors import ConfigError
from trainscope.models import GPT


def tiny_gpt(**overrides: object) -> GPT:
    torch.manual_seed(0)
    options = {"vocab_size": 11, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 16, "dropout": 0.0}
    return GPT(**{**options, **overrides}).eval()


def test_logits_have_one_row_per_position_over_the_vocabulary() -> None:
    model = tiny_gpt()
    tokens = torch.randint(0, 11, (3, 7))
    assert model(tokens).shape == (3, 7, 11)
    assert model(tokens[:, :1]).shape == (3, 1, 11)


def test_a_later_token_never_changes_the_logits_of_earlier_positions() -> None:
    model = tiny_gpt()
    tokens = torch.randint(0, 11, (2, 12))
    changed = tokens.clone()
    changed[:, 8] = (changed[:, 8] + 1) % 11
    before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :8], after[:, :8])
    assert not torch.allclose(before[:, 8:], after[:, 8:])  # the change is seen from its own position on


def test_the_output_layer_shares_the_token_embedding_matrix_also_after_a_checkpoint_round_trip() -> None:
    model = tiny_gpt()
    assert model.lm_head.weight is model.token_embedding.weight
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = tiny_gpt()
    with torch.no_grad():
        restored.token_embedding.weight.zero_()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.lm_head.weight is restored.token_embedding.weight
    tokens = torch.randint(0, 11, (2, 5))
    torch.testing.assert_close(restored(tokens), model(tokens))
    # the tied matrix is one parameter: an optimizer steps it once
    assert sum(1 for p in model.parameters() if p is model.token_embedding.weight) == 1


def test_nanogpt_cpu_recipe_size_has_nanogpts_parameter_count() -> None:
    """nanoGPT reports 0.80M parameters (without the position embedding) for its CPU recipe on 65 characters."""
    model = GPT(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    block = 128 * 384 + 384 + 128 * 128 + 128 + 128 * 512 + 512 + 512 * 128 + 128 + 2 * 2 * 128
    assert model.num_parameters(include_position_embedding=False) == 4 * block + 65 * 128 + 2 * 128 == 801_664
    assert model.num_parameters() == 801_664 + 64 * 128


def test_gpt2_initialisation_scales_the_residual_projections_by_depth() -> None:
    torch.manual_seed(0)
    model = GPT(vocab_size=512, block_size=64, n_layer=8, n_head=4, n_embd=256)
    residual_std = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        for weight in (block.attention.out.weight, block.feed_forward.down.weight):
            assert weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert block.attention.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert torch.count_nonzero(block.attention.qkv.bias) == 0
    assert model.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(model.final_norm.weight == 1)


def test_bias_false_leaves_no_bias_in_linear_layers_or_norms() -> None:
    model = tiny_gpt(bias=False)
    assert not [name for name, _ in model.named_parameters() if name.endswith("bias")]


def test_dropout_is_active_in_training_only() -> None:
    model = tiny_gpt(dropout=0.5)
    tokens = torch.randint(0, 11, (2, 8))
    torch.testing.assert_close(model(tokens), model(tokens))
    model.train()
    assert not torch.allclose(model(tokens), model(tokens))


def test_a_sequence_longer_than_the_block_size_is_refused() -> None:
    with pytest.raises(ValueError, match="17 tokens is longer than the model's block_size=16"):
        tiny_gpt()(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_embd": 15}, r"model.n_embd=15 must be a multiple of model.n_head=2"),
        ({"vocab_size": None}, r"model.vocab_size must be a positive integer, got None"),
        ({"n_layer": 0}, r"model.n_layer must be a positive integer, got 0"),
        ({"dropout": 1.0}, r"model.dropout must be a number in \[0, 1\), got 1.0"),
    ],
)
def test_bad_sizes_are_one_line_naming_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_gpt(**overrides)


def test_training_flops_per_token_is_nanogpts_mfu_numerator() -> None:
    from trainscope.models.flops import training_flops_per_token

    model = GPT(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    # nanoGPT's estimate_mfu: 6N + 12 L H Q T, N without the position embedding, H * Q = n_embd
    assert training_flops_per_token(model, 64) == 6 * 801_664 + 12 * 4 * 4 * 32 * 64
    assert training_flops_per_token(torch.nn.Linear(2, 2), 64) is None
