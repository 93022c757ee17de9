"""Tests of qwem_lib.corpus.splitter: a corpus into N gzip shards, cut between
articles."""

import bz2
import codecs
import errno
import gzip
import random
import re
from pathlib import Path

import pytest

from qwem_lib import corpus
from qwem_lib.corpus import (data, iter_chunks, iter_mediawiki, iter_wikiextractor,
                             open_binary, splitter)
from qwem_lib.corpus.splitter import split_corpus
from qwem_lib.runtime.errors import QwemError

FORMATS = ("plain", "wikiextractor", "mediawiki")
HEADER = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
          'version="0.10">\n  <siteinfo><sitename>Wikipedia</sitename>'
          '<dbname>enwiki</dbname></siteinfo>\n')
FOOTER = "</mediawiki>\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QWEM_DATA", raising=False)


def words(i: int, n: int) -> str:
    return " ".join(f"a{i}w{j}" for j in range(n))


def make_corpus(fmt: str, n: int, size=lambda i: 5 + (7 * i) % 23) -> str:
    """``n`` articles (lines, pages) of distinct words; a few traps for the cutter."""
    if fmt == "plain":
        return "".join(words(i, size(i)) + ("\n\n" if i % 9 == 4 else "\n")
                       for i in range(n))
    if fmt == "wikiextractor":
        out = []
        for i in range(n):
            body = words(i, size(i))
            if i % 7 == 3:  # a line that looks like a head inside an article
                body += "\n<doc not a new article"
            out.append(f'<doc id="{i}" url="u{i}" title="T{i}">\nT{i}\n{body}\n'
                       "</doc>\n")
            if i % 5 == 2:
                out.append("stray text outside\n")
        return "".join(out)
    pages = []
    for i in range(n):
        ns, extra = ("1", "") if i % 6 == 5 else ("0", "")
        if i % 11 == 7:
            extra = '    <redirect title="Else" />\n'
        text = "#REDIRECT [[Else]]" if extra else words(i, size(i))
        pages.append(f"  <page>\n    <title>T{i}</title>\n    <ns>{ns}</ns>\n"
                     f"    <id>{i}</id>\n{extra}    <revision><id>{i}</id>"
                     f'<text xml:space="preserve">{text}</text></revision>\n'
                     "  </page>\n")
    return HEADER + "".join(pages) + FOOTER


def write(path: Path, raw: str | bytes) -> Path:
    raw = raw.encode() if isinstance(raw, str) else raw
    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix)
    if opener is None:
        path.write_bytes(raw)
    else:
        with opener(path, "wb") as fh:
            fh.write(raw)
    return path


def name_for(fmt: str, suffix: str) -> str:
    return ("dump.xml" if fmt == "mediawiki" else "corpus.txt") + suffix


def decompressed(path: Path) -> bytes:
    with open_binary(path) as fh:
        return fh.read()


def units(path: Path, fmt: str) -> list[str]:
    """The units the cutter must keep whole: lines, <doc> bodies, <page> titles."""
    if fmt == "plain":
        return b"".join(c for c, _ in iter_chunks(path)).decode().splitlines(True)
    if fmt == "wikiextractor":
        return [b.decode() for b in iter_wikiextractor(c for c, _ in iter_chunks(path))]
    return re.findall(r"<title>(.*?)</title>",
                      b"".join(c for c, _ in iter_chunks(path)).decode())


def all_words(path: Path, fmt: str) -> list[bytes]:
    return [w for batch in corpus.iter_words(path, format=fmt, scheme="none")
            for w in batch]


def articles(path: Path) -> list[bytes]:
    with open_binary(path) as fh:
        return list(iter_mediawiki(fh, path))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------------------
# What the shards hold


