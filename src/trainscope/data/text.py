"""`data=text`: a UTF-8 text file or a folder of `.txt` files as batches of token blocks for a language model.

The corpus is tokenized once into the token cache (`trainscope.data.token_cache`) and memory-mapped; the token
stream is split contiguously, train first, then the last `val_fraction` for validation and the last
`test_fraction` for testing, so no block straddles two splits (a random split of blocks would put the same
sentences on both sides). Batches are `(inputs, targets)` of int64 tokens [B, block_size], the targets the
inputs shifted by one token.

- Training draws `batch_size` windows at random offsets, from `(seed, step)` alone (nanoGPT's `get_batch`, made
  reproducible): a resumed run sees exactly the batches an uninterrupted run would have, and a torchrun rank
  reads its own share of the batch the one-process run would draw at `world_size` times the batch size.
- Validation and testing read non-overlapping blocks, each token predicted once, in an order shuffled once
  by `split_seed`: `limit_val_batches` then evaluates the same representative sample at every validation
  and in every run of a sweep, so `val/loss` is comparable across them.

`BUNDLED_SHAKESPEARE` (tinyshakespeare, 1,115,394 characters, public domain; what char-rnn and nanoGPT train on)
ships in the package so a language model trains offline.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainscope.config.groups.data import TextDataConfig
from trainscope.core.errors import ConfigError, DataError
from trainscope.data.cache import files_fingerprint, one_line
from trainscope.data.seeding import TEXT_WINDOW_STREAM, cpu_generator
from trainscope.data.targets import ANY, TOKENS, target_mismatch
from trainscope.data.token_cache import read_token_cache, token_dtype, tokens_in_memory, write_token_cache
from trainscope.data.tokenizer import CHAR_TOKENIZER, CharTokenizer, Tokenizer, named_tokenizer

log = logging.getLogger(__name__)

BUNDLED_SHAKESPEARE = Path(__file__).resolve().parent.parent / "resources" / "tinyshakespeare" / "input.txt"
READ_CHUNK_CHARACTERS = 1 << 22  # ~4 MB of text at a time: a corpus never has to fit in memory as one string


# ----------------------------------------------------------------------------------------------------------
# the corpus: which files, read as text


def text_files(path: Path) -> tuple[list[Path], Path]:
    """The corpus files (one file, or every `.txt` under a folder in sorted order) and the folder names are
    relative to."""
    if path.is_file():
        return [path], path.parent
    if not path.exists():
        raise DataError(f"data.path={path} does not exist; point it at a UTF-8 text file or a folder of .txt files")
    try:
        files = sorted(file for file in path.rglob("*.txt") if file.is_file())
    except PermissionError as error:
        raise DataError(f"cannot read {error.filename or path}: permission denied; fix its permissions") from None
    if not files:
        raise DataError(f"data.path={path} holds no .txt files; put the text in <name>.txt files there")
    return files, path


def read_chunks(path: Path) -> Iterator[str]:
    """The file's text, ~4 MB at a time and cut at line ends (a tokenizer never sees a word split in two).

    A file that is not UTF-8, or holds NUL characters (a binary file that happens to decode), is one line.
    `utf-8-sig` drops a byte-order mark, which would otherwise become a character of the vocabulary.
    """
    try:
        with open(path, encoding="utf-8-sig") as handle:
            while chunk := handle.read(READ_CHUNK_CHARACTERS):
                chunk += handle.readline()
                if "\x00" in chunk:
                    raise DataError(f"{path} is a binary file (it holds NUL bytes), not text; data.path takes text")
                yield chunk
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text ({error.reason}: byte {error.object[error.start : error.start + 1]!r}); "
            "data.path takes UTF-8 text (convert other encodings with iconv -t UTF-8)"
        ) from None
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied; fix its permissions") from None


def _token_chunks(files: list[Path], tokenizer: Tokenizer) -> Iterator[list[int]]:
    """The corpus as token ids, file after file, the tokenizer's separator (if any) between two files."""
    for index, file in enumerate(files):
        if index and tokenizer.separator_id is not None:
            yield [tokenizer.separator_id]
        for chunk in read_chunks(file):
            yield tokenizer.encode(chunk)


