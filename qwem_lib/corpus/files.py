"""Reading corpus files: open, decompress, check and transcode to UTF-8, in chunks.

A background thread reads and decompresses (bz2/lzma/zlib release the GIL) while the
caller works on the previous chunk (:func:`_prefetch`).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import itertools
import lzma
import os
import queue
import re
import threading
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from ..runtime.errors import QwemError

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
    compressed data raises :class:`~qwem_lib.runtime.errors.QwemError` naming the file.  The
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
    (for :func:`qwem_lib.corpus.data._infer_format`)."""
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
    is refused with a :class:`~qwem_lib.runtime.errors.QwemError` before anything is
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
