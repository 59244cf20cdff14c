"""Tokenizers and texts for language-model tests, made locally with the `tokenizers` library (never the Hub)."""

from __future__ import annotations

from pathlib import Path

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