# ----------------------------------------------------------------------------------------------------------
# tokenized once, cached


@dataclass(frozen=True)
class TokenizedCorpus:
    """Every token of the corpus (memory-mapped from the cache, or in memory) and the tokenizer that made them."""

    tokens: np.ndarray
    tokenizer: Tokenizer
    from_cache: bool


def token_cache_path(cache_dir: Path, path: Path, tokenizer: str) -> Path:
    """One cache file per corpus and tokenizer, named so that two corpora or two tokenizers never collide."""
    corpus_id = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    tokenizer_id = hashlib.sha256(tokenizer.encode()).hexdigest()[:8]
    return cache_dir / "text" / f"{path.stem}-{corpus_id}-{tokenizer_id}.tokens"


def tokenize_corpus(path: Path, tokenizer_name: str, cache_dir: Path | None) -> TokenizedCorpus:
    """The corpus at `path` tokenized with `data.tokenizer`: from the cache when every file is unchanged."""
    files, base = text_files(path)
    try:
        fingerprint = files_fingerprint(files, base)
    except OSError as error:
        raise DataError(f"cannot read {path}: {one_line(error)}") from None
    fixed = named_tokenizer(tokenizer_name)  # None: a char vocabulary read from this text
    key = {"files": fingerprint, "tokenizer": fixed.fingerprint() if fixed else CHAR_TOKENIZER}
    cache = token_cache_path(cache_dir, path, tokenizer_name) if cache_dir is not None else None
    cached = read_token_cache(cache, key) if cache is not None else None
    if cached is not None:
        tokenizer = fixed or CharTokenizer(str(cached.extra["characters"]))
        return TokenizedCorpus(cached.tokens, tokenizer, from_cache=True)

    tokenizer = fixed or _char_tokenizer(files, path)
    dtype = token_dtype(tokenizer.vocab_size)
    log.info("tokenizing %s with %s (%d files; once: later runs read the cache)", path, tokenizer_name, len(files))
    extra = {"characters": tokenizer.characters} if isinstance(tokenizer, CharTokenizer) else {}
    written = write_token_cache(cache, key, dtype, lambda: _token_chunks(files, tokenizer), extra) if cache else None
    tokens = written.tokens if written is not None else tokens_in_memory(dtype, _token_chunks(files, tokenizer))
    return TokenizedCorpus(tokens, tokenizer, from_cache=False)


def _char_tokenizer(files: list[Path], path: Path) -> CharTokenizer:
    """The characters of the whole corpus (train, val and test: a validation text may not hold a character the
    model has no id for), read in a first pass over the files."""
    characters: set[str] = set()
    for file in files:
        for chunk in read_chunks(file):
            characters.update(chunk)
    if not characters:
        raise DataError(f"data.path={path} is empty; it must hold text")
    return CharTokenizer("".join(characters))


# ----------------------------------------------------------------------------------------------------------
# contiguous splits


@dataclass(frozen=True)
class TokenSplits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_tokens(
    tokens: np.ndarray, val_fraction: float, test_fraction: float, block_size: int, path: Path
) -> TokenSplits:
    """[train | val | test] of the token stream; each split that is not empty holds at least one block."""
    total = len(tokens)
    if total == 0:
        raise DataError(f"data.path={path} is empty; it must hold text")
    num_val, num_test = round(total * val_fraction), round(total * test_fraction)
    train_end, val_end = total - num_val - num_test, total - num_test
    splits = TokenSplits(tokens[:train_end], tokens[train_end:val_end], tokens[val_end:])
    need = block_size + 1  # a block of inputs and its targets, one token further
    if len(splits.train) < need:
        after = f" after data.val_fraction={val_fraction}" if num_val else ""
        raise DataError(
            f"data.path={path} holds {len(splits.train)} tokens for training{after}, fewer than one block of "
            f"data.block_size={block_size} + 1; use a longer text or a smaller data.block_size"
        )
    for name, fraction, split in (("val", val_fraction, splits.val), ("test", test_fraction, splits.test)):
        if fraction > 0 and len(split) < need:
            raise DataError(
                f"data.{name}_fraction={fraction} leaves {len(split)} tokens of {path}, fewer than one block of "
                f"data.block_size={block_size} + 1; raise data.{name}_fraction, or set 0 for no {name} split"
            )
    return splits


