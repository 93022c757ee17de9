"""Tests of qwem_lib.corpus: normalisation, readers, vocabulary, token ids, cache."""

import bz2
import codecs
import contextlib
import gzip
import hashlib
import lzma
import os
import random
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from qwem_lib import corpus
from qwem_lib.corpus import TokenData, Vocabulary, data
from qwem_lib.corpus import files as corpus_files
from qwem_lib.corpus import iter_words, load_tokens, normalise, open_binary
from qwem_lib.corpus import tokens as corpus_tokens
from qwem_lib.runtime.errors import QwemError

DIGIT_NAMES = "zero one two three four five six seven eight nine".split()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Never touch the real cache or data folders."""
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QWEM_DATA", raising=False)


def reference_normalise(text: str, scheme: str) -> str:
    """Independent, per-character definition of the two schemes (slow, obvious)."""
    text = text.lower()
    if scheme == "text8":
        text = re.sub(r"[0-9]", lambda m: f" {DIGIT_NAMES[int(m.group())]} ", text)
    return re.sub(r"[^a-z]+", " ", text).strip()


def write(path: Path, text: str | bytes) -> Path:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    opener = {".bz2": bz2.open, ".gz": gzip.open, ".xz": lzma.open}.get(path.suffix)
    if opener is not None:
        with opener(path, "wb") as fh:
            fh.write(raw)
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("member", raw)
    else:
        path.write_bytes(raw)
    return path


def all_words(path, **kw) -> list[str]:
    return [w.decode() for batch in iter_words(path, **kw) for w in batch]


def stream(td: TokenData) -> list[str]:
    return [td.vocab.words[i] for i in td.ids]


# --------------------------------------------------------------------------------------
# Normalisation

TRICKY = "Élan: It's 1984—B-52s & Café_au-lait\nİzmir 3\u212a"


def test_normalise_tricky_string_by_hand():
    # É, —, é are not a-z; İ lowercases to 'i' + a combining dot; the Kelvin sign
    # lowercases to 'k'; text8 spells out each digit.
    assert normalise(TRICKY, "paper") == "lan it s b s caf au lait i zmir k"
    assert normalise(TRICKY, "text8") == (
        "lan it s one nine eight four b five two s caf au lait i zmir three k")
    assert normalise(TRICKY, "none") == (
        "Élan: It's 1984—B-52s & Café_au-lait İzmir 3\u212a")
    assert normalise(TRICKY.encode(), "paper") == normalise(TRICKY, "paper")


def test_normalise_matches_reference_on_random_text():
    rng = random.Random(0)
    alphabet = "aAzZmQ09 5_-.,'\n\t\u00e9\u00c9\u0130\u212a\u00df\u0660\u2014xyz"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for scheme in ("paper", "text8"):
            assert normalise(text, scheme) == reference_normalise(text, scheme), text


def test_unknown_scheme_is_reported():
    with pytest.raises(QwemError, match="scheme"):
        normalise("abc", "lower")


# --------------------------------------------------------------------------------------
# Readers

WIKIEXTRACTOR = """<doc id="1" url="u1" title="Alpha">
Alpha
Alpha is the first letter. It has 2 forms.
Second paragraph here.
</doc>
stray text outside
<doc id="2" url="u2" title="Beta">
Beta
Short one.
</doc>
<doc id="3" url="u3" title="Gamma Ray">
Gamma Ray

