"""data=text: a corpus tokenized once into a memory-mapped cache, split contiguously, batched from (seed, step)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.helpers.text import save_bpe_tokenizer, save_word_tokenizer
from trainscope.core.errors import ConfigError, DataError
from trainscope.data.text import (
    BUNDLED_SHAKESPEARE,
    BlockBatches,
    RandomWindowBatches,
    TextData,
    build_text_data,
    check_model_fits_text,
    token_cache_path,
    tokenize_corpus,
)
from trainscope.data.token_cache import token_dtype
from trainscope.data.tokenizer import CharTokenizer

LINES = "".join(f"line {index}: the quick brown fox jumps over the lazy dog\n" for index in range(200))


def text_data(path: Path, cache_dir: Path | None, **overrides: Any) -> TextData:
    options: dict[str, Any] = {
        "path": path,
        "tokenizer": "char",
        "block_size": 16,
        "batch_size": 4,
        "val_fraction": 0.1,
        "test_fraction": 0.0,
        "split_seed": 0,
        "cache_dir": cache_dir,
        "device": "cpu",
        "seed": 0,
    }
    return build_text_data(**{**options, **overrides})


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(LINES)
    return path


def test_the_bundled_shakespeare_is_tinyshakespeare_with_its_65_characters(tmp_path: Path) -> None:
    data = text_data(BUNDLED_SHAKESPEARE, tmp_path, block_size=64, batch_size=12)
    assert len(BUNDLED_SHAKESPEARE.read_text()) == 1_115_394
    assert data.vocab_size == 65
    assert len(data.train.tokens) + len(data.val.tokens) == 1_115_394
    assert data.tokenizer.decode(data.train.tokens[:14].tolist()) == "First Citizen:"


def test_the_corpus_is_tokenized_once_then_memory_mapped_from_the_cache(corpus: Path, tmp_path: Path) -> None:
    first = tokenize_corpus(corpus, "char", tmp_path / "cache")
    second = tokenize_corpus(corpus, "char", tmp_path / "cache")
    assert not first.from_cache and second.from_cache
    assert isinstance(second.tokens, np.memmap) and second.tokens.dtype == np.uint16
    np.testing.assert_array_equal(first.tokens, second.tokens)
    assert second.tokenizer.decode(second.tokens.tolist()) == LINES  # the char vocabulary came with the cache
    assert token_cache_path(tmp_path / "cache", corpus, "char").is_file()


def test_a_changed_file_is_tokenized_again(corpus: Path, tmp_path: Path) -> None:
    tokenize_corpus(corpus, "char", tmp_path)
    corpus.write_text(LINES.upper())
    again = tokenize_corpus(corpus, "char", tmp_path)
    assert not again.from_cache
    assert again.tokenizer.decode(again.tokens.tolist()) == LINES.upper()


def test_an_altered_or_torn_cache_is_tokenized_again_with_a_warning(
    corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = tokenize_corpus(corpus, "char", tmp_path).tokens.copy()
    cache = token_cache_path(tmp_path, corpus, "char")
    content = bytearray(cache.read_bytes())
    content[10] ^= 0xFF
    cache.write_bytes(bytes(content))
    with caplog.at_level(logging.WARNING):
        altered = tokenize_corpus(corpus, "char", tmp_path)
    assert not altered.from_cache and "does not match its checksum" in caplog.text
    np.testing.assert_array_equal(altered.tokens, expected)
    cache.write_bytes(cache.read_bytes()[:100])  # a torn write
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        torn = tokenize_corpus(corpus, "char", tmp_path)
    assert not torn.from_cache and "ignoring unreadable token cache" in caplog.text
    np.testing.assert_array_equal(torn.tokens, expected)
    assert tokenize_corpus(corpus, "char", tmp_path).from_cache  # rewritten intact


def test_a_cache_that_cannot_be_written_trains_from_memory(
    corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # the cache folder cannot be created under a file, even as root
    with caplog.at_level(logging.WARNING):
        corpus_tokens = tokenize_corpus(corpus, "char", blocker / "cache")
    assert "could not write token cache" in caplog.text
    assert not isinstance(corpus_tokens.tokens, np.memmap)
    assert corpus_tokens.tokenizer.decode(corpus_tokens.tokens.tolist()) == LINES


def test_a_folder_of_txt_files_is_one_corpus_in_sorted_order(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "two.txt").write_text("second\n")
    (folder / "a.txt").write_text("first\n")
    (folder / "notes.md").write_text("not part of it")
    corpus_tokens = tokenize_corpus(folder, "char", tmp_path / "cache")
    assert corpus_tokens.tokenizer.decode(corpus_tokens.tokens.tolist()) == "first\nsecond\n"
    (folder / "c.txt").write_text("third\n")
    assert not tokenize_corpus(folder, "char", tmp_path / "cache").from_cache  # an added file counts


def test_a_hugging_face_tokenizer_separates_files_with_its_end_of_text_token(tmp_path: Path) -> None:
    tokenizer = save_bpe_tokenizer(tmp_path / "bpe")
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "a.txt").write_text("To be, or not to be")
    (folder / "b.txt").write_text("that is the question")
    corpus_tokens = tokenize_corpus(folder, str(tokenizer), tmp_path / "cache")
    assert corpus_tokens.tokenizer.decode(corpus_tokens.tokens.tolist()) == (
        "To be, or not to be<|endoftext|>that is the question"
    )
    assert tokenize_corpus(folder, str(tokenizer), tmp_path / "cache").from_cache


def test_another_tokenizer_gets_its_own_cache(corpus: Path, tmp_path: Path) -> None:
    tokenizer = save_bpe_tokenizer(tmp_path / "bpe")
    chars = tokenize_corpus(corpus, "char", tmp_path / "cache")
    bpe = tokenize_corpus(corpus, str(tokenizer), tmp_path / "cache")
    assert not bpe.from_cache and len(bpe.tokens) < len(chars.tokens)
    assert tokenize_corpus(corpus, "char", tmp_path / "cache").from_cache


def test_a_char_runs_tokenizer_folder_keeps_its_vocabulary_for_another_text(corpus: Path, tmp_path: Path) -> None:
    pangram = "the quick brown fox jumps over the lazy dog"
    pretrained = CharTokenizer(f"{pangram}\n:0123456789{pangram.upper()}")
    pretrained.save(tmp_path / "run" / "tokenizer")
    other = tmp_path / "other.txt"
    other.write_text(LINES.upper().replace("LINE", "line"))  # another text: a different set of characters
    data = text_data(other, tmp_path / "cache", tokenizer=str(tmp_path / "run" / "tokenizer"))
    assert data.vocab_size == pretrained.vocab_size == len(data.tokenizer.characters)
    assert data.tokenizer.encode("line 7: THE") == pretrained.encode("line 7: THE")  # the ids the model learned
    assert tokenize_corpus(other, str(tmp_path / "run" / "tokenizer"), tmp_path / "cache").from_cache
    assert text_data(other, tmp_path / "cache").vocab_size != pretrained.vocab_size  # char: the text's own


def test_a_character_the_runs_vocabulary_lacks_and_a_corrupt_one_are_one_line(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run" / "tokenizer"
    CharTokenizer("line 0123456789:\n").save(folder)
    with pytest.raises(DataError, match=rf"character 't' is not in .* 17 characters \(data.tokenizer={folder}\)"):
        text_data(corpus, tmp_path / "cache", tokenizer=str(folder))
    assert not list((tmp_path / "cache").rglob("*.tokens")), "a cache of a corpus that did not tokenize"
    (folder / "char_vocabulary.json").write_text('{"characters": ')
    with pytest.raises(ConfigError, match=r"char_vocabulary.json is corrupt"):
        text_data(corpus, tmp_path / "cache", tokenizer=str(folder))


def test_token_ids_above_65535_are_stored_as_uint32(tmp_path: Path) -> None:
    tokenizer = save_word_tokenizer(tmp_path / "words", num_words=70_000)
    corpus = tmp_path / "words.txt"
    corpus.write_text("w69999 w1 w65536 w0\n")
    tokens = tokenize_corpus(corpus, str(tokenizer), tmp_path / "cache")
    again = tokenize_corpus(corpus, str(tokenizer), tmp_path / "cache")
    assert again.from_cache and again.tokens.dtype == np.uint32
    assert again.tokens.tolist() == tokens.tokens.tolist() == [69999, 1, 65536, 0]
    assert token_dtype(65_536) == np.uint16 and token_dtype(65_537) == np.uint32


def test_the_splits_are_contiguous_train_then_val_then_test(corpus: Path, tmp_path: Path) -> None:
    data = text_data(corpus, tmp_path, val_fraction=0.1, test_fraction=0.05)
    assert data.test is not None
    everything = tokenize_corpus(corpus, "char", tmp_path).tokens
    joined = np.concatenate([data.train.tokens, data.val.tokens, data.test.tokens])
    np.testing.assert_array_equal(joined, everything)
    assert len(data.val.tokens) == round(len(everything) * 0.1)
    assert len(data.test.tokens) == round(len(everything) * 0.05)
    assert text_data(corpus, tmp_path).test is None  # test_fraction=0: no test split


def test_training_batches_are_windows_and_their_next_tokens_drawn_from_seed_and_step(corpus: Path) -> None:
    data = text_data(corpus, None)
    inputs, targets = data.train.batch_at(7)
    assert inputs.shape == targets.shape == (4, 16) and inputs.dtype == torch.int64
    assert inputs.is_contiguous() and targets.is_contiguous()  # .view() works on them
    torch.testing.assert_close(inputs[:, 1:], targets[:, :-1])
    tokens = torch.from_numpy(data.train.tokens.astype(np.int64))
    for row, target in zip(inputs, targets, strict=True):
        start = next(i for i in range(len(tokens) - 16) if torch.equal(tokens[i : i + 16], row))
        assert torch.equal(tokens[start + 1 : start + 17], target)
    same = text_data(corpus, None).train.batch_at(7)
    torch.testing.assert_close(same[0], inputs)
    other_seed = text_data(corpus, None, seed=1).train.batch_at(7)
    assert not torch.equal(other_seed[0], inputs)
    assert not torch.equal(data.train.batch_at(8)[0], inputs)


def test_a_resumed_epoch_continues_with_the_batches_of_the_uninterrupted_one(corpus: Path) -> None:
    source = text_data(corpus, None).train
    source.set_epoch(2)
    uninterrupted = [inputs for inputs, _ in source]
    resumed = text_data(corpus, None).train
    resumed.set_epoch(2)
    later = [inputs for inputs, _ in resumed.iter_from(3)]
    assert len(later) == len(uninterrupted) - 3
    for a, b in zip(later, uninterrupted[3:], strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(uninterrupted[0], source.batch_at(2 * len(source))[0])


def test_two_ranks_read_the_halves_of_the_one_process_batch_at_twice_the_size(corpus: Path) -> None:
    whole = RandomWindowBatches(text_data(corpus, None).train.tokens, 16, 8, seed=3, device=torch.device("cpu"))
    ranks = [
        RandomWindowBatches(whole.tokens, 16, 4, seed=3, device=torch.device("cpu"), rank=rank, world_size=2)
        for rank in (0, 1)
    ]
    for step in (0, 5):
        inputs, _ = whole.batch_at(step)
        torch.testing.assert_close(ranks[0].batch_at(step)[0], inputs[0::2])
        torch.testing.assert_close(ranks[1].batch_at(step)[0], inputs[1::2])
    assert len(ranks[0]) == len(whole)


def test_evaluation_reads_every_block_once_in_the_same_order_each_time(corpus: Path) -> None:
    data = text_data(corpus, None, val_fraction=0.3)
    val = data.val
    first = [(inputs.clone(), targets.clone()) for inputs, targets in val]
    again = list(val)
    for (a, _), (b, _) in zip(first, again, strict=True):
        torch.testing.assert_close(a, b)
    blocks = torch.cat([inputs for inputs, _ in first])
    num_blocks = (len(val.tokens) - 1) // 16
    assert blocks.shape == (num_blocks, 16)
    tokens = torch.from_numpy(val.tokens.astype(np.int64))
    expected = {tuple(tokens[i * 16 : i * 16 + 16].tolist()) for i in range(num_blocks)}
    assert {tuple(row.tolist()) for row in blocks} == expected
    assert sorted(val.starts.tolist()) == [index * 16 for index in range(num_blocks)]  # each block once
    ranks = [BlockBatches(val.tokens, 16, 4, 0, torch.device("cpu"), rank, 2) for rank in (0, 1)]
    assert sorted(ranks[0].starts.tolist() + ranks[1].starts.tolist()) == sorted(val.starts.tolist())
    assert not set(ranks[0].starts.tolist()) & set(ranks[1].starts.tolist())


# ----------------------------------------------------------------------------------------------------------
# bad input: one line each


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match=rf"data.path={empty} is empty; it must hold text"):
        text_data(empty, tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, r"is not UTF-8 text \(invalid start byte: byte b'\\x80'\)"),
        (b"ELF\x00\x01\x02 looks like text", r"is a binary file \(it holds NUL bytes\), not text"),
    ],
)
def test_a_binary_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(content)
    with pytest.raises(DataError, match=message):
        text_data(binary, tmp_path)
    assert not list(tmp_path.rglob("*.tokens*"))  # nothing half-written left in the cache


def test_a_text_shorter_than_one_block_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("too short\n")
    with pytest.raises(
        DataError, match=r"holds 9 tokens for training after data.val_fraction=0.1, fewer than one block of "
    ):
        text_data(short, tmp_path)


def test_a_validation_split_shorter_than_one_block_is_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.val_fraction=0.001 leaves \d+ tokens of .*; raise data.val_fraction"):
        text_data(corpus, tmp_path, val_fraction=0.001)


def test_a_missing_path_and_a_folder_without_txt_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.path=.*nope does not exist"):
        text_data(tmp_path / "nope", tmp_path)
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(DataError, match=r"holds no .txt files"):
        text_data(tmp_path / "empty-folder", tmp_path)


def test_a_tokenizer_folder_that_does_not_exist_is_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"data.tokenizer={tmp_path}/no-tokenizer does not exist"):
        text_data(corpus, tmp_path, tokenizer=str(tmp_path / "no-tokenizer"))


def test_a_vocabulary_larger_than_the_model_and_a_block_longer_than_its_context_are_refused(corpus: Path) -> None:
    data = text_data(corpus, None)
    with pytest.raises(ConfigError, match=rf"has {data.vocab_size} tokens but the model only 10 \(model.vocab_size\)"):
        check_model_fits_text(10, None, data)
    with pytest.raises(ConfigError, match=r"data.block_size=16 is longer than the model's context of 8 tokens"):
        check_model_fits_text(data.vocab_size, 8, data)
    check_model_fits_text(data.vocab_size, 16, data)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"block_size": 0}, r"data.block_size must be a positive integer, got 0"),
        ({"batch_size": "12"}, r"data.batch_size must be a positive integer, got '12'"),
        ({"val_fraction": 1.0}, r"data.val_fraction must be a number in \[0, 1\), got 1.0"),
        ({"val_fraction": 0.6, "test_fraction": 0.4}, r"leave no text for training"),
        ({"blocksize": 64}, r"data.blocksize is not a key of data=text; did you mean data.block_size\?"),
    ],
)
def test_bad_settings_are_one_line(corpus: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        text_data(corpus, None, **overrides)


RACE_SCRIPT = """
import sys
from pathlib import Path
from trainscope.data.text import tokenize_corpus
corpus = tokenize_corpus(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
print(len(corpus.tokens), corpus.tokenizer.decode(corpus.tokens.tolist()) == Path(sys.argv[1]).read_text())
"""


@pytest.mark.slow
def test_runs_tokenizing_the_same_corpus_at_once_share_one_intact_cache(tmp_path: Path) -> None:
    """A sweep's first trials all start by tokenizing: none may see another's half-written cache."""
    tokenizer = save_bpe_tokenizer(tmp_path / "bpe")
    cache = tmp_path / "cache"
    arguments = [sys.executable, "-c", RACE_SCRIPT, str(BUNDLED_SHAKESPEARE), str(tokenizer), str(cache)]
    runs = [subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], results
    assert len({stdout for stdout, _ in results}) == 1 and results[0][0].split()[1] == "True"
    assert not any("token cache" in stderr for _, stderr in results), results  # no warning: no torn read
    assert [path.name for path in (cache / "text").iterdir()] == [
        token_cache_path(cache, BUNDLED_SHAKESPEARE, str(tokenizer)).name
    ]
    assert tokenize_corpus(BUNDLED_SHAKESPEARE, str(tokenizer), cache).from_cache
