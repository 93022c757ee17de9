"""From text to token ids: readers, normalisation, vocabulary (arXiv 2502.09863, setup).

The paper's corpus is English Wikipedia, lowercased, with every non-letter turned into a
space, articles under 500 tokens dropped, the 10^4 most frequent words kept and
out-of-vocabulary tokens *removed* before windowing.  This module does that for plain
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
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import itertools
import json
import lzma
import os
import queue
import re
import threading
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from . import data
from .errors import QwemError

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

#: Normalisation schemes: ``paper`` (lowercase, every run of characters outside a-z
#: becomes one space), ``text8`` (as ``paper``, but each digit first becomes its
#: English name, as Mahoney's wikifil.pl does), ``none`` (split on whitespace only).
SCHEMES = ("paper", "text8", "none")
#: Bytes per read of the corpus file (plain files: the chunk handed to the tokeniser).
DEFAULT_CHUNK_SIZE = 1 << 22
_ARTICLE_BATCH = 1 << 22  # bytes of normalised articles tokenised together

# --------------------------------------------------------------------------------------
# Reading (de)compressed files


_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error,
                         zipfile.BadZipFile)


def _corrupt(path: Path, exc: BaseException) -> QwemError:
    return QwemError(f"cannot read {path}: {exc}. The file is probably truncated or "
                     "corrupt (an interrupted download or copy): download or copy it "
                     "again, and check it with e.g. `bzip2 -t`, `gzip -t`, `xz -t` or "
                     "`unzip -t`")


class _Reader(io.BufferedIOBase):
    """Decompressing reader that owns its raw file and reports the raw position."""

    def __init__(self, path: Path, raw: BinaryIO, stream: BinaryIO):
        super().__init__()
        self.path, self._raw, self._stream = path, raw, stream

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._stream.read(-1 if size is None else size)
        except _DECOMPRESSION_ERRORS as exc:
            raise _corrupt(self.path, exc) from exc

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def raw_tell(self) -> int:
        """Bytes of the file on disk consumed so far (compressed position)."""
        return self._raw.tell()

    def close(self) -> None:
        if not self.closed:
            try:
                if self._stream is not self._raw:
                    self._stream.close()
            finally:
                self._raw.close()
        super().close()


def open_binary(path: str | os.PathLike) -> _Reader:
    """Open a text file for binary reading, decompressing by extension.

    ``.bz2``, ``.gz``, ``.xz``/``.lzma`` and single-member ``.zip`` archives (such as
    ``text8.zip``) are decompressed on the fly; anything else is read as is.  Corrupt
    compressed data raises :class:`~qwem_lib.errors.QwemError` naming the file.  The
    bytes are those stored: readers use :func:`iter_chunks`, which also turns them
    into UTF-8 text (byte-order marks, UTF-16/32) and refuses binary data.

    Returns
    -------
    file object
        Has ``read(n)``, ``close()``, works as a context manager, and ``raw_tell()``
        gives the position in the file on disk (for progress bars).
    """
    path = Path(path)
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise QwemError(f"corpus file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise QwemError(f"{path} is a folder, not a corpus file; give the path of the "
                        "file inside it") from None
    except OSError as exc:
        raise QwemError(f"cannot open {path} ({exc}); check its permissions") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".bz2":
            stream = bz2.BZ2File(raw)
        elif suffix == ".gz":
            stream = gzip.GzipFile(fileobj=raw)
        elif suffix in (".xz", ".lzma"):
            stream = lzma.LZMAFile(raw)
        elif suffix == ".zip":
            archive = zipfile.ZipFile(raw)
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                raw.close()
                raise QwemError(f"{path} holds {len(members)} files; qwem_lib reads a "
                                "zip with exactly one: extract the one you want and "
                                "pass its path")
            stream = archive.open(members[0])
        else:
            stream = raw
    except _DECOMPRESSION_ERRORS as exc:
        raw.close()
        raise _corrupt(path, exc) from exc
    return _Reader(path, raw, stream)


_RAW_BLOCK = 1 << 20  # compressed bytes per decompress call (GIL released inside)


def _decompressor(suffix: str):
    """A fresh decompressor object for a file suffix, or None for plain files."""
    if suffix == ".bz2":
        return bz2.BZ2Decompressor()
    if suffix == ".gz":
        return zlib.decompressobj(wbits=31)
    if suffix in (".xz", ".lzma"):
        return lzma.LZMADecompressor()
    return None


def _raw_chunks(path: Path, chunk_size: int) -> Iterator[tuple[bytes, int]]:
    """Decompressed bytes as stored, and the on-disk offset (see iter_chunks)."""
    suffix = path.suffix.lower()
    dec = _decompressor(suffix)
    if dec is None:
        with open_binary(path) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk, fh.raw_tell()
        return
    block_size = min(chunk_size, _RAW_BLOCK)
    with open_binary(path) as fh:  # reports a missing file; raw reads below
        raw = fh._raw
        fed = False  # whether the current decompressor has had any input
        try:
            while block := raw.read(block_size):
                while block:
                    out = dec.decompress(block)
                    fed, block = True, b""
                    if dec.eof:  # end of one stream: another may follow
                        block, dec, fed = dec.unused_data, _decompressor(suffix), False
                    if out:
                        yield out, raw.tell()
            if fed and not dec.eof:
                raise EOFError("compressed file ended before the end-of-stream "
                               "marker was reached")
        except _DECOMPRESSION_ERRORS as exc:
            raise _corrupt(path, exc) from exc


# --------------------------------------------------------------------------------------
# Text encodings: byte-order marks, UTF-16/32, and data that is not text

#: Largest share of the first MiB of a corpus (decompressed) that may be bytes outside
#: valid UTF-8 or control characters other than ``\t \n \v \f \r``; above it the file
#: is refused as not text.  Dumps have a few stray bytes per million; binary data and
#: UTF-16/32 without a byte-order mark are far above it (Latin-1 text with a few
#: accents is not: its accented letters just separate words, as before).
MAX_NON_TEXT_FRACTION = 0.10
_TEXT_SAMPLE = 1 << 20  # decompressed bytes checked, once per read
# Longest mark first: UTF-32-LE's FF FE 00 00 starts with UTF-16-LE's FF FE.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_CONTROL = bytes(c for c in range(32) if c not in b"\t\n\v\f\r") + b"\x7f"
_ESCAPED = re.compile("[\udc80-\udcff]")  # an invalid byte, under 'surrogateescape'
_REPLACEMENT = "\ufffd".encode()
# An XML declaration naming a 16/32-bit encoding: after transcoding (or a conversion
# with iconv) it no longer holds, and expat refuses the document.
_XML_WIDE = re.compile(rb"""(<\?xml[^>]*?\bencoding\s*=\s*["'])"""
                       rb"""(?:utf|ucs)-?(?:16|32|2|4)[^"'>]*(["'])""", re.IGNORECASE)


def _sniff_bom(head: bytes) -> tuple[str, int]:
    """(encoding, length of its byte-order mark) of data starting with ``head``."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return "utf-8", 0


def _utf8_head(head: bytes) -> bytes:
    """The first bytes of a file as UTF-8: byte-order mark dropped, UTF-16/32 decoded
    (for :func:`qwem_lib.data._infer_format`)."""
    encoding, skip = _sniff_bom(head)
    if encoding == "utf-8":
        return head[skip:]
    return codecs.getincrementaldecoder(encoding)("replace").decode(
        head[skip:]).encode("utf-8")


def _transcode(chunks: Iterable[tuple[bytes, int]],
               encoding: str) -> Iterator[tuple[bytes, int]]:
    """UTF-16/32 chunks as UTF-8; a code unit split between chunks is kept whole.

    Invalid code units (a lone surrogate, a trailing odd byte) become U+FFFD.
    """
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    pos = 0
    for chunk, pos in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text.encode("utf-8"), pos
    text = decoder.decode(b"", final=True)
    if text:
        yield text.encode("utf-8"), pos


def _check_text(path: Path, sample: bytes, encoding: str) -> None:
    """Refuse data whose ``sample`` (its head, as UTF-8) is mostly not text."""
    if not sample:
        return
    invalid = _ESCAPED.subn("", sample.decode("utf-8", "surrogateescape"))[1]
    if encoding != "utf-8":  # transcoded: invalid code units became U+FFFD
        invalid += len(_REPLACEMENT) * sample.count(_REPLACEMENT)
    control = len(sample) - len(sample.translate(None, _CONTROL))
    share = (invalid + control) / len(sample)
    if share <= MAX_NON_TEXT_FRACTION:
        return
    where = ("its first MiB" if len(sample) >= _TEXT_SAMPLE
             else f"its {len(sample):,} bytes")
    if _decompressor(path.suffix.lower()) is not None or path.suffix.lower() == ".zip":
        where += ", decompressed,"
    nul = sample.count(0)
    if encoding == "utf-8" and nul > len(sample) // 4:
        # ASCII in UTF-16 without a byte-order mark: every other byte is NUL
        guess = "UTF-16LE" if 2 * sample[1::2].count(0) >= nul else "UTF-16BE"
        fix = (f"it looks like {guess} without a byte-order mark: convert it to UTF-8, "
               f"e.g. `iconv -f {guess} -t UTF-8`")
    else:
        fix = ("convert it to UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`, or give a text "
               "corpus")
    raise QwemError(f"{path} is not {encoding.upper()} text ({100 * share:.3g}% of "
                    f"{where} are invalid bytes or control characters, more than "
                    f"{MAX_NON_TEXT_FRACTION:.0%}); {fix}")


def _fix_xml_declaration(head: list[tuple[bytes, int]],
                         sample: bytes) -> list[tuple[bytes, int]]:
    """Make a leading ``<?xml … encoding="UTF-16"?>`` say UTF-8, as the data now is."""
    match = _XML_WIDE.match(sample)
    if match is None:
        return head
    merged, n = b"", 0
    while len(merged) < match.end():  # the chunks holding the declaration
        merged += head[n][0]
        n += 1
    merged = _XML_WIDE.sub(rb"\1UTF-8\2", merged, count=1)
    return [(merged, head[n - 1][1])] + head[n:]


def _as_utf8(path: Path,
             chunks: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    """Decompressed chunks as UTF-8 text, the head checked before anything is yielded.

    A UTF-8 byte-order mark is dropped; UTF-32 and UTF-16 (LE or BE, told by their
    mark) are transcoded with an incremental decoder.  The first
    ``_TEXT_SAMPLE`` bytes are held back until :func:`_check_text` accepts them;
    chunks are passed on as they came, positions included.
    """
    try:
        first, pos = b"", 0
        for chunk, pos in chunks:  # enough bytes to see a byte-order mark
            first += chunk
            if len(first) >= 4:
                break
        encoding, skip = _sniff_bom(first)
        stream: Iterator[tuple[bytes, int]] = itertools.chain([(first[skip:], pos)],
                                                              chunks)
        if encoding != "utf-8":
            stream = _transcode(stream, encoding)
        head: list[tuple[bytes, int]] = []
        size = 0
        for chunk, pos in stream:
            if chunk:
                head.append((chunk, pos))
                size += len(chunk)
                if size >= _TEXT_SAMPLE:
                    break
        sample = b"".join(chunk for chunk, _ in head)[:_TEXT_SAMPLE]
        _check_text(path, sample, encoding)
        yield from _fix_xml_declaration(head, sample)
        del head, sample
        yield from stream
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def iter_chunks(path: str | os.PathLike,
                chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[tuple[bytes, int]]:
    """Yield ``(data, raw_position)``: decompressed UTF-8 text and the on-disk offset.

    Every corpus reader goes through here.  For ``.bz2``/``.gz``/``.xz`` files,
    blocks of compressed bytes are fed to a decompressor object directly
    (multi-stream files included): each call decodes about a megabyte with the GIL
    released, so a reader thread needs the GIL only rarely.  ``chunk_size`` is the
    size of the raw reads (at most 1 MiB for compressed files) and, for plain files,
    of the chunks; the decompressed chunks of compressed files are a few times
    larger.  Other files go through :func:`open_binary`.

    The decompressed data is then made UTF-8 (see :func:`_as_utf8`): a byte-order
    mark is removed, UTF-16 and UTF-32 text (told by its byte-order mark) is
    transcoded as it streams, and data that is mostly not text (more than
    :data:`MAX_NON_TEXT_FRACTION` of its first MiB invalid UTF-8 or control bytes)
    is refused with a :class:`~qwem_lib.errors.QwemError` before anything is
    yielded.
    """
    path = Path(path)
    if chunk_size < 1:
        raise QwemError(f"chunk_size must be positive, not {chunk_size}")
    yield from _as_utf8(path, _raw_chunks(path, chunk_size))


class _Error:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def _prefetch(items: Iterator, depth: int = 3) -> Iterator:
    """Run an iterator in a background thread, ``depth`` items ahead.

    The reader thread spends its time in bz2/lzma/zlib, which release the GIL, so
    decompression overlaps with tokenising in the caller's thread.  Exceptions are
    re-raised in the caller; closing the returned generator stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(_Error(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="qwem-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Error):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------
# Normalisation


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
        ``fast`` (default): :func:`qwem_lib.wikitext.strip_markup`, regular
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
    from .progress import bar

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


_AZ_SPACE = b"abcdefghijklmnopqrstuvwxyz "
_BYTE_MASK = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], np.uint64)
_IDX_BITS = 23  # word positions packed below a 40-bit key in one int64 sort key
_LONGER = (1 << 40) - 1  # 5-bit groups of 31: no word of <= 8 letters a-z has it


def _pack5(x: np.ndarray) -> np.ndarray:
    """Pack the low 5 bits of the 8 bytes of each uint64 into its low 40 bits.

    For letters a-z (0x61-0x7a) the low 5 bits are 1-26, never 0, so the packed
    value of a word of at most 8 letters (later bytes zeroed) is unique.  Works in
    place: ``x`` (a fresh uint64 array) is overwritten and returned.
    """
    for keep, move, shift in ((0x001F001F001F001F, 0x03E003E003E003E0, 3),
                              (0x000003FF000003FF, 0x000FFC00000FFC00, 6),
                              (0x00000000000FFFFF, 0x000000FFFFF00000, 12)):
        high = x >> shift
        high &= move
        x &= keep
        x |= high
    return x


def _py_key(word: bytes) -> int:
    """The integer key of a word of at most 12 letters a-z (as in ``_Tokeniser``)."""
    return sum((c & 31) << (5 * i) for i, c in enumerate(word))


def _is_az(word: bytes) -> bool:
    return word.isalpha() and word.islower()  # bytes methods: ASCII only


class _Tokeniser:
    """Map words to global ids (in order of first appearance) and collect them.

    Words of at most 12 letters a-z are identified by an exact integer key (5 bits per
    letter) computed for a whole buffer at once with numpy; unique keys are found by
    sorting, so the Python dictionary is consulted once per distinct word per
    buffer, not once per token.  Longer or non a-z words go through a dictionary of
    bytes.
    """

    def __init__(self):
        self.words: list[bytes] = []
        self._by_key: dict[int, int] = {}
        self._by_bytes: dict[bytes, int] = {}
        self._parts: list[np.ndarray] = []

    def _new_id(self, word: bytes, key: int | None = None) -> int:
        new = len(self.words)
        self.words.append(word)
        if key is None and len(word) <= 12 and _is_az(word):
            key = _py_key(word)
        if key is None:
            self._by_bytes[word] = new
        else:
            self._by_key[key] = new
        return new

    def _word_id(self, word: bytes) -> int:
        if len(word) <= 12 and _is_az(word):
            found = self._by_key.get(_py_key(word))
        else:
            found = self._by_bytes.get(word)
        return self._new_id(word) if found is None else found

    def _ids_of_keys(self, keys: np.ndarray, first: np.ndarray, buf: bytes,
                     starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Global ids of distinct keys; ``first``: a word index holding each key.

        The placeholder key ``_LONGER`` gets id -1 (its words are mapped later).
        """
        keys_list = keys.tolist()
        found = np.fromiter(map(self._by_key.get, keys_list, repeat(-1)), np.int32,
                            len(keys_list))
        missing = np.flatnonzero(found < 0)
        if len(missing) and keys_list[missing[-1]] == _LONGER:
            missing = missing[:-1]  # keys are sorted: the placeholder comes last
        if len(missing):
            at = first[missing]
            found[missing] = [
                self._new_id(buf[s:e], keys_list[j]) for j, s, e in
                zip(missing.tolist(), starts[at].tolist(), ends[at].tolist())]
        return found

    def add(self, buf: bytes) -> None:
        """Add the words of a buffer whose only separator is the space."""
        if buf.translate(None, _AZ_SPACE):  # not only a-z: the general (slow) path
            words = buf.split()
            local = {w: self._word_id(w) for w in set(words)}
            self._parts.append(np.fromiter(map(local.__getitem__, words), np.int32,
                                           len(words)))
            return
        starts, ends = _word_bounds(buf)
        if not len(starts):
            return
        length = ends - starts
        padded = buf + bytes(16)
        # eight bytes starting at every offset (an unaligned, overlapping view)
        at = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
        first8 = _pack5(at[starts] & _BYTE_MASK[np.minimum(length, 8)])
        long = np.flatnonzero(length > 8)
        low_of_long = first8[long]
        key = first8.view(np.int64)
        key[long] = _LONGER  # one group for all longer words, mapped below
        ids = np.empty(len(starts), np.int32)
        step = 1 << _IDX_BITS
        for lo in range(0, len(key), step):  # one slice unless > 8M words
            part = key[lo:lo + step]
            packed = np.sort((part << _IDX_BITS) | np.arange(len(part)))
            skey, sidx = packed >> _IDX_BITS, packed & (step - 1)
            head = np.empty(len(packed), bool)
            head[0] = True
            np.not_equal(skey[1:], skey[:-1], out=head[1:])
            heads = np.flatnonzero(head)
            gid = self._ids_of_keys(skey[heads], sidx[heads] + lo, buf, starts, ends)
            ids[sidx + lo] = gid[np.cumsum(head) - 1]

        mid = long[length[long] <= 12]  # 9-12 letters: a 60-bit key
        if len(mid):
            high = _pack5(at[starts[mid] + 8] & _BYTE_MASK[length[mid] - 8])
            high <<= 40
            high |= low_of_long[length[long] <= 12]
            uniq, first, inverse = np.unique(high.view(np.int64), return_index=True,
                                             return_inverse=True)
            gid = self._ids_of_keys(uniq, mid[first], buf, starts, ends)
            ids[mid] = gid[inverse.ravel()]

        for i in long[length[long] > 12].tolist():
            ids[i] = self._word_id(buf[starts[i]:ends[i]])
        self._parts.append(ids)

    def result(self) -> tuple[list[bytes], np.ndarray]:
        """(distinct words, token ids (N,) int32); the tokeniser is emptied."""
        parts, self._parts = self._parts, []
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        return self.words, ids


def _canonical_order(words: list, counts: np.ndarray) -> np.ndarray:
    """Indices sorting words by count (descending), then word (ascending)."""
    n = len(words)
    alphabetical = np.empty(n, np.int64)
    alphabetical[sorted(range(n), key=words.__getitem__)] = np.arange(n)
    return np.lexsort((alphabetical, -np.asarray(counts)))


# --------------------------------------------------------------------------------------
# Vocabulary and token data


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The V most frequent words, most frequent first (ties: alphabetical).

    Attributes
    ----------
    words : tuple of str, (V,)
        Word of each id.
    counts : ndarray of int64, (V,)
        Corpus count of each word (before any removal).
    word_to_id : dict
        ``word -> id``; built on construction.
    """

    words: tuple[str, ...]
    counts: np.ndarray
    word_to_id: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        words = tuple(self.words)
        counts = np.asarray(self.counts, dtype=np.int64)
        if counts.shape != (len(words),):
            raise ValueError(f"counts has shape {counts.shape}, expected "
                             f"({len(words)},)")
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "word_to_id", {w: i for i, w in enumerate(words)})
        if len(self.word_to_id) != len(words):
            raise ValueError("the vocabulary has repeated words")

    @classmethod
    def from_counts(cls, counts: dict[str, int] | Iterable[tuple[str, int]],
                    vocab_size: int) -> "Vocabulary":
        """Top-``vocab_size`` words by count (descending), ties by word (ascending)."""
        items = list(dict(counts).items())
        if vocab_size < 1 or vocab_size > len(items):
            raise QwemError(f"vocab_size must be between 1 and {len(items)} (the "
                            f"number of distinct words), not {vocab_size}")
        words = [w for w, _ in items]
        cnt = np.array([c for _, c in items], dtype=np.int64)
        top = _canonical_order(words, cnt)[:vocab_size]
        return cls(tuple(words[i] for i in top), cnt[top])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.word_to_id

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.words == other.words and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self.words[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"Vocabulary(V={len(self)}, words=({head}{more}))"

    def id(self, word: str) -> int:
        """Id of ``word``; ``KeyError`` if it is out of vocabulary."""
        try:
            return self.word_to_id[word]
        except KeyError:
            raise KeyError(f"{word!r} is not in the vocabulary (V={len(self)})") \
                from None

    def ids(self, words: Iterable[str]) -> np.ndarray:
        """Ids of several words, ``(n,)`` int64; ``KeyError`` for an unknown one."""
        return np.array([self.id(w) for w in words], dtype=np.int64)

    @property
    def unigram(self) -> np.ndarray:
        """Counts normalised to sum 1, ``(V,)`` float64 (over in-vocabulary tokens)."""
        return self.counts / self.counts.sum()


@dataclass(frozen=True, eq=False)
class TokenData:
    """A corpus as in-vocabulary token ids (paper's setup).

    Attributes
    ----------
    ids : ndarray of int32, (N,)
        Token ids in corpus order, out-of-vocabulary tokens removed (as in the paper,
        before any windowing, so words on either side of a removed token become
        neighbours).
    vocab : Vocabulary
        ``V`` words; ``ids`` index into it.
    n_tokens : int
        Tokens before removing out-of-vocabulary ones.
    source : str
        What was read: path, format, scheme, article filter.
    """

    ids: np.ndarray
    vocab: Vocabulary
    n_tokens: int
    source: str

    @property
    def n_kept(self) -> int:
        """In-vocabulary tokens, ``len(ids)``."""
        return len(self.ids)

    @property
    def coverage(self) -> float:
        """Fraction of tokens that are in the vocabulary (the paper: 87% at V=10^4)."""
        return len(self.ids) / self.n_tokens if self.n_tokens else 0.0

    def __repr__(self) -> str:
        return (f"TokenData({len(self.ids):,} of {self.n_tokens:,} tokens kept, "
                f"V={len(self.vocab)}, source={self.source!r})")


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
    module, :mod:`qwem_lib.cache`): its content, not its name or time stamps."""
    from .cache import file_identity

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
    from . import cache as cache_mod

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
        A registry name (see :data:`qwem_lib.data.CORPORA`) or a file.
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
        ``cache_dir()/"tokens"`` (:mod:`qwem_lib.cache`), keyed by the file's
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
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise QwemError(f"vocab_size must be an integer, not {vocab_size!r}")
    if vocab_size < 1:
        raise QwemError(f"vocab_size must be at least 1, not {vocab_size}; the paper "
                        "uses 10000")
    if not isinstance(min_article_tokens, (int, np.integer)) or min_article_tokens < 0:
        raise QwemError(f"min_article_tokens must be a non-negative integer, not "
                        f"{min_article_tokens!r}")
    vocab_size, min_article_tokens = int(vocab_size), int(min_article_tokens)
    files = data.resolve_corpora(corpus, download=download)
    if len(files) > 1:
        raise QwemError(f"{corpus} is a corpus of {len(files)} files; load_tokens holds "
                        "one file's tokens in memory, so give one file, or count the "
                        "files one at a time with qwem_lib.shards (qwem embed, train "
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