Gamma rays: high-energy photons!
</doc>
"""
ARTICLE1 = "alpha is the first letter it has forms second paragraph here".split()
ARTICLE2 = ["short", "one"]
ARTICLE3 = "gamma rays high energy photons".split()


def test_wikiextractor_titles_skipped_and_article_filter(tmp_path):
    path = write(tmp_path / "wiki.txt", WIKIEXTRACTOR)
    assert data.resolve_corpus(path)[1].format == "wikiextractor"
    got = all_words(path, format="wikiextractor", scheme="paper")
    assert got == ARTICLE1 + ARTICLE2 + ARTICLE3  # no titles, no stray text
    text8 = all_words(path, format="wikiextractor", scheme="text8")
    assert text8[:8] == "alpha is the first letter it has two".split()
    # article filter counts tokens after normalisation: 11 (12 in text8), 2, 5
    assert all_words(path, format="wikiextractor", min_article_tokens=3) == (
        ARTICLE1 + ARTICLE3)
    assert all_words(path, format="wikiextractor", min_article_tokens=6) == ARTICLE1
    assert all_words(path, format="wikiextractor", min_article_tokens=12) == []
    assert len(all_words(path, format="wikiextractor", scheme="text8",
                         min_article_tokens=12)) == 12


MEDIAWIKI = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" \
version="0.10">
  <siteinfo><sitename>Wikipedia</sitename></siteinfo>
  <page>
    <title>Anarchism</title>
    <ns>0</ns>
    <id>12</id>
    <revision><id>1</id><text xml:space="preserve">'''Anarchism''' is a \
[[political philosophy|philosophy]] that advocates {{citation needed}} \
[[self-governance]].
== History ==
Text in 2 parts.</text></revision>
  </page>
  <page>
    <title>Talk:Anarchism</title>
    <ns>1</ns>
    <id>13</id>
    <revision><id>2</id><text xml:space="preserve">talk page words</text></revision>
  </page>
  <page>
    <title>AccessibleComputing</title>
    <ns>0</ns>
    <id>10</id>
    <redirect title="Computer accessibility" />
    <revision><id>3</id><text>#REDIRECT [[Computer accessibility]]</text></revision>
  </page>
  <page>
    <title>Old</title>
    <ns>0</ns>
    <id>14</id>
    <revision><id>4</id><text>#redirect [[Somewhere else]]</text></revision>
  </page>
  <page>
    <title>Zebra</title>
    <ns>0</ns>
    <id>15</id>
    <revision><id>5</id><text>The '''zebra''' is striped.</text></revision>
  </page>
</mediawiki>
"""


@pytest.mark.parametrize("name", ["dump.xml", "dump.xml.bz2"])
def test_mediawiki_namespace_redirects_markup(tmp_path, name):
    path = write(tmp_path / name, MEDIAWIKI)
    assert data.resolve_corpus(path)[1].format == "mediawiki"
    got = all_words(path, format="mediawiki", scheme="paper")
    assert got == ("anarchism is a philosophy that advocates self governance history "
                   "text in parts the zebra is striped").split()
    text8 = all_words(path, format="mediawiki", scheme="text8", min_article_tokens=5)
    assert text8 == ("anarchism is a philosophy that advocates self governance "
                     "history text in two parts").split()


def test_broken_xml_is_reported(tmp_path):
    path = write(tmp_path / "dump.xml", MEDIAWIKI[:300])
    with pytest.raises(QwemError, match="MediaWiki XML"):
        all_words(path, format="mediawiki")


@pytest.mark.parametrize("suffix", [".bz2", ".gz", ".xz", ".zip"])
def test_compressed_files_read_like_plain(tmp_path, suffix):
    text = ("Some plain text, with 7 words in it. " * 50 + WIKIEXTRACTOR) * 3
    plain = write(tmp_path / "corpus.txt", text)
    packed = write(tmp_path / f"corpus.txt{suffix}", text)
    with open_binary(packed) as fh:
        assert fh.read() == text.encode()
    for scheme in ("paper", "text8"):
        assert all_words(packed, scheme=scheme, chunk_size=97) == all_words(
            plain, scheme=scheme)


def test_multistream_bz2(tmp_path):
    path = tmp_path / "multi.txt.bz2"
    path.write_bytes(bz2.compress(b"one two ") + bz2.compress(b"three four"))
    assert all_words(path, chunk_size=5) == ["one", "two", "three", "four"]


@pytest.mark.parametrize("fmt,text", [("plain", TRICKY * 40 + " tail"),
                                      ("wikiextractor", WIKIEXTRACTOR * 7)])
@pytest.mark.parametrize("suffix", ["", ".bz2"])
def test_chunk_boundaries_do_not_change_the_words(tmp_path, fmt, text, suffix):
    path = write(tmp_path / f"c.txt{suffix}", text)
    whole = all_words(path, format=fmt, scheme="text8", chunk_size=1 << 20)
    assert whole
    for chunk_size in (1, 2, 3, 7, 64):
        assert all_words(path, format=fmt, scheme="text8",
                         chunk_size=chunk_size) == whole, chunk_size


