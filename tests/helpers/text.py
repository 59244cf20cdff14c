"""Tokenizers and texts for language-model tests, made locally with the `tokenizers` library (never the Hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainscope.data.text import BUNDLED_SHAKESPEARE

END_OF_TEXT = "<|endoftext|>"


def save_bpe_tokenizer(folder: Path, vocab_size: int = 300, text: str | None = None) -> Path:
    """A byte-level BPE tokenizer (GPT-2's kind, with an <|endoftext|> token) trained on a slice of Shakespeare
    and saved with save_pretrained, as `data.tokenizer=<folder>` reads it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[END_OF_TEXT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator([text or BUNDLED_SHAKESPEARE.read_text()[:50_000]], trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END_OF_TEXT).save_pretrained(str(folder))
    return folder


def save_word_tokenizer(folder: Path, num_words: int) -> Path:
    """A word-level tokenizer over the words w0 ... w<num_words - 1> (and [UNK]): any vocabulary size, at once."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocabulary = {f"w{index}": index for index in range(num_words)} | {"[UNK]": num_words}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(str(folder))
    return folder


def make_language_model_run(run_dir: Path, steps: int = 60, **gpt_sizes: int) -> Path:
    """A run directory as a `model=gpt` run on Shakespeare leaves it: `.hydra/config.yaml`, `tokenizer/` and
    `checkpoints/last.pt` of a GPT trained `steps` AdamW steps by a plain loop over `data.text`'s batches.

    Until the training loop takes a language-modelling task this is how the tests get a trained language model
    run; the files are the ones `trainscope-generate` reads.
    """
    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from trainscope.config.paths import config_dir
    from trainscope.config.resolvers import register_resolvers
    from trainscope.core.checkpoint_io import save_checkpoint
    from trainscope.core.run_dir import SAVED_CONFIG, TOKENIZER_DIR
    from trainscope.data.text import build_text_data
    from trainscope.models import GPT

    register_resolvers()
    sizes = {"n_layer": 2, "n_head": 2, "n_embd": 32, **gpt_sizes}
    overrides = ["model=gpt", "trainer.device=cpu", *(f"model.{key}={value}" for key, value in sizes.items())]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.data = {"path": str(BUNDLED_SHAKESPEARE), "tokenizer": "char", "block_size": 32}
    data = build_text_data(
        path=BUNDLED_SHAKESPEARE, tokenizer="char", block_size=32, batch_size=16, val_fraction=0.1,
        test_fraction=0.0, split_seed=0, cache_dir=run_dir.parent / "token-cache", device="cpu", seed=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT(vocab_size=data.vocab_size, block_size=32, **sizes)
    train_next_token(model, data.train, torch.optim.AdamW(model.parameters(), lr=3e-3), steps)

    class Weights:
        def state_dict(self) -> dict[str, object]:
            return {"model": model.state_dict()}

        def load_state_dict(self, state: dict[str, object]) -> None:
            raise NotImplementedError

    (run_dir / SAVED_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / SAVED_CONFIG).write_text(OmegaConf.to_yaml(cfg))
    data.tokenizer.save(run_dir / TOKENIZER_DIR)
    save_checkpoint(run_dir, Weights(), config_hash="test")
    return run_dir


def train_next_token(model: Any, source: Any, optimizer: Any, steps: int) -> None:
    """`steps` plain next-token steps over `source.batch_at(step)`: the few steps a test's model needs before it
    is saved as "pretrained" or its adapters are compared, without the Trainer."""
    import torch.nn.functional as F

    for step in range(steps):
        inputs, targets = source.batch_at(step)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
