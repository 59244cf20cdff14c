"""Tokenizers of data=text: char (vocabulary from the text) and Hugging Face ones, saved with the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.text import save_bpe_tokenizer
from trainscope.core.errors import CheckpointError, ConfigError, DataError
from trainscope.data.tokenizer import CharTokenizer, HuggingFaceTokenizer, load_tokenizer


def test_char_ids_follow_the_sorted_characters_of_the_text() -> None:
    tokenizer = CharTokenizer("hello world")
    assert tokenizer.characters == " dehlorw" and tokenizer.vocab_size == 8
    assert tokenizer.encode("hold") == [3, 5, 4, 1]
    assert tokenizer.decode(tokenizer.encode("world hello")) == "world hello"


def test_a_character_outside_the_vocabulary_is_named() -> None:
    with pytest.raises(DataError, match=r"character 'Z' is not in this char tokenizer's vocabulary of 8 characters"):
        CharTokenizer("hello world").encode("hello Zorro")


def test_a_saved_char_tokenizer_loads_back_from_the_run_folder(tmp_path: Path) -> None:
    tokenizer = CharTokenizer("ROMEO: Wherefore art thou\n")
    tokenizer.save(tmp_path / "tokenizer")
    loaded = load_tokenizer(tmp_path / "tokenizer")
    assert isinstance(loaded, CharTokenizer)
    assert loaded.encode("ROMEO:\n") == tokenizer.encode("ROMEO:\n")
    assert loaded.fingerprint() == tokenizer.fingerprint()


@pytest.mark.slow  # over ~5 s: importing transformers and training a BPE tokenizer
def test_a_saved_hugging_face_tokenizer_loads_back_offline(tmp_path: Path) -> None:
    tokenizer = HuggingFaceTokenizer(str(save_bpe_tokenizer(tmp_path / "bpe")))
    assert tokenizer.vocab_size == 300 and tokenizer.separator_id == 0
    text = "JULIET: O Romeo, Romeo! wherefore art thou Romeo?"
    ids = tokenizer.encode(text)
    assert len(ids) < len(text) and tokenizer.decode(ids) == text
    tokenizer.save(tmp_path / "run" / "tokenizer")
    loaded = load_tokenizer(tmp_path / "run" / "tokenizer")
    assert loaded.encode(text) == ids and loaded.fingerprint() == tokenizer.fingerprint()


def test_a_run_without_a_tokenizer_and_a_corrupt_vocabulary_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"this run saved no tokenizer"):
        load_tokenizer(tmp_path / "tokenizer")
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "char_vocabulary.json").write_text('{"characters": ')
    with pytest.raises(CheckpointError, match=r"char_vocabulary.json is corrupt"):
        load_tokenizer(tmp_path / "tokenizer")
    (tmp_path / "tokenizer" / "char_vocabulary.json").write_text(json.dumps({"characters": 42}))
    with pytest.raises(CheckpointError, match=r"char_vocabulary.json is corrupt \(no characters\)"):
        load_tokenizer(tmp_path / "tokenizer")


def test_a_tokenizer_name_without_network_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"could not load tokenizer data.tokenizer=no-such-org/no-such-tokenizer"):
        HuggingFaceTokenizer("no-such-org/no-such-tokenizer")


def test_a_tokenizer_folder_asking_for_its_own_code_never_runs_it(tmp_path: Path) -> None:
    """With trust_remote_code off, transformers ignores `auto_map` and reads the files as data."""
    folder = save_bpe_tokenizer(tmp_path / "bpe")
    marker = tmp_path / "ran"
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('code ran')\n")
    tokenizer = HuggingFaceTokenizer(str(folder))
    assert not marker.exists()
    assert type(tokenizer.tokenizer).__module__.startswith("transformers.")
    assert tokenizer.decode(tokenizer.encode("To be")) == "To be"
