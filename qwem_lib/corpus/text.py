"""Text to words: normalisation schemes and the article formats (plain text,
WikiExtractor output, MediaWiki XML), split into articles and words.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..runtime.errors import QwemError
from ..runtime.options import SCHEMES
from . import data
from .files import _ARTICLE_BATCH, DEFAULT_CHUNK_SIZE, _prefetch, iter_chunks


def _table(keep_digits: bool) -> bytes:
    table = bytearray(b" " * 256)
    for c in range(ord("a"), ord("z") + 1):
        table[c] = c
        table[c - 32] = c  # A-Z -> a-z
    if keep_digits:
        for c in range(ord("0"), ord("9") + 1):
            table[c] = c
    return bytes(table)


_TABLES = {"paper": _table(False), "text8": _table(True)}
_WHITESPACE = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")
_DIGITS = tuple((str(d).encode(), f" {w} ".encode()) for d, w in enumerate(
    "zero one two three four five six seven eight nine".split()))
# The only characters outside A-Z whose Python str.lower() contains a letter a-z:
# 'İ' (U+0130) -> 'i' + U+0307 (a combining dot, not a letter) and the Kelvin sign
# (U+212A) -> 'k'.  Replacing their UTF-8 bytes first makes the byte-level
# normalisation below identical to lowercasing the decoded text with str.lower().
_UNICODE_LOWER = ((b"\xc4\xb0", b"i "), (b"\xe2\x84\xaa", b"k"))


def _normalise_bytes(text: bytes, scheme: str) -> bytes:
    """Lowercase, map non-letters to spaces (digits to words for 'text8').

    The result is not collapsed: callers split it with ``bytes.split()``, which
    treats every run of spaces as one separator.
    """
    if scheme == "none":
        return text.translate(_WHITESPACE)
    for src, dst in _UNICODE_LOWER:
        if src in text:
            text = text.replace(src, dst)
    text = text.translate(_TABLES[scheme])
    if scheme == "text8":
        for digit, word in _DIGITS:
            if digit in text:
                text = text.replace(digit, word)
    return text


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise QwemError(f"unknown normalisation scheme {scheme!r}; choose one of "
                        f"{', '.join(SCHEMES)} (or 'auto' in load_tokens)")


def normalise(text: str | bytes, scheme: str = "paper") -> str:
    """Normalise text to lowercase words of ``a``-``z`` separated by single spaces.

    Parameters
    ----------
    text : str or bytes (UTF-8)
    scheme : {'paper', 'text8', 'none'}
        ``paper`` (paper's setup): lowercase, every run of characters outside a-z → one
        space.  ``text8``: lowercase, each digit → `` zero `` … `` nine ``, then every
        run outside a-z → one space (Mahoney's text8; the shared corpora's recipe in
        PROVENANCE.md).  ``none``: collapse whitespace only.

    Returns
    -------
    str
        Stripped, single-spaced.

    Examples
    --------
    >>> normalise("Élan: 1984's B-52s!", "paper")
    'lan s b s'
    >>> normalise("Élan: 1984's B-52s!", "text8")
    'lan one nine eight four s b five two s'
    """
    _check_scheme(scheme)
    if not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise QwemError(f"normalise takes text (str or UTF-8 bytes), got "
                        f"{type(text).__name__}")
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return b" ".join(_normalise_bytes(raw, scheme).split()).decode("utf-8")


# --------------------------------------------------------------------------------------
# Splitting the text into units: chunks of running text, or articles


def iter_plain(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut chunks of running text at whitespace, so no word is split in two."""
    carry = b""
    for chunk in chunks:
        if carry:
            chunk = carry + chunk
        cut = max(chunk.rfind(b" "), chunk.rfind(b"\n"))
        if cut < 0:
            carry = chunk  # no whitespace yet: one very long token
            continue
        carry = chunk[cut + 1:]
        yield chunk[:cut + 1]
    if carry:
        yield carry


def _line_start(buf: bytes, pattern: bytes, start: int) -> int:
    """Offset of the first line at or after ``start`` that begins with ``pattern``."""
    if buf.startswith(pattern, start) and (start == 0 or buf[start - 1] == 10):
        return start
    found = buf.find(b"\n" + pattern, start)
    return found + 1 if found >= 0 else -1


def iter_wikiextractor(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the body of each article of WikiExtractor output.

    WikiExtractor writes ``<doc id=.. url=.. title=..>``, the title on the next line,
    the text, then ``</doc>``.  The ``<doc`` line, the title line and the ``</doc>``
    line are dropped (as in text8-style normalisation); the text between is yielded
    with its newlines.  Text outside ``<doc>`` elements is ignored.
    """
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        pos = 0
        while True:
            head = _line_start(buf, b"<doc ", pos)
            if head < 0:
                pos = max(pos, buf.rfind(b"\n") + 1)  # nothing open: drop stray text
                break
            end = _line_start(buf, b"</doc>", head)
            if end < 0:
                pos = head
                break
            title_end = buf.find(b"\n", buf.find(b"\n", head) + 1)
            yield buf[title_end + 1:end] if 0 <= title_end < end else b""
            after = buf.find(b"\n", end)
            pos = len(buf) if after < 0 else after + 1
        buf = buf[pos:]
    head = _line_start(buf, b"<doc ", 0)
    if head >= 0:  # an unterminated last article (truncated file): keep its text
        title_end = buf.find(b"\n", buf.find(b"\n", head) + 1)
        if title_end >= 0:
            yield buf[title_end + 1:]


class _ChunkFile(io.RawIOBase):
    """File object over an iterator of byte chunks (for ElementTree.iterparse)."""

    def __init__(self, chunks: Iterable[bytes]):
        super().__init__()
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            self._buf, self._pos = next(self._chunks, b""), 0
        if size < 0:
            parts = [self._buf[self._pos:], *self._chunks]
            self._buf, self._pos = b"", 0
            return b"".join(parts)
        out = self._buf[self._pos:self._pos + size]
        self._pos += len(out)
        return out


def iter_mediawiki(fh, path: str | os.PathLike = "<stream>", *,
                   markup: str = "fast") -> Iterator[bytes]:
    """Yield the plain text (UTF-8) of each main-namespace article of an XML dump.

    ``fh`` is a binary file object over a ``*-pages-articles*.xml`` dump.  Pages are
    streamed with ``xml.etree.ElementTree.iterparse`` and freed as they are read;
    pages outside namespace 0 and redirects are skipped, and the wikitext is turned
    into text by the stripper ``markup`` names.

    Parameters
    ----------
    fh : binary file object
    path : str or path-like
        Named in error messages.
    markup : {'fast', 'mwparserfromhell'}
        ``fast`` (default): :func:`qwem_lib.corpus.wikitext.strip_markup`, regular
        expressions and stack scanners, many times faster; it keeps nearly all the
        words the reference keeps and fewer markup words (file options,
        ``Category`` prefixes, URLs; ``bench/README.md``, "wikitext.py").  ``mwparserfromhell``: the reference,
        ``mwparserfromhell.parse(text).strip_code()``.

    Raises
    ------
    QwemError
        For an unknown ``markup`` (when the iteration starts) or a malformed dump.
    """
    import xml.etree.ElementTree as ET

    if markup == "fast":
        from .wikitext import strip_markup
    elif markup == "mwparserfromhell":
        import mwparserfromhell

        def strip_markup(text: str) -> str:
            return mwparserfromhell.parse(text).strip_code()
    else:
        raise QwemError(f"unknown markup stripper {markup!r}; choose one of "
                        "fast, mwparserfromhell")

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    root = None
    try:
        for event, elem in ET.iterparse(fh, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = elem
                continue
            if local(elem.tag) != "page":
                continue
            ns, redirect, text = "0", False, None
            for child in elem.iter():
                name = local(child.tag)
                if name == "ns":
                    ns = (child.text or "").strip()
                elif name == "redirect":
                    redirect = True
                elif name == "text":
                    text = child.text or ""
            root.clear()  # free the page (and everything read before it)
            if ns != "0" or redirect or text is None:
                continue
            if text.lstrip()[:9].upper() == "#REDIRECT":
                continue
            yield strip_markup(text).encode("utf-8")
    except ET.ParseError as exc:
        raise QwemError(f"{path} is not a well-formed MediaWiki XML dump ({exc}); if "
                        "it was downloaded, download it again") from exc


# --------------------------------------------------------------------------------------
# Words


def _progress_bar(path: Path, progress: bool):
    from ..runtime.progress import bar

    return bar(progress, total=path.stat().st_size, unit="B", unit_scale=True,
               unit_divisor=1024, desc=f"reading {path.name}")


def _tracked(chunks: Iterable[tuple[bytes, int]], bar) -> Iterator[bytes]:
    for chunk, pos in chunks:
        bar.update(pos - bar.n)
        yield chunk


def _word_bounds(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) offsets of the words of a space-separated buffer."""
    letter = np.zeros(len(buf) + 2, np.int8)
    np.not_equal(np.frombuffer(buf, np.uint8), 32, out=letter[1:-1].view(bool))
    edges = np.flatnonzero(np.diff(letter))  # alternately word starts and ends
    return edges[0::2], edges[1::2]


def _drop_short_articles(bodies: list[bytes], min_tokens: int) -> list[bytes]:
    """Keep the (normalised) articles that have at least ``min_tokens`` words."""
    joined = b" ".join(bodies)
    offsets = np.cumsum([0] + [len(b) + 1 for b in bodies[:-1]])
    starts, _ = _word_bounds(joined)
    article = np.searchsorted(offsets, starts, side="right") - 1
    n_words = np.bincount(article, minlength=len(bodies))
    return [b for b, n in zip(bodies, n_words.tolist()) if n >= min_tokens]


def _iter_buffers(path: Path, format: str, scheme: str, min_article_tokens: int,
                  chunk_size: int, progress: bool) -> Iterator[bytes]:
    """Normalised text in pieces that end between words, words separated by spaces."""
    _check_scheme(scheme)
    if format not in data.FORMATS:
        raise QwemError(f"unknown corpus format {format!r}; choose one of "
                        f"{', '.join(data.FORMATS)}")
    if path.is_dir():
        raise QwemError(f"{path} is a folder, not a corpus file; give the path of the "
                        "file inside it")
    if not path.is_file():
        raise QwemError(f"corpus file {path} does not exist; check the path")
    with _progress_bar(path, progress) as bar:
        reader = _prefetch(iter_chunks(path, chunk_size))
        chunks = _tracked(reader, bar)
        try:
            if format == "plain":
                for piece in iter_plain(chunks):
                    yield _normalise_bytes(piece, scheme)
                return
            if format == "wikiextractor":
                articles = iter_wikiextractor(chunks)
            else:
                articles = iter_mediawiki(_ChunkFile(chunks), path)
            bodies: list[bytes] = []
            size = 0
            for body in articles:
                bodies.append(_normalise_bytes(body, scheme))
                size += len(bodies[-1])
                if size >= _ARTICLE_BATCH:
                    if min_article_tokens > 0:
                        bodies = _drop_short_articles(bodies, min_article_tokens)
                    yield b" ".join(bodies)
                    bodies, size = [], 0
            if bodies and min_article_tokens > 0:
                bodies = _drop_short_articles(bodies, min_article_tokens)
            if bodies:
                yield b" ".join(bodies)
        finally:
            chunks.close()
            reader.close()


def iter_words(path: str | os.PathLike, format: str = "plain", scheme: str = "paper",
               min_article_tokens: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE,
               progress: bool = False) -> Iterator[list[bytes]]:
    """Stream the normalised words of a corpus file, in corpus order, in batches.

    Parameters
    ----------
    path : path
        Corpus file (compressed or not, see :func:`open_binary`).
    format : {'plain', 'wikiextractor', 'mediawiki'}
    scheme : {'paper', 'text8', 'none'}
        See :func:`normalise`.
    min_article_tokens : int
        Drop articles with fewer tokens (after normalisation); the paper uses 500.
        Ignored for ``plain`` text, which has no articles.
    chunk_size : int
        Bytes per read (see :func:`iter_chunks`); results do not depend on it.
    progress : bool
        Show a tqdm bar of the bytes read from disk.

    Yields
    ------
    list of bytes
        Words (ASCII ``a``-``z`` unless ``scheme='none'``).
    """
    for buf in _iter_buffers(Path(path), format, scheme, min_article_tokens,
                             chunk_size, progress):
        words = buf.split()
        if words:
            yield words