def test_corrupt_compressed_file(tmp_path):
    good = bz2.compress(b"hello world " * 1000)
    truncated = tmp_path / "t.txt.bz2"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "g.txt.gz"
    garbage.write_bytes(b"this is not gzip data at all")
    for path in (truncated, garbage):
        with pytest.raises(QwemError, match="corrupt"):
            all_words(path)
        with pytest.raises(QwemError, match=path.name):
            load_tokens(path, 1, progress=False)
    with pytest.raises(QwemError, match="corrupt"):
        with open_binary(garbage) as fh:
            fh.read()


# --------------------------------------------------------------------------------------
# Vocabulary and token ids


def test_vocabulary_tie_breaking():
    vocab = Vocabulary.from_counts({"b": 2, "a": 2, "c": 3, "d": 1, "aa": 2}, 3)
    assert vocab.words == ("c", "a", "aa")  # count desc, then alphabetical
    assert vocab.counts.tolist() == [3, 2, 2]
    assert vocab.id("aa") == 2 and "b" not in vocab and len(vocab) == 3
    with pytest.raises(KeyError):
        vocab.id("b")
    assert vocab == Vocabulary(("c", "a", "aa"), np.array([3, 2, 2]))


def test_load_tokens_vocabulary_and_oov_removal(tmp_path):
    path = write(tmp_path / "t.txt", "b a, c C c! a b d e. x B")
    td = load_tokens(path, 3, progress=False)
    # counts: b 3, c 3, a 2, d 1, e 1, x 1 -> vocabulary b, c, a (ties alphabetical)
    assert td.vocab.words == ("b", "c", "a")
    assert td.vocab.counts.tolist() == [3, 3, 2]
    assert td.n_tokens == 11
    assert td.ids.dtype == np.int32
    # out-of-vocabulary d, e, x are removed, the order of the rest is kept
    assert stream(td) == "b a c c c a b b".split()
    assert td.coverage == pytest.approx(8 / 11)
    assert "scheme=paper" in td.source and str(path) in td.source


def test_tokeniser_matches_python_dict_on_random_words(tmp_path):
    """Keys of <=8, 9-12 and >12 letters, and the general path for scheme 'none'."""
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    pool = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16)))
            for alphabet in ("abz", letters) for _ in range(300)]
    pool += ["caf\u00e9", "na\u00efve", "x1"]
    tokens = [rng.choice(pool) for _ in range(20000)]
    path = write(tmp_path / "r.txt", " ".join(tokens))
    counts: dict[str, int] = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    vocab = Vocabulary.from_counts(counts, 50)
    td = load_tokens(path, 50, scheme="none", progress=False, chunk_size=333)
    assert td.vocab == vocab
    assert stream(td) == [t for t in tokens if t in vocab]


def test_plain_text_ignores_article_filter_with_warning(tmp_path):
    path = write(tmp_path / "t.txt", "a b c")
    with pytest.warns(UserWarning, match="min_article_tokens"):
        td = load_tokens(path, 2, min_article_tokens=500, progress=False)
    assert td.n_tokens == 3


def test_wikiextractor_load_tokens_article_filter(tmp_path):
    path = write(tmp_path / "w.txt.bz2", WIKIEXTRACTOR)
    td = load_tokens(path, 5, min_article_tokens=3, progress=False)
    assert td.n_tokens == len(ARTICLE1) + len(ARTICLE3)
    assert "min_article_tokens=3" in td.source


# --------------------------------------------------------------------------------------
# Cache


def test_cache_is_reused_for_another_vocab_size(tmp_path, monkeypatch):
    path = write(tmp_path / "t.txt.gz", "the cat saw the dog and the cat ran " * 20)
    first = load_tokens(path, 4, progress=False)
    files = list((tmp_path / "cache" / "tokens").glob("*.npz"))
    assert len(files) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(corpus_tokens, "_iter_buffers", no_reading)
    again = load_tokens(path, 4, progress=False)
    assert again.vocab == first.vocab and np.array_equal(again.ids, first.ids)
    smaller = load_tokens(path, 2, progress=False)
    assert smaller.vocab.words == ("the", "cat")
    assert stream(smaller) == [w for w in stream(first) if w in ("the", "cat")]
    with pytest.raises(AssertionError, match="read again"):
        load_tokens(path, 2, scheme="text8", progress=False)  # another key
    with pytest.raises(AssertionError, match="read again"):
        load_tokens(path, 2, cache=False, progress=False)


