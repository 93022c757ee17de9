"""The corpus: text -> tokens -> counts (arXiv 2502.09863, setup).

The paper's corpus is English Wikipedia, lowercased, with every non-letter turned into a
space, articles under 500 tokens dropped, the 10^4 most frequent words kept and
out-of-vocabulary tokens *removed* before windowing.  This package does that for plain
text, WikiExtractor output and raw MediaWiki XML dumps, compressed or not, in UTF-8
(or UTF-16/32 with a byte-order mark, transcoded as it streams)::

    file ─(thread: read, decompress, UTF-8)─▶ byte chunks ─(articles, normalise)─▶ text
      ─(word keys, sort, dict per distinct word)─▶ global ids ─(top V)─▶ TokenData

Speed matters: a 100 MB corpus should load in about the time bz2 needs to decompress
it.  A background thread reads and decompresses (bz2/lzma/zlib release the GIL), while
the main thread normalises whole chunks with ``bytes.translate``/``bytes.replace`` and
maps words to ids with numpy (see :class:`_Tokeniser`); no Python loop runs per
character or per token.  The vocabulary-size independent part (all distinct words,
their counts, the token stream as ids) is cached as an ``.npz`` file under
``cache_dir()/"tokens"``, so a second call with another ``vocab_size`` takes a
fraction of a second.

Its modules, in the order data flows through them: :mod:`.data` (where corpora live:
the registry, downloads), :mod:`.files` (reading, decompressing, transcoding),
:mod:`.text` (normalisation, article formats, words; :mod:`.wikitext` strips MediaWiki
markup), :mod:`.vocabulary` (words to ids), :mod:`.tokens` (a corpus's token ids,
cached), :mod:`.subsampling` (word2vec's frequent-word subsampling),
:mod:`.cooccurrence` (window counts), :mod:`.shards` (a corpus of many files, counted
here or on a Dask cluster), :mod:`.splitter` (one file into shards) and
:mod:`.provenance` (``qwem data fetch``).  The reading API is re-exported here.
"""

from __future__ import annotations

from .files import DEFAULT_CHUNK_SIZE, MAX_NON_TEXT_FRACTION, iter_chunks, open_binary
from .text import (SCHEMES, iter_mediawiki, iter_plain, iter_wikiextractor, iter_words,
                   normalise)
from .tokens import FileCounts, load_tokens, read_file_counts
from .vocabulary import TokenData, Vocabulary

__all__ = [
    "SCHEMES",
    "DEFAULT_CHUNK_SIZE",
    "MAX_NON_TEXT_FRACTION",
    "open_binary",
    "normalise",
    "iter_chunks",
    "iter_plain",
    "iter_wikiextractor",
    "iter_mediawiki",
    "iter_words",
    "Vocabulary",
    "TokenData",
    "load_tokens",
]
