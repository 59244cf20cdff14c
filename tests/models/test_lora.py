"""`finetune.lora`: PEFT's LoRA on `model=gpt` and on a tiny local Hugging Face GPT-2 trains only the adapters,
lowers the validation loss, and `trainscope-export merged=true` writes plain weights that compute the same; a
target that is no layer, or PEFT not installed, is one line."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from tests.helpers.text import make_language_model_run, train_next_token
from trainscope.callbacks.freezing import Freezing
from trainscope.cli.export import main as export_main
from trainscope.config.groups.finetune import FinetuneConfig, LoraConfig
from trainscope.core.checkpoint_io import save_checkpoint
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import SAVED_CONFIG
from trainscope.data.text import BUNDLED_SHAKESPEARE, build_text_data
from trainscope.models import GPT, HuggingFaceCausalLM, SmallCNN
from trainscope.models.init_from import load_initial_weights
from trainscope.models.lora import add_lora, merged_state_dict

pytest.importorskip("peft")  # the finetune extra, in .[test]

SIZES = {"n_layer": 2, "n_head": 2, "n_embd": 32}


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory):
    return build_text_data(
        path=BUNDLED_SHAKESPEARE, tokenizer="char", block_size=32, batch_size=16, val_fraction=0.1,
        test_fraction=0.0, split_seed=0, cache_dir=tmp_path_factory.mktemp("token-cache"), device="cpu", seed=0,
    )  # fmt: skip


def val_loss(model: torch.nn.Module, text) -> float:
    with torch.no_grad():
        batches = itertools.islice(text.val.iter_from(0), 8)
        losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item() for x, y in batches]
    return sum(losses) / len(losses)


def train_adapters(model: torch.nn.Module, text, steps: int = 40) -> None:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    train_next_token(model, text.train, optimizer, steps)


def adapter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if ".lora_" in name)


@pytest.mark.slow
def test_lora_on_a_pretrained_gpt_run_trains_only_adapters_and_its_merged_export_computes_the_same(
    tmp_path: Path, text
) -> None:
    pretrained = make_language_model_run(tmp_path / "pretrained", steps=30, **SIZES)
    torch.manual_seed(0)
    model = GPT(vocab_size=text.vocab_size, block_size=32, **SIZES)
    load_initial_weights(model, str(pretrained))  # model.init_from=<run dir> for a language model
    lora = LoraConfig(target_modules=("qkv",), r=4, alpha=8)
    add_lora(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == adapter_count(model) == 2 * 4 * (32 + 3 * 32)  # per block: A [4, 32] and B [96, 4]
    base = model.blocks[0].attention.qkv.base_layer.weight.detach().clone()
    before = val_loss(model, text)
    train_adapters(model, text)
    after = val_loss(model, text)
    assert after < before, f"val loss {before:.3f} -> {after:.3f}"
    assert torch.equal(model.blocks[0].attention.qkv.base_layer.weight, base), "a base weight changed"

    run = tmp_path / "adapted"
    (run / SAVED_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save({"finetune": {"lora": {"target_modules": ["qkv"], "r": 4, "alpha": 8}}}, run / SAVED_CONFIG)
    freezing = Freezing(FinetuneConfig.from_config({"lora": {"target_modules": ["qkv"], "r": 4, "alpha": 8}}), model)

    class Checkpointed:
        def state_dict(self) -> dict[str, object]:
            return {"model": model.state_dict(), "callbacks": {"finetune": freezing.state_dict()}}

    save_checkpoint(run, Checkpointed(), config_hash="test")  # type: ignore[arg-type]
    export_main([f"run={run}", "merged=true", "checkpoint=last"])
    plain = GPT(vocab_size=text.vocab_size, block_size=32, **SIZES)
    plain.load_state_dict(torch.load(run / "export" / "merged.pt", weights_only=True))  # strict: no adapter keys
    inputs, _ = next(iter(text.val.iter_from(0)))
    with torch.no_grad():
        torch.testing.assert_close(plain(inputs), model(inputs), atol=1e-5, rtol=1e-4)


def test_lora_on_a_tiny_local_hugging_face_gpt2_trains_only_adapters_and_merges_its_conv1d_layers(
    tmp_path: Path, text
) -> None:
    import transformers

    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=text.vocab_size)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "tiny-gpt2")
    model = HuggingFaceCausalLM(name=str(tmp_path / "tiny-gpt2"), pretrained=True)
    lora = LoraConfig(target_modules=("c_attn", "c_proj"), r=2, alpha=4)
    add_lora(model, lora)
    # c_attn: 16 -> 48, attn.c_proj: 16 -> 16, mlp.c_proj: 64 -> 16 (GPT-2's Conv1D layers), in each of 2 blocks
    expected = 2 * 2 * ((16 + 48) + (16 + 16) + (64 + 16))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == adapter_count(model) == expected
    before = val_loss(model, text)
    train_adapters(model, text, steps=30)
    assert val_loss(model, text) < before
    freezing = Freezing(FinetuneConfig.from_config({"lora": {"target_modules": ["c_attn"]}}), model)
    merged = merged_state_dict(model.state_dict(), lora, freezing.state_dict()["lora_transposed"])
    plain = HuggingFaceCausalLM(name=str(tmp_path / "tiny-gpt2"))
    plain.load_state_dict(merged)
    inputs, _ = next(iter(text.val.iter_from(0)))
    model.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(inputs), model(inputs), atol=1e-5, rtol=1e-4)


def test_a_target_that_is_no_layer_is_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        add_lora(SmallCNN(input_shape=[1, 12, 12], num_classes=3), LoraConfig(target_modules=("qkv",)))
    assert str(refused.value).startswith(
        "finetune.lora.target_modules: 'qkv' names no Linear or Conv2d layer of SmallCNN; name one of its layers or "
        "their last part, e.g. features.0, features.4, classifier.1, classifier.4"
    )


def test_without_peft_lora_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # as if not installed: `import peft` raises ImportError
    with pytest.raises(
        ConfigError, match=r"finetune.lora needs the peft package: pip install 'trainscope\[finetune\]'"
    ):
        add_lora(SmallCNN(input_shape=[1, 12, 12], num_classes=3), LoraConfig(target_modules=("0",)))
