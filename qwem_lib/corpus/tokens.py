"""A corpus read once: its distinct words, counts and token stream cached as ``.npz``
under ``cache_dir()/"tokens"``, so another ``vocab_size`` takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.errors import QwemError
from ..runtime.options import check_int
from . import data
from .files import DEFAULT_CHUNK_SIZE
from .text import _check_scheme, _iter_buffers
from .vocabulary import TokenData, Vocabulary, _canonical_order, _Tokeniser


@dataclass(frozen=True, eq=False)
class _Counted:
    """The vocabulary-size independent result of reading a corpus (canonical order:
    id 0 is the most frequent word)."""

    words: list[bytes]
    counts: np.ndarray  # (n_words,) int64, descending
    ids: np.ndarray  # (n_tokens,) int32, canonical ids
    n_tokens: int


def _read_and_count(path: Path, fmt: str, scheme: str, min_article_tokens: int,
                    chunk_size: int, progress: bool) -> _Counted:
    tokeniser = _Tokeniser()
    for buf in _iter_buffers(path, fmt, scheme, min_article_tokens, chunk_size,
                             progress):
        tokeniser.add(buf)
    words, ids = tokeniser.result()
    # In slices: bincount and fancy indexing convert int32 indices to int64 copies.
    slices = [slice(lo, lo + (1 << 23)) for lo in range(0, len(ids), 1 << 23)]
    counts = np.zeros(len(words), np.int64)
    for part in slices:
        counts += np.bincount(ids[part], minlength=len(words))
    order = _canonical_order(words, counts)
    new_id = np.empty(len(words), np.int32)
    new_id[order] = np.arange(len(words), dtype=np.int32)
    for part in slices:  # renumber in place
        ids[part] = new_id[ids[part]]
    return _Counted([words[i] for i in order], counts[order], ids, len(ids))


def _no_tokens(path, fmt: str, scheme: str, min_article_tokens: int) -> QwemError:
    return QwemError(f"{path} has no tokens after normalisation (scheme {scheme!r}, "
                     f"format {fmt!r}, min_article_tokens={min_article_tokens}); check "
                     "that it is the right file and format, or lower "
                     "min_article_tokens")


def _cache_key(path: Path, fmt: str, scheme: str, min_article_tokens: int) -> dict:
    """What the counted tokens of a corpus file depend on (with the code of this
    module, :mod:`qwem_lib.runtime.cache`): its content, not its name or time stamps."""
    from ..runtime.cache import file_identity

    return {"corpus": file_identity(path), "format": fmt, "scheme": scheme,
            "min_article_tokens": min_article_tokens}


def _arrays(counted: _Counted, meta: dict) -> dict:
    blob = np.frombuffer(b"\n".join(counted.words), dtype=np.uint8)
    return {"words": blob, "counts": counted.counts, "ids": counted.ids,
            "n_tokens": np.int64(counted.n_tokens), "meta": np.array(json.dumps(meta))}


def _counted(arrays: dict, vocab_size: int) -> _Counted:
    """The cached arrays as counts (only the first ``vocab_size`` words decoded)."""
    counts = arrays["counts"]
    words = (arrays["words"].tobytes().split(b"\n", vocab_size)[:vocab_size]
             if len(counts) else [])
    return _Counted(words, counts, arrays["ids"], int(arrays["n_tokens"]))


def _file_arrays(path: Path, fmt: str, scheme: str, min_article_tokens: int,
                 source: str, *, cache: bool, progress: bool,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict:
    """The vocabulary-independent arrays of one file (cached when ``cache``)."""
    from ..runtime import cache as cache_mod

    def count() -> dict:
        counted = _read_and_count(path, fmt, scheme, min_article_tokens, chunk_size,
                                  progress)
        return _arrays(counted, {"source": source, "n_words": len(counted.words),
                                 "n_tokens": counted.n_tokens})

    if not cache:
        return count()
    arrays, _hit = cache_mod.cached(
        "tokens", _cache_key(path, fmt, scheme, min_article_tokens), count,
        code=("qwem_lib.corpus",))
    return arrays


@dataclass(frozen=True, eq=False)
class FileCounts:
    """One corpus file read on its own: all its distinct words and their counts,
    and its tokens as ids into them (ids in the file's own canonical order: id 0
    is its most frequent word).  What a shard contributes to a sharded corpus."""

    words: list[bytes]
    counts: np.ndarray  # (n_words,) int64, descending
    ids: np.ndarray  # (n_tokens,) int32
    n_tokens: int


def read_file_counts(path: str | os.PathLike, format: str, scheme: str,
                     min_article_tokens: int = 0, *, cache: bool = True,
                     progress: bool = False,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> FileCounts:
    """Read one corpus file into :class:`FileCounts` (the cache of
    :func:`load_tokens`, keyed by the file's content, is read and filled).

    ``format`` is the file's (``data.FORMATS``), ``scheme`` a resolved one
    (not ``"auto"``); ``min_article_tokens`` as for :func:`load_tokens` (0 for
    plain text).
    """
    path = Path(path)
    source = (f"{path} (format={format}, scheme={scheme}, "
              f"min_article_tokens={min_article_tokens})")
    arrays = _file_arrays(path, format, scheme, min_article_tokens, source,
                          cache=cache, progress=progress, chunk_size=chunk_size)
    counts = arrays["counts"]
    words = arrays["words"].tobytes().split(b"\n") if len(counts) else []
    return FileCounts(words, counts, arrays["ids"], int(arrays["n_tokens"]))


def _resolve_scheme(scheme: str, spec: data.CorpusSpec) -> str:
    if scheme == "auto":
        return "none" if spec.normalised else "paper"
    _check_scheme(scheme)
    return scheme


def load_tokens(corpus: str | os.PathLike, vocab_size: int, scheme: str = "auto",
                min_article_tokens: int = 0, cache: bool = True, progress: bool = True,
                *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                download: bool = True) -> TokenData:
    """Read a corpus into in-vocabulary token ids (paper's setup).

    Parameters
    ----------
    corpus : str or path
        A registry name (see :data:`qwem_lib.corpus.data.CORPORA`) or a file.
    vocab_size : int
        ``V``: keep the ``V`` most frequent words (ties: alphabetical); the paper
        uses 10^4.
    scheme : {'auto', 'paper', 'text8', 'none'}
        Normalisation (see :func:`normalise`).  ``auto``: ``none`` (split only) for
        registry corpora that are already normalised, else ``paper``.
    min_article_tokens : int
        Drop articles with fewer tokens (the paper: 500).  Only for
        ``wikiextractor``/``mediawiki`` corpora; ignored, with a warning, for plain
        text.
    cache : bool
        Reuse / write the vocabulary-independent counts in
        ``cache_dir()/"tokens"`` (:mod:`qwem_lib.runtime.cache`), keyed by the file's
        content, the format, scheme and article filter, and this module's code.
    progress : bool
        Show a progress bar while reading.
    chunk_size : int
        Bytes of decompressed text per read (results do not depend on it).
    download : bool
        Allow downloading a registry corpus that has a URL.

    Returns
    -------
    TokenData
        ``ids`` (N,) int32 with out-of-vocabulary tokens removed, ``vocab`` of size
        ``V``, ``n_tokens`` before removal.
    """
    vocab_size = check_int(vocab_size, "vocab_size", "--vocab-size")
    min_article_tokens = check_int(min_article_tokens, "min_article_tokens",
                                   "--min-article-tokens", lo=0)
    files = data.resolve_corpora(corpus, download=download)
    if len(files) > 1:
        raise QwemError(f"{corpus} is a corpus of {len(files)} files; load_tokens holds "
                        "one file's tokens in memory, so give one file, or count the "
                        "files one at a time with qwem_lib.corpus.shards (qwem embed, train "
                        "and theory do)")
    path, spec = files[0]
    scheme = _resolve_scheme(scheme, spec)
    fmt = spec.format
    if fmt == "plain" and min_article_tokens:
        warnings.warn(f"min_article_tokens={min_article_tokens} ignored: {path.name} "
                      "is plain text, without article boundaries", stacklevel=2)
        min_article_tokens = 0
    source = (f"{path} (format={fmt}, scheme={scheme}, "
              f"min_article_tokens={min_article_tokens})")

    arrays = _file_arrays(path, fmt, scheme, min_article_tokens, source, cache=cache,
                          progress=progress, chunk_size=chunk_size)
    counted = _counted(arrays, vocab_size)
    if counted.n_tokens == 0:
        raise _no_tokens(path, fmt, scheme, min_article_tokens)
    n_words = len(counted.counts)
    if vocab_size > n_words:
        raise QwemError(f"the corpus has only {n_words:,} distinct words; choose "
                        f"--vocab-size ≤ {n_words:,} or a larger corpus "
                        f"({source})")
    errors = "strict" if scheme != "none" else "surrogateescape"
    vocab = Vocabulary(tuple(w.decode("utf-8", errors)
                             for w in counted.words[:vocab_size]),
                       np.array(counted.counts[:vocab_size], dtype=np.int64))
    ids = counted.ids
    ids = ids[ids < vocab_size] if vocab_size < n_words else ids
    return TokenData(np.ascontiguousarray(ids, dtype=np.int32), vocab,
                     counted.n_tokens, source)