# ----------------------------------------------------------------------------------------------------------
# batches


def _windows(
    tokens: np.ndarray, starts: np.ndarray, block_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) int64 [len(starts), block_size] on `device`: the windows at `starts`, shifted by one."""
    windows = torch.from_numpy(tokens[starts[:, None] + np.arange(block_size + 1)].astype(np.int64))
    if device.type == "cuda":  # pinned: the copy overlaps the previous step's kernels
        windows = windows.pin_memory()
    windows = windows.to(device, non_blocking=True)
    # contiguous: a loss or model that calls .view() on them (nanoGPT's does) must work
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


class TokenBatches:
    """What both text batch sources share: one split's tokens cut into blocks of `block_size`, `batch_size`
    blocks a batch on `device`, and the BatchSource iteration around `_batches`."""

    def __init__(
        self, tokens: np.ndarray, block_size: int, batch_size: int, device: torch.device, rank: int, world_size: int
    ) -> None:
        self.tokens = tokens
        self.block_size, self.batch_size, self.device = block_size, batch_size, device
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        raise NotImplementedError

    def _batches(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Nothing by default: evaluation reads the same blocks in the same order every time."""

    def iter_from(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not 0 <= batch_index <= len(self):
            raise ValueError(f"batch_index must be in [0, {len(self)}], got {batch_index}")
        return self._batches(batch_index)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)


