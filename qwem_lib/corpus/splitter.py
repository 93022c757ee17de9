"""Split one corpus file into N gzip shards, cut only between articles (or lines).

A folder of shards is read as one corpus, file by file in sorted name order, and a
co-occurrence window never crosses from one file into the next.  The counts of the
folder are therefore the sum of each file's own counts, and those depend on nothing
but the file: a shard counted first or last, here or on another machine, adds the
same numbers.  That is what makes shards worth having; the cut points decide what
the counts *are*.  A cut inside an article would drop every window spanning it and
leave the two halves of the article in different files; so :func:`split_corpus`
cuts only where the reader already starts a new unit:

* WikiExtractor output: before a ``<doc …>`` line, never inside a ``<doc>`` …
  ``</doc>`` article (found exactly as :func:`qwem_lib.corpus.iter_wikiextractor`
  finds them);
* MediaWiki XML dumps: before a ``<page>`` element; each shard is itself a
  well-formed dump (the original header up to the first ``<page>``, whole pages,
  ``</mediawiki>``);
* plain text: after a newline, so a line is never split; but a line longer than a
  MiB (text8 is one line of 100 MB) is also cut between two words, at most once per
  MiB of it.

Every article is then whole in exactly one shard, and the only windows lost are the
``N - 1`` that spanned two neighbouring articles (or lines) at the cuts.

The file is read once, streaming, in chunks of a few MiB (memory does not grow
with its size): a background thread reads and decompresses, the calling thread
finds the cut points, and a second thread compresses (zlib releases the GIL, so
the three overlap).  Shard ``i`` ends at the first cut point after ``(i+1)/N`` of
the file's bytes *on disk* have been read, so the shards hold about equal shares
of the compressed input.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import queue
import re
import signal
import threading
from pathlib import Path

import numpy as np

from ..runtime.errors import QwemError
from ..runtime.options import check_int

__all__ = ["split_corpus"]

#: Bytes per raw read (see :func:`qwem_lib.corpus.iter_chunks`).
_CHUNK_SIZE = 1 << 22
#: Longest MediaWiki header (everything before the first ``<page>``) accepted.
_HEADER_LIMIT = 64 << 20
_FOOTER = b"</mediawiki>\n"
_COMPRESSIONS = (".bz2", ".gz", ".xz", ".lzma", ".zip")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}")
_UNITS = {"plain": ("line", "lines", "plain text is cut only between lines, or words "
                    "of lines over a MiB"),
          "wikiextractor": ("article", "articles",
                            "it is cut only between <doc> articles"),
          "mediawiki": ("page", "pages", "it is cut only between <page> elements")}


# --------------------------------------------------------------------------------------
# Where units start.  Each finder is fed a buffer holding the data from absolute
# (decompressed) offset ``base`` on, the last ``new`` bytes of it just read; it returns
# the absolute offsets of the units that start in it (in order, each once) and how many
# leading bytes of the buffer no later unit start can need (they may be released).


def _find_line(buf: bytes, pattern: bytes, pos: int,
               at_line: bool) -> tuple[int, int, bool]:
    """The first line at or after ``pos`` that begins with ``pattern``.

    ``at_line`` says whether ``pos`` is a line start.  Returns ``(found, resume,
    resume_at_line)``: ``found`` is the offset of that line, or -1 if there is none
    yet, in which case the search is to resume at ``resume`` once more data has been
    appended (a line start within the last ``len(pattern)`` bytes may still match).
    """
    n = len(pattern)
    if at_line:
        if buf.startswith(pattern, pos):
            return pos, pos, True
        if len(buf) - pos < n and pattern.startswith(buf[pos:]):
            return -1, pos, True
    found = buf.find(b"\n" + pattern, pos)
    if found >= 0:
        return found + 1, found + 1, True
    newline = buf.rfind(b"\n", max(pos, len(buf) - n))
    if newline >= 0:
        return -1, newline + 1, True
    return -1, len(buf), False


#: A plain-text line longer than this (text8 has one line of 100 MB) is also cut
#: between words, at the first space after every this many bytes.
_LONG_LINE = 1 << 20


class _Lines:
    """Plain text: every line starts a unit (one ending the file starts none); in a
    line longer than :data:`_LONG_LINE` bytes, so does a word after every
    ``_LONG_LINE`` bytes of it (a file of one line, such as text8, can be split)."""

    def __init__(self):
        self._pending: int | None = None  # a line start at the end of the data so far
        self._seen = False
        self._last = 0  # the last unit start reported

    def feed(self, buf: bytes, base: int, new: int) -> tuple[np.ndarray, int]:
        start = len(buf) - new
        first: list[int] = []
        if new:
            if self._pending is not None:
                first, self._pending = [self._pending], None
            elif not self._seen:
                first = [base + start]
            self._seen = True
        ends = np.flatnonzero(np.frombuffer(buf, np.uint8, offset=start) == 10)
        starts = ends + (base + start + 1)
        if len(starts) and starts[-1] == base + len(buf):
            self._pending = int(starts[-1])  # confirmed when more data comes
            starts = starts[:-1]
        if first:
            starts = np.concatenate([np.array(first, np.int64), starts])
        return self._words_in_long_lines(buf, base, start, starts), len(buf)

    def _words_in_long_lines(self, buf: bytes, base: int, start: int,
                             starts: np.ndarray) -> np.ndarray:
        end = base + len(buf)
        starts = starts.astype(np.int64, copy=False)
        gaps = np.diff(np.concatenate([[self._last], starts, [end]]))
        if gaps.max() <= _LONG_LINE:  # no long line: the line starts as they are
            if len(starts):
                self._last = int(starts[-1])
            return starts
        out: list[int] = []
        last = self._last
        spaces = None
        for s in [*starts.tolist(), None]:
            limit = end if s is None else s
            while limit - last > _LONG_LINE:
                if spaces is None:  # offsets just after each space of the new data
                    spaces = np.flatnonzero(np.frombuffer(
                        buf, np.uint8, offset=start) == 32) + (base + start + 1)
                k = int(np.searchsorted(spaces, last + _LONG_LINE))
                if k == len(spaces) or spaces[k] >= limit:
                    break
                last = int(spaces[k])
                out.append(last)
            if s is not None:
                out.append(s)
                last = s
        self._last = last
        return np.array(out, np.int64)


class _Docs:
    """WikiExtractor output: a ``<doc `` line after the previous ``</doc>`` line."""

    def __init__(self):
        self._pos, self._at_line, self._inside = 0, True, False

    def feed(self, buf: bytes, base: int, new: int) -> tuple[np.ndarray, int]:
        found: list[int] = []
        pos, at_line = self._pos - base, self._at_line
        while True:
            pattern = b"</doc>" if self._inside else b"<doc "
            line, pos, at_line = _find_line(buf, pattern, pos, at_line)
            if line < 0:
                break
            if not self._inside:
                found.append(base + line)
            self._inside = not self._inside
            at_line = False  # that line is read: the next match starts a later one
        self._pos, self._at_line = base + pos, at_line
        return np.array(found, np.int64), pos


_PAGE = re.compile(rb"<page[\s>]")
_BACKTRACK = 32  # most blanks before <page> that move the cut to the start of its line
_MAX_PAGE_TAG = 5  # bytes of an incomplete '<page' match, held until the next read


class _Pages:
    """MediaWiki XML: a ``<page>`` element (its line, when only blanks precede it)."""

    def __init__(self):
        self._pos = 0

    def feed(self, buf: bytes, base: int, new: int) -> tuple[np.ndarray, int]:
        found: list[int] = []
        for match in _PAGE.finditer(buf, self._pos - base):
            tag = cut = match.start()
            while cut > tag - _BACKTRACK and cut > 0 and buf[cut - 1] in b" \t":
                cut -= 1
            at_line = (base + cut == 0) or (cut > 0 and buf[cut - 1] == 10)
            found.append(base + (cut if at_line else tag))
        pos = max(self._pos - base, len(buf) - _MAX_PAGE_TAG)
        self._pos = base + pos
        # keep enough bytes before the next possible tag to look back from it
        return np.array(found, np.int64), max(0, pos - _BACKTRACK - 8)


_FINDERS = {"plain": _Lines, "wikiextractor": _Docs, "mediawiki": _Pages}


# --------------------------------------------------------------------------------------
# Writing: temporary gzip files, compressed in a background thread


class _Writer:
    """Compress shards into temporary files in a background thread.

    Calls are queued in order: :meth:`start` a shard, :meth:`write` its bytes,
    :meth:`end` it.  An error in the thread is raised in the caller at its next call
    (or at :meth:`close`).
    """

    def __init__(self, temps: list[Path], names: list[str], compresslevel: int):
        self._temps, self._names, self._level = temps, names, compresslevel
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="qwem-shard-writer",
                                        daemon=True)
        self._thread.start()

    def _work(self) -> None:
        raw = out = None
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is None:
                    return
                kind, arg = item
                if kind == "start":
                    raw = open(self._temps[arg], "wb")
                    # the final name in the gzip header (as gzip(1) writes it), no
                    # time stamp: the same input gives the same bytes
                    out = gzip.GzipFile(filename=self._names[arg], mode="wb",
                                        fileobj=raw, compresslevel=self._level,
                                        mtime=0)
                elif kind == "write":
                    out.write(arg)
                else:  # end
                    if arg:
                        out.write(arg)
                    out.close()
                    raw.close()
                    out = raw = None
        except BaseException as exc:  # handed to the caller
            self._error = exc
        finally:
            for handle in (out, raw):
                if handle is not None:
                    with contextlib.suppress(Exception):
                        handle.close()

    def _put(self, item) -> None:
        while True:
            self._check()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._check()
                    raise QwemError("the shard writer stopped unexpectedly")

    def _check(self) -> None:
        exc = self._error
        if exc is None:
            return
        if isinstance(exc, OSError):
            where = exc.filename or self._temps[0].parent
            raise QwemError(f"cannot write {where}: {exc.strerror or exc}; choose a "
                            "writable --out folder with free space") from exc
        raise exc

    def start(self, shard: int) -> None:
        self._put(("start", shard))

    def write(self, data: bytes) -> None:
        if data:
            self._put(("write", data))

    def end(self, footer: bytes = b"") -> None:
        self._put(("end", footer))

    def close(self) -> None:
        """Wait until everything queued is written; raise the thread's error."""
        self._put(None)
        self._thread.join()
        self._check()

    def abort(self) -> None:
        """Stop the thread without writing what is still queued."""
        self._stop.set()
        self._thread.join(timeout=30)


