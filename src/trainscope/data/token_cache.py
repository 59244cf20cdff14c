"""The token cache: a text corpus tokenized once, then memory-mapped by every later run.

Tokenizing is the slow part of loading text (seconds per megabyte with a BPE tokenizer), so it happens once,
with the image cache's contract (`trainscope.data.cache`): the cache is keyed on the source files' names, sizes
and mtimes and on the tokenizer, carries a checksum of its token bytes, is written atomically, and a cache that
cannot be written (a read-only folder, a full disk) only costs the shortcut: the run trains from the tokens in
memory. A changed file, another tokenizer or an altered cache means tokenizing again, never wrong tokens.

The file is the raw token array (uint16 when the vocabulary fits in 65,536 ids, else uint32) followed by a JSON
trailer and its length, so `np.memmap` maps the tokens from offset 0 and only the pages a batch touches are read:
a corpus larger than memory trains as well as Shakespeare does.

    <tokens: num_tokens x dtype> <trailer: UTF-8 JSON> <trailer length: 8 bytes little-endian> <MAGIC: 8 bytes>
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from trainscope.core.run_dir import atomic_write
from trainscope.data.cache import one_line

log = logging.getLogger(__name__)

MAGIC = b"TSTOKEN1"
TOKEN_CACHE_VERSION = 1
CHECKSUM_CHUNK_TOKENS = 1 << 24


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type that holds every id: half the bytes of uint32 for any vocabulary up to 65,536."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


@dataclass(frozen=True)
class CachedTokens:
    """A cache file's tokens (memory-mapped, read-only) and what its trailer recorded beside them."""

    tokens: np.ndarray
    extra: dict[str, Any]


def _checksum(tokens: np.ndarray) -> int:
    checksum = 0
    for start in range(0, len(tokens), CHECKSUM_CHUNK_TOKENS):
        checksum = zlib.crc32(np.ascontiguousarray(tokens[start : start + CHECKSUM_CHUNK_TOKENS]).data, checksum)
    return checksum


def read_token_cache(path: Path, key: Any) -> CachedTokens | None:
    """The cached tokens at `path` if they were made from the sources `key` describes and are intact."""
    if not path.is_file():
        return None
    try:
        if path.stat().st_size < 16:
            raise ValueError("too short to be a token cache (a torn write)")
        with open(path, "rb") as handle:
            handle.seek(-16, 2)
            trailer_length, magic = int.from_bytes(handle.read(8), "little"), handle.read(8)
            if magic != MAGIC:
                raise ValueError("not a token cache file")
            handle.seek(-16 - trailer_length, 2)
            trailer = json.loads(handle.read(trailer_length).decode())
        if trailer.get("version") != TOKEN_CACHE_VERSION or trailer.get("key") != key:
            return None
        dtype, count = np.dtype(trailer["dtype"]), int(trailer["num_tokens"])
        if count * dtype.itemsize + trailer_length + 16 != path.stat().st_size:
            raise ValueError("its size does not match its trailer")
        tokens = np.memmap(path, dtype=dtype, mode="r", shape=(count,)) if count else np.zeros(0, dtype)
        if _checksum(tokens) != trailer.get("checksum"):
            log.warning("token cache %s does not match its checksum (altered on disk); tokenizing again", path)
            return None
        return CachedTokens(tokens, dict(trailer.get("extra", {})))
    except Exception as error:  # a broken cache is only a missed shortcut: tokenize again
        log.warning("ignoring unreadable token cache %s (%s); tokenizing again", path, one_line(error))
        return None


def write_token_cache(
    path: Path, key: Any, dtype: np.dtype, chunks: Callable[[], Iterable[list[int]]], extra: dict[str, Any]
) -> CachedTokens | None:
    """Stream the token `chunks` into the cache at `path` and map it; None (after a warning) when it cannot be
    written, and the caller tokenizes into memory instead.

    `chunks` is called once and may raise (a file that is not text): nothing is then left behind, and the error
    propagates. The tokens are streamed into a file of this process's own, then put in place atomically, so two
    runs tokenizing the same corpus at once (a sweep's first trials) never see each other's half-written file:
    the later one simply finds the cache the first one wrote.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as error:
        return _unwritable(path, key, error)
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            _write_tokens(handle, key, dtype, chunks(), extra)
        umask = os.umask(0)
        os.umask(umask)
        partial.chmod(0o666 & ~umask)  # as a plain open() would make it (mkstemp's 0600 hides it from others)
        atomic_write(path, partial)
    except OSError as error:
        return _unwritable(path, key, error)
    finally:
        partial.unlink(missing_ok=True)
    return read_token_cache(path, key)


def _write_tokens(
    handle: BinaryIO, key: Any, dtype: np.dtype, chunks: Iterable[list[int]], extra: dict[str, Any]
) -> None:
    count, checksum = 0, 0
    for chunk in chunks:
        array = np.asarray(chunk, dtype=dtype)
        handle.write(array.data)
        count, checksum = count + len(array), zlib.crc32(array.data, checksum)
    trailer = {
        "version": TOKEN_CACHE_VERSION,
        "key": key,
        "dtype": dtype.name,
        "num_tokens": count,
        "checksum": checksum,
        "extra": extra,
    }
    encoded = json.dumps(trailer).encode()
    handle.write(encoded + len(encoded).to_bytes(8, "little") + MAGIC)


def _unwritable(path: Path, key: Any, error: OSError) -> CachedTokens | None:
    """The cache another process wrote meanwhile, if there is one; else a warning and None."""
    written_by_another = read_token_cache(path, key) if path.is_file() else None
    if written_by_another is None:
        log.warning(
            "could not write token cache %s (%s); training from memory, tokenizing again next run",
            path,
            one_line(error),
        )
    return written_by_another


def tokens_in_memory(dtype: np.dtype, chunks: Iterable[list[int]]) -> np.ndarray:
    """The tokens as one array, without a cache file."""
    arrays = [np.asarray(chunk, dtype=dtype) for chunk in chunks]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype)