@pytest.mark.parametrize("suffix", ["", ".bz2", ".gz"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_shards_hold_every_article_once_in_order(tmp_path, fmt, suffix):
    path = write(tmp_path / name_for(fmt, suffix), make_corpus(fmt, 60))
    assert data._infer_format(path) == fmt
    shards = split_corpus(path, 5, tmp_path / "out")
    assert len(shards) == 5 and shards == sorted(shards)
    assert files(tmp_path / "out") == [p.name for p in shards]  # no temporaries
    per_shard = [units(s, fmt) for s in shards]
    assert all(per_shard), [len(u) for u in per_shard]  # none empty
    assert sum(per_shard, []) == units(path, fmt)  # whole, once each, in order
    assert sum((all_words(s, fmt) for s in shards), []) == all_words(path, fmt)
    for shard in shards:
        assert data._infer_format(shard) == fmt
        with gzip.open(shard) as fh:  # real gzip, UTF-8
            fh.read().decode("utf-8")
    text = decompressed(path)
    if fmt == "mediawiki":
        assert sum((articles(s) for s in shards), []) == articles(path)
        bodies = []
        for shard in shards:
            raw = decompressed(shard)
            assert raw.startswith(HEADER.encode()) and raw.endswith(FOOTER.encode())
            body = raw[len(HEADER):-len(FOOTER)]
            assert body.startswith(b"  <page>\n") and body.endswith(b"</page>\n")
            bodies.append(body)
        assert HEADER.encode() + b"".join(bodies) + FOOTER.encode() == text
    else:  # the input's bytes, cut: stray text outside <doc> is kept
        assert b"".join(decompressed(s) for s in shards) == text
        if fmt == "wikiextractor":
            assert all(decompressed(s).startswith(b"<doc ") for s in shards)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("suffix,chunk", [("", 1 << 22), (".gz", 512),
                                          (".bz2", 1 << 22)])
def test_shards_are_balanced(tmp_path, monkeypatch, fmt, suffix, chunk):
    # 400 articles of about equal size: each of 8 shards should hold about 1/8 of the
    # bytes (measured without the header and footer each MediaWiki shard repeats)
    monkeypatch.setattr(splitter, "_CHUNK_SIZE", chunk)
    path = write(tmp_path / name_for(fmt, suffix),
                 make_corpus(fmt, 400, size=lambda i: 12))
    shards = split_corpus(path, 8, tmp_path / "out")
    frame = len(HEADER) + len(FOOTER) if fmt == "mediawiki" else 0
    sizes = [len(decompressed(s)) - frame for s in shards]
    ideal = (len(decompressed(path)) - frame) / 8
    longest = max(len(u) for u in decompressed(path).split(b"\n<"))  # about a unit
    if suffix == "":  # exact positions: within one article of the ideal share
        assert all(abs(n - ideal) <= longest for n in sizes), (sizes, ideal, longest)
    assert all(0.75 * ideal <= n <= 1.25 * ideal for n in sizes), (sizes, ideal)
    counts = [len(units(s, fmt)) for s in shards]
    assert sum(counts) == len(units(path, fmt)) and min(counts) > 0.6 * max(counts)


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunk_boundaries_do_not_move_the_cuts(tmp_path, monkeypatch, fmt):
    path = write(tmp_path / name_for(fmt, ""), make_corpus(fmt, 30))
    want = None
    for chunk in (1 << 20, 64, 7, 3):
        monkeypatch.setattr(splitter, "_CHUNK_SIZE", chunk)
        got = [s.read_bytes() for s in split_corpus(path, 4, tmp_path / f"o{chunk}")]
        want = want or got
        assert got == want, chunk


def test_split_is_reproducible(tmp_path):
    path = write(tmp_path / "corpus.txt.bz2", make_corpus("wikiextractor", 50))
    first = split_corpus(path, 3, tmp_path / "a")
    second = split_corpus(path, 3, tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert all(p.read_bytes()[4:8] == b"\0\0\0\0" for p in first)  # no time stamp


@pytest.mark.parametrize("fmt", ["plain", "wikiextractor"])
def test_one_part_recompresses_the_corpus(tmp_path, fmt):
    path = write(tmp_path / "corpus.txt.bz2", make_corpus(fmt, 10))
    [shard] = split_corpus(path, 1, tmp_path / "out")
    assert shard.name == "corpus-00000-of-00001.txt.gz"
    assert gzip.decompress(shard.read_bytes()) == decompressed(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_last_articles_still_give_every_shard_one(tmp_path, fmt):
    # the last article is most of the file: a split by size alone would leave the
    # last shards empty; every shard must still get one of the 5 articles
    size = {0: 3, 1: 3, 2: 3, 3: 3, 4: 3000}
    path = write(tmp_path / name_for(fmt, ".gz"),
                 make_corpus(fmt, 5, size=lambda i: size[i]))
    shards = split_corpus(path, 4, tmp_path / "out")
    counts = [len(units(s, fmt)) for s in shards]
    assert all(counts) and sum(counts) == len(units(path, fmt)), counts
    assert sum((all_words(s, fmt) for s in shards), []) == all_words(path, fmt)
    assert files(tmp_path / "out") == [p.name for p in shards]


def test_utf16_input_gives_utf8_shards_with_the_same_words(tmp_path):
    text = make_corpus("wikiextractor", 20).replace("T3\n",
                                                    "T3\nTōkyō 東京 😀 naïve\n")
    twin = write(tmp_path / "twin.txt", text)
    path = write(tmp_path / "wide.txt.bz2",
                 codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    shards = split_corpus(path, 3, tmp_path / "out")
    raw = [gzip.decompress(s.read_bytes()) for s in shards]
    assert b"".join(raw) == text.encode("utf-8")  # UTF-8, no byte-order mark
    assert sum((all_words(s, "wikiextractor") for s in shards), []) == all_words(
        twin, "wikiextractor")
    assert "東京".encode() in b"".join(raw)


def test_utf16_dump_shards_declare_utf8(tmp_path):
    text = ('<?xml version="1.0" encoding="UTF-16"?>\n'
            + make_corpus("mediawiki", 12))
    path = write(tmp_path / "dump.xml", codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    shards = split_corpus(path, 3, tmp_path / "out")
    for shard in shards:
        assert decompressed(shard).startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        assert data._infer_format(shard) == "mediawiki"
    assert sum((articles(s) for s in shards), []) == articles(path)


def test_shard_names():
    assert splitter._names(Path("d/enwiki.txt.bz2"), 8)[1][:2] == [
        "enwiki-00000-of-00008.txt.gz", "enwiki-00001-of-00008.txt.gz"]
    assert splitter._names(Path("dump.xml"), 4)[1][3] == "dump-00003-of-00004.xml.gz"
    assert splitter._names(Path("text8.zip"), 2)[1][0] == "text8-00000-of-00002.gz"
    assert splitter._names(Path("text8"), 2)[1][0] == "text8-00000-of-00002.gz"
    assert splitter._names(Path("a.xml-p1p41242.bz2"), 2)[1][0] == (
        "a.xml-p1p41242-00000-of-00002.gz")  # not an extension
    many = splitter._names(Path("c.txt"), 123456)[1]
    assert many[-1] == "c-123455-of-123456.txt.gz" and many == sorted(many)


# --------------------------------------------------------------------------------------
# Refusals and failures: nothing half-written is ever left


@pytest.mark.parametrize("parts", [0, -1, True, "3", 2.0, None])
def test_parts_must_be_a_positive_integer(tmp_path, parts):
    path = write(tmp_path / "c.txt", make_corpus("plain", 10))
    with pytest.raises(QwemError, match="parts"):
        split_corpus(path, parts, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    path = write(tmp_path / "c.txt", make_corpus("plain", 10))
    out = write(tmp_path / "out", b"keep me")
    with pytest.raises(QwemError, match="not a folder"):
        split_corpus(path, 2, out)
    assert out.read_bytes() == b"keep me"


def test_existing_shards_are_never_overwritten(tmp_path):
    path = write(tmp_path / "c.txt", make_corpus("plain", 10))
    out = tmp_path / "out"
    out.mkdir()
    old = out / "c-00000-of-00003.txt.gz"
    old.write_bytes(b"old shard")
    (out / "notes.md").write_bytes(b"mine")
    with pytest.raises(QwemError, match="c-00000-of-00003.txt.gz.*remove them"):
        split_corpus(path, 2, out)
    assert files(out) == ["c-00000-of-00003.txt.gz", "notes.md"]
    assert old.read_bytes() == b"old shard"


@pytest.mark.parametrize("fmt,n,unit", [("plain", 3, "lines"),
                                        ("wikiextractor", 3, "articles"),
                                        ("mediawiki", 3, "pages"),
                                        ("plain", 1, "line")])
def test_fewer_articles_than_parts_leaves_nothing(tmp_path, fmt, n, unit):
    path = write(tmp_path / name_for(fmt, ".bz2"), make_corpus(fmt, n))
    with pytest.raises(QwemError, match=rf"has {n} {unit}, fewer than the 4 parts.*"
                                        rf"--parts {n} or fewer"):
        split_corpus(path, 4, tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()  # the folders it created are gone
    kept = tmp_path / "kept"
    kept.mkdir()
    write(kept / "x.txt", b"x")
    with pytest.raises(QwemError, match="fewer than"):
        split_corpus(path, 4, kept)
    assert files(kept) == ["x.txt"]


def test_a_short_file_of_one_line_cannot_be_split(tmp_path):
    path = write(tmp_path / "text8", "one long line of words without a newline")
    with pytest.raises(QwemError, match="1 line,.*cut only between lines"):
        split_corpus(path, 2, tmp_path / "out")
    [shard] = split_corpus(path, 1, tmp_path / "out")
    assert gzip.decompress(shard.read_bytes()) == path.read_bytes()


@pytest.mark.parametrize("suffix", ["", ".bz2"])
def test_one_long_line_is_cut_between_words(tmp_path, monkeypatch, suffix):
    """text8 is one line of 100 MB: cut between words, every _LONG_LINE bytes."""
    monkeypatch.setattr(splitter, "_LONG_LINE", 1000)
    text = words(7, 3000)  # about 19 kB, no newline
    path = write(tmp_path / ("text8" + suffix), text)
    shards = split_corpus(path, 4, tmp_path / "out")
    pieces = [gzip.decompress(p.read_bytes()).decode() for p in shards]
    assert all(pieces) and "".join(pieces) == text
    assert all(piece.endswith(" ") for piece in pieces[:-1])  # no word cut in two
    sizes = [len(piece) for piece in pieces]
    assert max(sizes) < 2 * min(sizes)
    got = [w for p in shards for batch in corpus.iter_words(p, scheme="none")
           for w in batch]
    assert got == text.encode().split()


def test_an_empty_corpus_is_refused(tmp_path):
    path = write(tmp_path / "empty.txt", b"")
    with pytest.raises(QwemError, match="no lines"):
        split_corpus(path, 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_input_leaves_no_shards(tmp_path, monkeypatch):
    # a gzip file cut at 3/4: the first shard is complete when the error comes
    whole = gzip.compress(make_corpus("plain", 12000).encode(), compresslevel=1)
    path = tmp_path / "c.txt.gz"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    ended = []
    real = splitter._Writer.end
    monkeypatch.setattr(splitter._Writer, "end",
                        lambda self, footer=b"": ended.append(1) or real(self, footer))
    out = tmp_path / "out"
    with pytest.raises(QwemError, match="c.txt.gz.*corrupt"):
        split_corpus(path, 3, out)
    assert ended  # at least one shard was finished before the error
    assert not out.exists()


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_failure_after_the_first_shard_leaves_nothing(tmp_path, monkeypatch, error):
    path = write(tmp_path / "c.txt", make_corpus("wikiextractor", 40))
    out = tmp_path / "out"
    out.mkdir()

    def failing_open(file, *args, **kw):  # the writer cannot open the second shard
        if Path(file).name.startswith(".c-00001-of-00003.txt.gz.tmp"):
            raise error
        return open(file, *args, **kw)

    monkeypatch.setattr(splitter, "open", failing_open, raising=False)
    if isinstance(error, OSError):
        with pytest.raises(QwemError, match="cannot write .*No space left"):
            split_corpus(path, 3, out)
    else:
        with pytest.raises(KeyboardInterrupt):
            split_corpus(path, 3, out)
    assert files(out) == []  # no shard, no temporary


def test_interrupt_while_reading_leaves_nothing(tmp_path, monkeypatch):
    path = write(tmp_path / "c.txt.gz", make_corpus("plain", 2000))
    monkeypatch.setattr(splitter, "_CHUNK_SIZE", 1024)
    seen = []
    real = splitter._Lines.feed

    def feed(self, buf, base, new):
        seen.append(new)
        if len(seen) == 5:
            raise KeyboardInterrupt
        return real(self, buf, base, new)

    monkeypatch.setattr(splitter._Lines, "feed", feed)
    with pytest.raises(KeyboardInterrupt):
        split_corpus(path, 4, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_random_cut_points_keep_words(tmp_path, monkeypatch):
    # irregular articles, many small reads of a gzip file: words survive any split
    rng = random.Random(3)
    sizes = [rng.choice([1, 2, 40, 300]) for _ in range(80)]
    path = write(tmp_path / "c.txt.gz",
                 make_corpus("wikiextractor", 80, size=lambda i: sizes[i]))
    monkeypatch.setattr(splitter, "_CHUNK_SIZE", 301)
    want = units(path, "wikiextractor")
    for parts in (2, 7, 80):
        shards = split_corpus(path, parts, tmp_path / f"o{parts}")
        got = [units(s, "wikiextractor") for s in shards]
        assert all(got) and sum(got, []) == want, parts
