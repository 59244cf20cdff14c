"""model=hf: transformers causal LMs from a tiny GPT-2 config saved to a local folder (never the network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers  # the lm extra (in .[test])

from trainscope.core.errors import ConfigError
from trainscope.models import HuggingFaceCausalLM


@pytest.fixture
def tiny_gpt2(tmp_path: Path) -> tuple[Path, object]:
    """A 2-layer, 16-wide GPT-2 with its (random) weights saved where save_pretrained puts them."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=40, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder)
    return folder, model


def test_pretrained_loads_the_saved_weights_and_returns_logits(tiny_gpt2: tuple[Path, object]) -> None:
    folder, original = tiny_gpt2
    model = HuggingFaceCausalLM(str(folder), pretrained=True).eval()
    tokens = torch.randint(0, 40, (3, 9))
    logits = model(tokens)
    assert logits.shape == (3, 9, 40)
    torch.testing.assert_close(logits, original(input_ids=tokens).logits)
    assert (model.vocab_size, model.block_size) == (40, 32)


def test_from_config_takes_the_architecture_with_new_weights_sized_to_the_data(tiny_gpt2: tuple[Path, object]) -> None:
    folder, original = tiny_gpt2
    model = HuggingFaceCausalLM(str(folder), pretrained=False, vocab_size=65, block_size=24)
    assert (model.vocab_size, model.block_size) == (65, 24)
    assert model(torch.randint(0, 65, (2, 24))).shape == (2, 24, 65)
    assert len(model.model.transformer.h) == 2  # the saved architecture
    same_size = HuggingFaceCausalLM(str(folder), pretrained=False)
    assert not torch.equal(same_size.model.transformer.wte.weight, original.transformer.wte.weight)


def test_a_pretrained_model_keeps_its_own_sizes(tiny_gpt2: tuple[Path, object]) -> None:
    folder, _ = tiny_gpt2
    model = HuggingFaceCausalLM(str(folder), pretrained=True, vocab_size=12, block_size=8)
    assert (model.vocab_size, model.block_size) == (40, 32)


def test_config_overrides_change_the_architecture_and_refuse_unknown_keys(tiny_gpt2: tuple[Path, object]) -> None:
    folder, _ = tiny_gpt2
    model = HuggingFaceCausalLM(str(folder), config={"n_layer": 3})
    assert len(model.model.transformer.h) == 3
    with pytest.raises(ConfigError, match=r"model.config.n_layers is not a setting of GPT2Config"):
        HuggingFaceCausalLM(str(folder), config={"n_layers": 3})


def test_a_missing_folder_is_named_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"model.name={tmp_path}/nope does not exist; pass a folder"):
        HuggingFaceCausalLM(str(tmp_path / "nope"))


def test_a_folder_without_a_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"model.name={tmp_path} holds no loadable model config"):
        HuggingFaceCausalLM(str(tmp_path))


def test_a_hub_name_without_network_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        ConfigError, match=r"could not load model config model.name=no-such-org/no-such-model .*offline"
    ):
        HuggingFaceCausalLM("no-such-org/no-such-model")


def test_a_folder_asking_for_its_own_code_is_refused_without_running_it(tmp_path: Path) -> None:
    """A config.json with `auto_map` would import modelling code from the folder: trust_remote_code stays off."""
    folder = tmp_path / "remote-code"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "config.json").write_text(
        json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig"}, "architectures": ["Evil"]})
    )
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('code ran')\n")
    with pytest.raises(ConfigError, match="contains custom code"):
        HuggingFaceCausalLM(str(folder))
    assert not marker.exists()


def test_training_flops_per_token_reads_depth_and_width_from_the_config(tiny_gpt2: tuple[Path, object]) -> None:
    from trainscope.models.flops import training_flops_per_token

    folder, _ = tiny_gpt2
    model = HuggingFaceCausalLM(str(folder), pretrained=True)
    parameters = sum(p.numel() for p in model.parameters()) - 32 * 16  # without the position embedding
    assert training_flops_per_token(model, 32) == 6 * parameters + 12 * 2 * 16 * 32