# --------------------------------------------------------------------------------------
# One pass over the input


def _estimate(starts: np.ndarray, segments: list[tuple[int, int, int, int]]):
    """On-disk position reached at each decompressed offset in ``starts``.

    ``segments`` are the chunks still buffered, ``(first, end, raw_before,
    raw_after)``; within a chunk the position is interpolated linearly.
    """
    table = np.array(segments, np.float64)
    k = np.searchsorted(table[:, 0], starts, side="right") - 1
    first, end, lo, hi = table[k].T
    return lo + (hi - lo) * (starts - first) / np.maximum(end - first, 1)


def _truncated(path: Path, tail: bytes) -> QwemError:
    where = ("after its last complete page" if tail.endswith(b"</page>")
             else "in the middle of a page")
    return QwemError(f"{path} looks truncated: the MediaWiki XML dump ends {where}, "
                     "without its closing </mediawiki>; download it again (or give "
                     "the complete file)")


class _Pass:
    """The state of one pass over the input: the data buffered from decompressed
    offset ``base`` on (``written`` up to where it went to the shards), the units
    found and the cuts made so far (see :func:`_one_pass`)."""

    def __init__(self, path: Path, fmt: str, parts: int, plan: list[int] | None,
                 writer: _Writer):
        self.path, self.parts, self.plan, self.writer = path, parts, plan, writer
        self.size = path.stat().st_size
        self.thresholds = [self.size * (i + 1) / parts for i in range(parts - 1)]
        self.finder = _FINDERS[fmt]()
        self.mediawiki = fmt == "mediawiki"
        # the MediaWiki header (written before the first <page>) is repeated atop
        # every shard: its pieces until it is complete, then ``header``
        self.header_parts: list[bytes] | None = [] if self.mediawiki else None
        self.header = b""
        self.header_size = 0
        self.cuts: list[int] = []
        self.units = 0
        self.buf, self.base, self.written, self.raw = b"", 0, 0, 0
        self.segments: list[tuple[int, int, int, int]] = []
        # the last bytes read that are not blanks (a dump ends </mediawiki>)
        self.tail = b""

    def emit(self, upto: int) -> None:
        """Write the buffer up to absolute offset ``upto``."""
        if upto <= self.written:
            return
        data = self.buf[self.written - self.base:upto - self.base]
        self.writer.write(data)
        self.written = upto
        if self.header_parts is not None:
            self.header_parts.append(data)
            self.header_size += len(data)
            if self.header_size > _HEADER_LIMIT:
                raise QwemError(f"{self.path} has no <page> element in its first "
                                f"{_HEADER_LIMIT >> 20} MiB; is it a MediaWiki XML "
                                "dump? Give a pages-articles dump, or a plain-text "
                                "corpus")

    def cut(self, at: int, unit: int) -> None:
        """End the shard before offset ``at`` (unit number ``unit``); start the
        next."""
        self.emit(at)
        self.writer.end(_FOOTER if self.mediawiki else b"")
        self.cuts.append(unit)
        self.writer.start(len(self.cuts))
        if self.header:
            self.writer.write(self.header)

    def feed(self, chunk: bytes, pos: int) -> None:
        """Take the next chunk read (``pos``: the bytes of the file on disk read so
        far): find the units starting in it, cut where due, write what is done."""
        if not chunk:
            self.raw = pos
            return
        if self.mediawiki:
            text = chunk.rstrip(b" \t\r\n")
            if text:
                self.tail = (self.tail + text[-64:])[-64:]
        end = self.base + len(self.buf)
        self.segments.append((end, end + len(chunk), self.raw, pos))
        self.raw = pos
        self.buf = self.buf + chunk if self.buf else chunk
        starts, keep = self.finder.feed(self.buf, self.base, len(chunk))
        if len(starts):
            self._units_start(starts)
        self.emit(self.base + keep)
        self.buf, self.base = self.buf[keep:], self.base + keep
        while self.segments and self.segments[0][1] <= self.base:
            self.segments.pop(0)

    def _units_start(self, starts: np.ndarray) -> None:
        """Units start at the offsets ``starts``: end the header at the first
        (MediaWiki), then cut before those where shards are due to end."""
        if self.header_parts is not None:  # the first <page>: the header ends
            self.emit(int(starts[0]))
            self.header, self.header_parts = b"".join(self.header_parts), None
        first_unit = self.units
        self.units += len(starts)
        while len(self.cuts) < self.parts - 1:
            j = self._next_cut(starts, first_unit)
            if j is None or j >= len(starts):
                break
            self.cut(int(starts[j]), first_unit + j)

    def _next_cut(self, starts: np.ndarray, first_unit: int) -> int | None:
        """Index in ``starts`` of the unit the next shard ends before: the plan's,
        or the first that starts once the shard's share of the file on disk was
        read (and after at least one unit of it); None while that is not in
        sight."""
        if self.plan is not None:
            return self.plan[len(self.cuts)] - first_unit
        cuts = self.cuts
        lo = max(cuts[-1] + 1 if cuts else 1, first_unit) - first_unit
        if lo >= len(starts):
            return None
        threshold = self.thresholds[len(cuts)]
        if _estimate(starts[-1:], self.segments)[0] < threshold:
            return None
        est = _estimate(starts[lo:], self.segments)
        return lo + int(np.searchsorted(est, threshold, side="left"))

    def finish(self) -> None:
        """After the last chunk: check that a dump is complete, write the rest."""
        if self.mediawiki and self.units and not self.tail.endswith(_FOOTER.rstrip()):
            raise _truncated(self.path, self.tail)
        self.emit(self.base + len(self.buf))
        self.writer.end()