class RandomWindowBatches(TokenBatches):
    """Training batches of `batch_size` windows at offsets drawn from `(seed, step)`: a BatchSource whose
    "epoch" is as many batches as the split has tokens, so the epoch-based loop and `resume=` work unchanged."""

    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(tokens, block_size, batch_size, device, rank, world_size)
        self.seed = seed
        self.num_samples = len(tokens) - block_size  # the windows there are, one per start offset
        self.epoch = 0

    def __len__(self) -> int:
        return max(1, len(self.tokens) // (self.batch_size * self.world_size * self.block_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number `step` of the run: this rank's share of `batch_size * world_size` drawn offsets."""
        generator = cpu_generator(TEXT_WINDOW_STREAM, self.seed, step)
        starts = torch.randint(self.num_samples, (self.batch_size * self.world_size,), generator=generator)
        return _windows(self.tokens, starts[self.rank :: self.world_size].numpy(), self.block_size, self.device)

    def _batches(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        first_step = self.epoch * len(self)  # resolved now: a later set_epoch must not change this iteration
        return (self.batch_at(first_step + index) for index in range(batch_index, len(self)))


class BlockBatches(TokenBatches):
    """Evaluation batches: the split's non-overlapping blocks, in one fixed order shuffled by `split_seed`;
    a torchrun rank takes every `world_size`-th block, so the ranks together evaluate each block once."""

    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        batch_size: int,
        split_seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(tokens, block_size, batch_size, device, rank, world_size)
        num_blocks = max(0, (len(tokens) - 1) // block_size)
        order = torch.randperm(num_blocks, generator=cpu_generator(TEXT_WINDOW_STREAM, split_seed, -1)).numpy()
        self.starts = order[rank::world_size] * block_size
        self.num_samples = len(self.starts)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def _batches(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in range(batch_index, len(self)):
            starts = self.starts[index * self.batch_size : (index + 1) * self.batch_size]
            yield _windows(self.tokens, starts, self.block_size, self.device)


# ----------------------------------------------------------------------------------------------------------
# the data of one run


@dataclass
class TextData:
    """A language model's data: batch sources of token blocks, and the tokenizer the model's vocabulary follows.

    It answers the questions the loop, the task and the loggers ask any data (`trainscope.core.view.DataFacts`):
    its inputs are token blocks, not images, and its targets are the next tokens, not labels.
    """

    train: RandomWindowBatches
    val: BlockBatches
    test: BlockBatches | None
    tokenizer: Tokenizer
    block_size: int
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    target_source: str = "the text's next tokens"

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.block_size,)

    @property
    def image_inputs(self) -> bool:
        return False

    def train_targets(self, split: Any) -> torch.Tensor:
        """Not held: a language model's targets are the text itself (no task needs them up front)."""
        raise ConfigError("the targets of text data are its next tokens; use task=language_modeling")

    def state_dict(self) -> dict[str, Any]:
        return {}  # the tokenizer is saved into the run directory, the batches follow from (seed, step)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


def build_text_data(
    *,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    targets: str = TOKENS,
    **keys: Any,
) -> TextData:
    """Tokenize (or map the cached tokens of) the corpus at `data.path`, split it, and batch each split.

    `keys` are the data option's keys, checked by `TextDataConfig` (`trainscope.config.groups.data`);
    `data=shakespeare_char` without `data.path` is the tinyshakespeare copy shipped in the package. Text holds
    next-token targets: a task that needs other `targets` is refused in one line.
    """
    config = TextDataConfig.from_config(
        {"dataset": "text", **keys}, seed=seed, rank=rank, world_size=world_size, targets=targets
    )
    if config.targets not in (TOKENS, ANY):
        raise target_mismatch(config.targets, f"data={config.dataset}", "text (next-token targets)", TOKENS)
    corpus_path = BUNDLED_SHAKESPEARE if config.path is None else config.path.expanduser()
    cache_dir = None if config.cache_dir is None else config.cache_dir.expanduser()
    corpus = tokenize_corpus(corpus_path, config.tokenizer, cache_dir)
    splits = split_tokens(corpus.tokens, config.val_fraction, config.test_fraction, config.block_size, corpus_path)
    target = torch.device(device)
    log.info(
        "%s: %d tokens (%d train, %d val, %d test), vocabulary %d%s",
        corpus_path,
        len(corpus.tokens),
        len(splits.train),
        len(splits.val),
        len(splits.test),
        corpus.tokenizer.vocab_size,
        " (from the cache)" if corpus.from_cache else "",
    )

    def blocks(tokens: np.ndarray) -> BlockBatches:
        return BlockBatches(tokens, config.block_size, config.batch_size, config.split_seed, target, rank, world_size)

    return TextData(
        train=RandomWindowBatches(splits.train, config.block_size, config.batch_size, seed, target, rank, world_size),
        val=blocks(splits.val),
        test=blocks(splits.test) if len(splits.test) else None,
        tokenizer=corpus.tokenizer,
        block_size=config.block_size,
    )


def check_model_fits_text(model_vocab_size: int, model_block_size: int | None, data: TextData) -> None:
    """The model must have an output for every token id and a position for every place in a block."""
    if data.vocab_size > model_vocab_size:
        raise ConfigError(
            f"the tokenizer ({data.tokenizer.name}) has {data.vocab_size} tokens but the model only "
            f"{model_vocab_size} (model.vocab_size); set model.vocab_size=null to size it from the data, "
            f"or at least {data.vocab_size}"
        )
    if model_block_size is not None and data.block_size > model_block_size:
        raise ConfigError(
            f"data.block_size={data.block_size} is longer than the model's context of {model_block_size} tokens "
            f"(model.block_size); lower data.block_size to at most {model_block_size}"
        )
