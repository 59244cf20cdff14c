"""Tokenizers for `data=text`: text to token ids and back, stored with the run so generation needs nothing else.

`data.tokenizer=char` (the default): one token per character, the vocabulary read from the text itself (sorted,
so the same text always gives the same ids), as char-rnn and nanoGPT's `shakespeare_char` do. A run's
`tokenizer/` folder of a char run (`data.tokenizer=<run_dir>/tokenizer`) keeps that run's vocabulary, so a model
fine-tuned on another text (`model.init_from=<run_dir>`) reads the same ids its embeddings were trained on.
Anything else is a Hugging Face tokenizer by Hub name (`gpt2`, needs the network once) or by a local folder
written by `save_pretrained` (offline); `transformers` is imported only then (`pip install 'trainscope[lm]'`).

A run saves its tokenizer into `<run_dir>/tokenizer/` (`Tokenizer.save`), and `trainscope-generate` and
`eval.py` read it back from there (`load_tokenizer`): a run directory is self-contained, also when the text or
the Hub is gone. Loading never runs code (`trust_remote_code=False`), because a run directory is untrusted input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from trainscope.config.hub import hub_load_error, hub_source
from trainscope.core.errors import CheckpointError, ConfigError, DataError

CHAR_TOKENIZER = "char"
CHAR_VOCABULARY_FILE = "char_vocabulary.json"
"""In `<run_dir>/tokenizer/`: the characters of a `char` tokenizer, in id order."""


class Tokenizer(Protocol):
    """What the text data, generation and the run directory need of a tokenizer."""

    name: str
    vocab_size: int
    separator_id: int | None  # put between files of a folder (GPT-2's <|endoftext|>); None: files are joined as is

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: Sequence[int]) -> str: ...

    def fingerprint(self) -> str:
        """Changes whenever the ids of some text would: part of the token cache's key."""
        ...

    def save(self, folder: Path) -> None: ...


class CharTokenizer:
    """One id per character, in sorted order of the characters the text holds."""

    name = CHAR_TOKENIZER
    separator_id = None

    def __init__(self, characters: str, origin: str = "read from the training text") -> None:
        if not characters:
            raise DataError("a char tokenizer needs at least one character")
        self.characters = "".join(sorted(set(characters)))
        self.ids = {character: index for index, character in enumerate(self.characters)}
        self.vocab_size = len(self.characters)
        self.origin = origin  # where the vocabulary came from, for the error of a character it lacks

    def encode(self, text: str) -> list[int]:
        try:
            return [self.ids[character] for character in text]
        except KeyError as missing:
            raise DataError(
                f"character {missing.args[0]!r} is not in this char tokenizer's vocabulary of {self.vocab_size} "
                f"characters ({self.origin}); use only characters the vocabulary holds"
            ) from None

    def decode(self, tokens: Sequence[int]) -> str:
        return "".join(self.characters[int(token)] for token in tokens)

    def fingerprint(self) -> str:
        return f"char:{hashlib.sha256(self.characters.encode()).hexdigest()[:16]}"

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHAR_VOCABULARY_FILE).write_text(json.dumps({"characters": self.characters}))


class HuggingFaceTokenizer:
    """A transformers tokenizer (`AutoTokenizer`), its special tokens never added to the text."""

    def __init__(self, name: str, key: str = "data.tokenizer") -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise ConfigError(
                f"{key}={name} is a Hugging Face tokenizer and needs transformers: pip install 'trainscope[lm]'"
            ) from None
        source = hub_source(key, name)
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise hub_load_error(key, source, "tokenizer", error) from None
        self.name = name
        self.vocab_size = len(self.tokenizer)  # with its added tokens (tokenizer.vocab_size leaves them out)
        self.separator_id = self.tokenizer.eos_token_id

    def encode(self, text: str) -> list[int]:
        # verbose=False: a corpus is longer than the model_max_length transformers would warn about
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode([int(token) for token in tokens]))

    def fingerprint(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        state = backend.to_str() if backend is not None else json.dumps(sorted(self.tokenizer.get_vocab().items()))
        return f"hf:{hashlib.sha256(state.encode()).hexdigest()[:16]}"

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(str(folder))


def load_tokenizer(folder: Path) -> Tokenizer:
    """The tokenizer a run saved (`Tokenizer.save`); the folder is untrusted input, read as data only."""
    if not folder.is_dir():
        raise CheckpointError(f"{folder} does not exist: this run saved no tokenizer (was it trained on data=text?)")
    vocabulary = folder / CHAR_VOCABULARY_FILE
    if vocabulary.is_file():
        return CharTokenizer(_saved_characters(vocabulary, CheckpointError), origin=f"saved in {folder}")
    try:
        return HuggingFaceTokenizer(str(folder), key="tokenizer")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None


def named_tokenizer(name: str) -> Tokenizer | None:
    """The tokenizer `data.tokenizer=<name>` fixes before the text is read; None for `char`, whose vocabulary is
    the text's own. A folder holding a char vocabulary (a char run's `tokenizer/`) gives that vocabulary."""
    if name == CHAR_TOKENIZER:
        return None
    vocabulary = Path(name).expanduser() / CHAR_VOCABULARY_FILE
    if vocabulary.is_file():
        return CharTokenizer(_saved_characters(vocabulary, ConfigError), origin=f"data.tokenizer={name}")
    return HuggingFaceTokenizer(name)


def _saved_characters(vocabulary: Path, error_type: type[Exception]) -> str:
    """The characters of a saved char vocabulary (untrusted: plain JSON, checked)."""
    try:
        characters = json.loads(vocabulary.read_text(encoding="utf-8"))["characters"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise error_type(f"{vocabulary} is corrupt ({error}); it is the run's char vocabulary") from None
    if not isinstance(characters, str) or not characters:
        raise error_type(f"{vocabulary} is corrupt (no characters); it is the run's char vocabulary")
    return characters