def _one_pass(path: Path, fmt: str, parts: int, plan: list[int] | None,
              writer: _Writer, bar) -> tuple[int, list[int]]:
    """Read ``path`` once, writing the shards; return (units, unit index of each cut).

    Without a ``plan``, shard ``i`` ends before the first unit that starts once
    ``(i+1)/parts`` of the file's bytes on disk were read (and after at least one
    unit); with one, before the units whose indices it lists.
    """
    from .files import _prefetch, iter_chunks

    state = _Pass(path, fmt, parts, plan, writer)
    writer.start(0)
    reader = _prefetch(iter_chunks(path, _CHUNK_SIZE))
    try:
        for chunk, pos in reader:
            bar.update(pos - bar.n)
            state.feed(chunk, pos)
        state.finish()
        bar.update(max(0, state.size - bar.n))  # a zip's directory is never read
    finally:
        reader.close()
    return state.units, state.cuts


# --------------------------------------------------------------------------------------
# The public function


@contextlib.contextmanager
def _sigterm_interrupts():
    """While the shards are written, SIGTERM (``kill``, a job scheduler's time
    limit) interrupts like Ctrl-C: it raises :class:`KeyboardInterrupt`, so the
    partial shards are removed, as they are for SIGINT.  The previous handler is
    restored after.  Only in the main thread (where Python runs signal handlers),
    and only where SIGTERM has its default handler (one the program installed
    itself is left to it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (AttributeError, ValueError):  # pragma: no cover - no SIGTERM here
        yield
        return
    if previous is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum, frame):
        # once: a second SIGTERM must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"terminated (signal {signum})")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _names(path: Path, parts: int) -> tuple[str, list[str]]:
    """The input's stem and the shard file names, in corpus order."""
    name = path.name
    for suffix in _COMPRESSIONS:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[:-len(suffix)]
            break
    stem, ext = name, ""
    match = _EXTENSION.search(name)
    if match is not None and match.end() == len(name) and match.start() > 0:
        stem, ext = name[:match.start()], match.group()
    width = max(5, len(str(parts)))
    return stem, [f"{stem}-{i:0{width}d}-of-{parts:0{width}d}{ext}.gz"
                  for i in range(parts)]