def test_cache_notices_a_changed_file(tmp_path):
    path = write(tmp_path / "t.txt", "a a b a")
    st = os.stat(path)
    assert load_tokens(path, 1, progress=False).vocab.words == ("a",)
    write(path, "b b b a")                                      # the same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))          # and time (cp -p)
    assert load_tokens(path, 1, progress=False).vocab.words == ("b",)
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npz"))) == 2


# --------------------------------------------------------------------------------------
# Errors


def test_load_tokens_errors(tmp_path):
    with pytest.raises(QwemError, match="does not exist"):
        load_tokens(tmp_path / "missing.txt", 10, progress=False)
    empty = write(tmp_path / "empty.txt", "123 ... !!! \n")
    with pytest.raises(QwemError, match="no tokens"):
        load_tokens(empty, 1, progress=False)
    small = write(tmp_path / "small.txt", "a b c a")
    with pytest.raises(QwemError, match=r"only 3 distinct words; choose --vocab-size"):
        load_tokens(small, 4, progress=False)
    for bad in (0, -5):
        with pytest.raises(QwemError, match="vocab_size"):
            load_tokens(small, bad, progress=False)
    with pytest.raises(QwemError, match="vocab_size"):
        load_tokens(small, 2.5, progress=False)
    with pytest.raises(QwemError, match="min_article_tokens"):
        load_tokens(small, 2, min_article_tokens=-1, progress=False)
    with pytest.raises(QwemError, match="scheme"):
        load_tokens(small, 2, scheme="lowercase", progress=False)


# --------------------------------------------------------------------------------------
# The shared corpora (skipped unless QWEM_DATA points at them)

# QWEM_DATA as set when the tests started (the fixture above hides it from the tests).
_SHARED_DIRS = [Path(p) for p in os.environ.get("QWEM_DATA", "").split(os.pathsep) if p]


def _shared_file(name: str) -> Path | None:
    filename = data.CORPORA[name].filename
    return next((d / filename for d in _SHARED_DIRS if (d / filename).is_file()), None)


def _first_tokens_digest(path: Path, fmt: str, scheme: str, n: int) -> tuple[int, str]:
    """sha256 of the first ``n`` tokens joined by spaces, and how many there were."""
    digest, seen = hashlib.sha256(), 0
    with contextlib.closing(iter_words(path, fmt, scheme)) as batches:
        for words in batches:
            words = words[: n - seen]
            digest.update((b" " if seen else b"") + b" ".join(words))
            seen += len(words)
            if seen == n:
                break
    return seen, digest.hexdigest()


def test_enwiki2015_normalised_starts_with_wiki2015_text8():
    """PROVENANCE.md: text8-normalising the WikiExtractor file gives tokens whose
    first 16,943,230 are those of wiki2015_text8style_1e8 (about 20-40 s)."""
    enwiki, text8style = _shared_file("enwiki2015"), _shared_file("wiki2015-text8")
    if enwiki is None or text8style is None:
        pytest.skip("set QWEM_DATA to the folder holding "
                    f"{data.CORPORA['enwiki2015'].filename} and "
                    f"{data.CORPORA['wiki2015-text8'].filename} to run this check")
    n = 16_943_230
    seen, digest = _first_tokens_digest(enwiki, "wikiextractor", "text8", n)
    seen_8, digest_8 = _first_tokens_digest(text8style, "plain", "none", n + 1)
    assert seen == seen_8 == n
    # sha256 of the uncompressed wiki2015_text8style_1e8.txt (PROVENANCE.md)
    expected = "7561b12026c2eea01e3730b0e91e40ed4a8aa04b05de14514c10388e37829407"
    assert digest == digest_8 == expected


# --------------------------------------------------------------------------------------
# Text encodings: byte-order marks, UTF-16/32, data that is not text