def _bar(path: Path, progress: bool, what: str):
    from ..runtime.progress import bar

    return bar(progress, total=path.stat().st_size, unit="B", unit_scale=True,
               unit_divisor=1024, desc=f"{what} {path.name}")


def _make_dirs(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and missing parents; return those created, deepest first."""
    missing = []
    folder = out_dir
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    return missing


def _check_numbers(parts, compresslevel) -> tuple[int, int]:
    """``parts`` (>= 1) and ``compresslevel`` (0 to 9) as Python ints."""
    return (check_int(parts, "parts", "--parts"),
            check_int(compresslevel, "compresslevel", lo=0, hi=9))


def _check_input(path: Path, parts: int) -> Path:
    """``path`` if it is a file of at least ``parts`` bytes."""
    if path.is_dir():
        raise QwemError(f"{path} is a folder, not a corpus file; give the path of the "
                        "file inside it")
    if not path.is_file():
        raise QwemError(f"corpus file {path} does not exist; check the path")
    size = path.stat().st_size
    if parts > max(1, size):      # before any name or file is made for the parts
        raise QwemError(f"{parts:,} parts of {path} ({size:,} bytes) would be empty "
                        "shards; ask for at most one part per byte, and in practice "
                        "far fewer (a shard of several MB)")
    return path


def _check_out_dir(out_dir: Path, path: Path, stem: str, first: str) -> Path:
    """``out_dir`` if the shards of ``path`` (the first named ``first``) can be
    written there: not a file, not the input's own folder, without shards of this
    corpus, writable."""
    if out_dir.exists() and not out_dir.is_dir():
        raise QwemError(f"--out {out_dir} exists and is not a folder; give a folder "
                        "(new, or without shards of this corpus)")
    if out_dir.is_dir() and out_dir.resolve() == path.resolve().parent:
        raise QwemError(f"--out {out_dir} is the folder of {path.name}: read as a "
                        "corpus, that folder would count the input and its shards "
                        "both; give the shards a folder of their own")
    if out_dir.is_dir():
        old = sorted(glob.glob(os.path.join(glob.escape(str(out_dir)),
                                            glob.escape(stem) + "-*-of-*")))
        if old:
            more = f" and {len(old) - 1} more" if len(old) > 1 else ""
            raise QwemError(f"--out {out_dir} already holds shards of {stem} "
                            f"({Path(old[0]).name}{more}); remove them or choose "
                            "another --out folder")
    from ..runtime._atomic import _writable

    why = _writable(out_dir / first)
    if why is not None:
        raise QwemError(f"cannot write the shards into {out_dir}: {why}; choose "
                        "another --out folder")
    return out_dir


@contextlib.contextmanager
def _new_folders(out_dir: Path):
    """Create ``out_dir`` and its missing parents; if the block fails (or is
    interrupted), remove those created again (when empty)."""
    try:
        created = _make_dirs(out_dir)
    except OSError as exc:
        raise QwemError(f"cannot create the folder {out_dir}: "
                        f"{exc.strerror or exc}; choose another --out folder") from exc
    try:
        yield
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def split_corpus(path: str | os.PathLike, parts: int, out_dir: str | os.PathLike, *,
                 progress: bool = False, compresslevel: int = 6) -> list[Path]:
    """Split a corpus file into ``parts`` gzip shards, cut only between articles.

    The shards read in sorted name order hold the articles (or lines) of ``path``
    in order, each one whole in exactly one shard, so that a folder of them can be
    counted file by file (see the module documentation).  Shard ``i`` ends at the
    first article boundary after ``(i+1)/parts`` of the input's bytes on disk were
    read: shards hold about equal shares of the input.  The file is read once,
    streaming, and compressed in a background thread.

    Parameters
    ----------
    path : path
        One corpus file, plain or compressed (``.bz2``, ``.gz``, ``.xz``, ``.zip``;
        see :func:`qwem_lib.corpus.open_binary`), in UTF-8 or in UTF-16/32 with a
        byte-order mark.  Its format is told from its content
        (:func:`qwem_lib.corpus.data._infer_format`):

        * ``plain``: cut after a newline; a line longer than ``_LONG_LINE`` bytes
          (text8 is one line of 100 MB) is also cut, between two words, so a file
          of one line can be split too.
        * ``wikiextractor``: cut before a ``<doc …>`` line, never inside an article.
          Text outside the articles (ignored by the reader) is kept, with the
          article before it, so the shards are the input's bytes, cut.
        * ``mediawiki``: cut before a ``<page>`` element.  Each shard is a
          well-formed dump: the input's header (everything before its first
          ``<page>``, ``<siteinfo>`` included), whole pages, then
          ``</mediawiki>``.
    parts : int
        Number of shards, at least 1.
    out_dir : path
        Folder for the shards, created (with its parents) if missing.  It must not
        already hold shards of this corpus (files named ``{stem}-*-of-*``).
    progress : bool
        Show a progress bar of the input bytes read (on a terminal only).
    compresslevel : int
        gzip level, 0 (none) to 9 (smallest, slowest); 6 as gzip(1).

    Returns
    -------
    list of Path
        The shards, in corpus order, named ``{stem}-{i:05d}-of-{parts:05d}{ext}.gz``
        where ``stem`` and ``ext`` come from the input's name without its
        compression suffix (``enwiki.txt.bz2`` gives ``enwiki-00000-of-00008.txt.gz``
        …).  They are UTF-8, and the same input always gives the same bytes (no
        time stamp in the gzip header).

    Raises
    ------
    QwemError
        Before any work: ``parts`` not an integer >= 1, a missing or unreadable
        input, ``out_dir`` not a folder, not writable, or already holding shards
        of this corpus.  After reading: the input has fewer articles (lines, pages)
        than ``parts``, or is corrupt.  On any error, or an interruption, the
        partial shards are removed (and ``out_dir`` if it was created and is
        empty): either all shards appear, or none.

    Notes
    -----
    Every shard holds at least one article (line, page) if the input has at least
    ``parts``; a page may be a redirect or a talk page, which the reader skips.
    When the last articles are so long that a balanced split would leave the last
    shards empty (only for inputs of few, very unequal articles), the input is read
    a second time, cut so that each remaining shard gets at least one article.

    Examples
    --------
    >>> split_corpus("enwiki.txt.bz2", 8, "shards")  # doctest: +SKIP
    [PosixPath('shards/enwiki-00000-of-00008.txt.gz'), ...]
    """
    from . import data

    parts, compresslevel = _check_numbers(parts, compresslevel)
    path = _check_input(Path(path), parts)
    fmt = data._infer_format(path)
    stem, names = _names(path, parts)
    out_dir = _check_out_dir(Path(out_dir), path, stem, names[0])
    with _new_folders(out_dir), _sigterm_interrupts():
        return _write_shards(path, fmt, parts, progress, compresslevel, names, out_dir)


def _write_shards(path, fmt, parts, progress, compresslevel, names,
                  out_dir) -> list[Path]:
    """The shards' one (or two) passes; on any error or interruption the partial
    and renamed shards are removed (the caller removes the folders it made)."""
    finals = [out_dir / name for name in names]
    temps = [out_dir / f".{name}.tmp-{os.getpid()}" for name in names]
    renamed: list[Path] = []
    writer = None
    try:
        with _bar(path, progress, "splitting") as bar:
            writer = _Writer(temps, names, compresslevel)
            units, cuts = _one_pass(path, fmt, parts, None, writer, bar)
            writer.close()
        unit, plural, how = _UNITS[fmt]
        if units == 0:
            raise QwemError(f"{path} holds no {plural} ({fmt} format): nothing to "
                            "split; check that it is the corpus you meant")
        if units < parts:
            raise QwemError(f"{path} has {units:,} {unit if units == 1 else plural}, "
                            f"fewer than the {parts:,} parts asked for ({how}); "
                            f"choose --parts {units:,} or fewer")
        if len(cuts) < parts - 1:  # the last shards would be empty: cut by count
            for temp in temps:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            planned = cuts + [units] * (parts - 1 - len(cuts))
            plan = [min(c, units - (parts - 1 - i)) for i, c in enumerate(planned)]
            with _bar(path, progress, "splitting (again)") as bar:
                writer = _Writer(temps, names, compresslevel)
                units, cuts = _one_pass(path, fmt, parts, plan, writer, bar)
                writer.close()
            assert cuts == plan, (cuts, plan)
        for final in finals:
            if final.exists():
                raise QwemError(f"{final} appeared while the shards were being "
                                "written; remove it or choose another --out folder")
        for temp, final in zip(temps, finals):
            os.replace(temp, final)
            renamed.append(final)
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        for file in temps + renamed:
            with contextlib.suppress(OSError):
                file.unlink()
        if isinstance(exc, OSError):
            raise QwemError(f"cannot write the shards into {out_dir}: "
                            f"{exc.strerror or exc}; choose a writable --out folder "
                            "with free space") from exc
        raise
    return finals