# Characters outside the BMP (surrogate pairs in UTF-16) and multi-byte UTF-8, so
# small chunk sizes split code units and surrogate pairs between reads.
WIDE = "Tōkyō 東京 naïve 😀 emoji 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 done.\n"
WIKI_WIDE = WIKIEXTRACTOR.replace("Short one.\n", "Short one.\n" + WIDE) + WIDE
BOMS = {"utf-8-sig": b"", "utf-16-le": codecs.BOM_UTF16_LE,
        "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE,
        "utf-32-be": codecs.BOM_UTF32_BE}


def encoded(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding``, starting with its byte-order mark."""
    return BOMS[encoding] + text.encode(encoding)


@pytest.mark.parametrize("encoding", list(BOMS))
@pytest.mark.parametrize("suffix", ["", ".bz2"])
@pytest.mark.parametrize("fmt,text", [("plain", (TRICKY + " " + WIDE) * 9),
                                      ("wikiextractor", WIKI_WIDE * 3)])
def test_utf16_and_utf32_corpora_read_like_their_utf8_twin(tmp_path, encoding, suffix,
                                                          fmt, text):
    twin = write(tmp_path / f"twin.txt{suffix}", text.encode("utf-8"))
    path = write(tmp_path / f"c.txt{suffix}", encoded(text, encoding))
    assert path.read_bytes() != twin.read_bytes()
    assert data.resolve_corpus(path)[1].format == fmt  # sees through the encoding
    for scheme in ("none", "text8"):
        want = all_words(twin, format=fmt, scheme=scheme)
        assert want
        for chunk_size in (1, 2, 3, 5, 64, 1 << 20):
            assert all_words(path, format=fmt, scheme=scheme,
                             chunk_size=chunk_size) == want, (scheme, chunk_size)
    assert "東京" in all_words(path, format=fmt, scheme="none")
    got = load_tokens(path, 5, scheme="none", cache=False, progress=False)
    ref = load_tokens(twin, 5, scheme="none", cache=False, progress=False)
    assert got.vocab == ref.vocab and np.array_equal(got.ids, ref.ids)
    assert got.n_tokens == ref.n_tokens


def test_utf8_bom_is_not_part_of_the_first_word(tmp_path):
    path = write(tmp_path / "bom.txt", codecs.BOM_UTF8 + b"first second")
    assert all_words(path, scheme="none") == ["first", "second"]
    wiki = write(tmp_path / "bom_wiki.txt", codecs.BOM_UTF8 + WIKIEXTRACTOR.encode())
    assert data.resolve_corpus(wiki)[1].format == "wikiextractor"
    assert all_words(wiki, format="wikiextractor") == ARTICLE1 + ARTICLE2 + ARTICLE3


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-be"])
@pytest.mark.parametrize("name", ["dump.xml", "dump.xml.bz2"])
def test_mediawiki_in_utf16_with_its_xml_declaration(tmp_path, encoding, name):
    # The declaration names the file's encoding; once transcoded it must say UTF-8
    # or expat refuses the document.
    declared = f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' + MEDIAWIKI
    path = write(tmp_path / name, encoded(declared, encoding))
    assert data.resolve_corpus(path)[1].format == "mediawiki"
    want = all_words(write(tmp_path / "twin.xml", MEDIAWIKI), format="mediawiki")
    for chunk_size in (1, 7, 1 << 20):
        assert all_words(path, format="mediawiki", chunk_size=chunk_size) == want
    # iconv converts the bytes but leaves the declaration saying UTF-16
    stale = write(tmp_path / "stale.xml", declared.encode("utf-8"))
    assert all_words(stale, format="mediawiki", chunk_size=3) == want


def noise(n: int, seed: int = 0) -> bytes:
    """Random bytes that do not start with a byte-order mark (as os.urandom gives)."""
    raw = random.Random(seed).randbytes(n)
    return b"x" + raw[1:] if raw[:2] in (b"\xff\xfe", b"\xfe\xff", b"\xef\xbb") else raw


@pytest.mark.parametrize("name", ["r.bin", "r.txt.gz", "r.txt.xz"])
def test_random_bytes_are_refused(tmp_path, name):
    path = write(tmp_path / name, noise(50_000))
    for read in (lambda: all_words(path),
                 lambda: load_tokens(path, 5, progress=False),
                 lambda: load_tokens(path, 5, progress=False),  # nothing was cached
                 lambda: all_words(path, format="wikiextractor"),
                 lambda: all_words(path, format="mediawiki")):
        with pytest.raises(QwemError) as info:
            read()
        msg = str(info.value)
        assert "\n" not in msg
        assert re.search(re.escape(str(path)) + r" is not UTF-8 text \((\d+\.?\d*)% of",
                         msg), msg
        share = float(re.search(r"\((\d+\.?\d*)%", msg).group(1))
        assert 40 < share < 70  # about half the bytes of random data are invalid
        assert "iconv" in msg


def test_random_bytes_after_a_utf32_bom_are_refused(tmp_path):
    path = write(tmp_path / "r32.txt", codecs.BOM_UTF32_LE + noise(40_000))
    with pytest.raises(QwemError, match=r"is not UTF-32-LE text \(\d"):
        all_words(path)


def test_utf16_without_a_bom_is_refused_with_a_hint(tmp_path):
    for encoding, hint in (("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE")):
        path = write(tmp_path / f"{encoding}.txt", (TRICKY * 20).encode(encoding))
        with pytest.raises(QwemError, match=f"iconv -f {hint} -t UTF-8"):
            all_words(path)


def test_the_command_line_exits_2_on_binary_data(tmp_path, capsys):
    from qwem_lib import cli

    path = write(tmp_path / "r.txt.bz2", noise(20_000, seed=3))
    status = cli.main(["embed", "--corpus", str(path), "--vocab-size", "5", "--dim",
                       "2", "--quiet", "--no-cache", "--out", str(tmp_path / "e.txt")])
    err = capsys.readouterr().err
    assert status == 2, err
    last = err.splitlines()[-1]
    assert last.startswith("qwem: error: ") and "is not UTF-8 text" in last
    assert "Traceback" not in err


def test_stray_invalid_bytes_and_controls_are_still_read(tmp_path):
    """A dump with one bad byte in 1000 reads as before: bad bytes separate words."""
    rng = random.Random(5)
    pool = "the of and river valley café naïve".split()
    text = bytearray(" ".join(rng.choice(pool) for _ in range(60_000)).encode())
    bad = [b"\xff", b"\x00", b"\xc3", b"\x1b", b"\x80"]
    at = range(500, len(text), 1000)
    for k, i in enumerate(at):
        text[i] = bad[k % len(bad)][0]
    path = write(tmp_path / "stray.txt", bytes(text))
    clean = bytes(text)
    for b in bad:
        clean = clean.replace(b, b" ")
    twin = write(tmp_path / "clean.txt", clean)
    assert len(at) > 100 and path.stat().st_size > 300_000
    for scheme in ("paper", "text8"):
        assert all_words(path, scheme=scheme, chunk_size=4096) == all_words(
            twin, scheme=scheme)


def test_refusal_threshold_is_max_non_text_fraction(tmp_path):
    """Just under the limit reads; just over it is refused (1 MiB sample)."""
    n = 1 << 20
    limit = corpus.MAX_NON_TEXT_FRACTION
    for share, refused in ((limit - 0.01, False), (limit + 0.01, True)):
        buf = bytearray(b"ab " * (n // 3 + 1000))
        step = round(1 / share)
        buf[1:n:step] = b"\x00" * len(range(1, n, step))
        path = write(tmp_path / f"t{share:.2f}.txt.gz", bytes(buf))
        if refused:
            with pytest.raises(QwemError, match=r"of its first MiB, decompressed, are"):
                all_words(path, chunk_size=1 << 16)
        else:
            assert all_words(path, chunk_size=1 << 16)


def test_only_the_head_is_checked_once_per_read(tmp_path, monkeypatch):
    calls = []
    check = corpus_files._check_text

    def counting(path, sample, encoding):
        calls.append(len(sample))
        return check(path, sample, encoding)

    monkeypatch.setattr(corpus_files, "_check_text", counting)
    path = write(tmp_path / "big.txt.bz2", "word " * 500_000)  # 2.5 MB of text
    assert len(all_words(path, chunk_size=1 << 14)) == 500_000
    assert calls == [1 << 20]


def test_a_folder_is_not_a_corpus(tmp_path):
    with pytest.raises(QwemError, match="is a folder"):
        open_binary(tmp_path)
    with pytest.raises(QwemError, match="is a folder"):
        all_words(tmp_path)
