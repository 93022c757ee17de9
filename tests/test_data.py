"""Tests of qwem_lib.corpus.data: folders, registry, downloads (file:// only), bundled data."""

import bz2
import hashlib
import os
import sys
from pathlib import Path

import pytest

from qwem_lib.corpus import data, iter_words
from qwem_lib.corpus.data import CorpusSpec, download, eval_path, resolve_corpus
from qwem_lib.runtime import cache
from qwem_lib.runtime.errors import QwemError


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Never touch the real cache or data folders."""
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QWEM_DATA", raising=False)


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------
# Folders


def test_data_dirs(monkeypatch, tmp_path):
    assert data.data_dirs() == []
    monkeypatch.setenv("QWEM_DATA", os.pathsep.join([str(tmp_path / "a"), "",
                                                     str(tmp_path / "b")]))
    assert data.data_dirs() == [tmp_path / "a", tmp_path / "b"]


def test_cache_dir(monkeypatch, tmp_path):
    assert not (tmp_path / "cache").exists()  # nothing is created before use
    assert cache.cache_dir() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()
    monkeypatch.delenv("QWEM_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache._default_cache_dir() == tmp_path / "home" / ".cache" / "qwem"
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert cache._default_cache_dir() == Path("/content/qwem_cache")


def test_unwritable_cache_dir(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("QWEM_CACHE", str(blocker / "sub"))
    with pytest.raises(QwemError, match="QWEM_CACHE"):
        cache.cache_dir()


# --------------------------------------------------------------------------------------
# Downloads (file:// URLs; never the network)


def test_download_success(tmp_path):
    raw = b"hello corpus\n" * 1000
    src = tmp_path / "src.bin"
    src.write_bytes(raw)
    dest = tmp_path / "out" / "corpus.bin"
    got = download(src.as_uri(), dest, sha256=sha(raw), size=len(raw), progress=False)
    assert got == dest and dest.read_bytes() == raw
    assert leftovers(dest.parent) == ["corpus.bin"]


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"tampered")
    dest = tmp_path / "out" / "corpus.bin"
    wrong = sha(b"original")
    with pytest.raises(QwemError) as err:
        download(src.as_uri(), dest, sha256=wrong, progress=False)
    message = str(err.value)
    assert src.as_uri() in message and wrong in message and sha(b"tampered") in message
    assert "QWEM_DATA" in message
    assert leftovers(dest.parent) == []  # not even a temporary file
    with pytest.raises(QwemError, match="bytes, expected"):
        download(src.as_uri(), dest, size=3, progress=False)
    assert leftovers(dest.parent) == []


def test_download_unreachable(tmp_path):
    dest = tmp_path / "out" / "x"
    url = "http://127.0.0.1:9/x"
    with pytest.raises(QwemError) as err:
        download(url, dest, progress=False)
    assert url in str(err.value) and str(dest) in str(err.value)
    assert leftovers(dest.parent) == []


# --------------------------------------------------------------------------------------
# Resolving corpora


@pytest.fixture
def tiny_spec(monkeypatch, tmp_path):
    raw = bz2.compress(b"tiny corpus text")
    src = tmp_path / "remote" / "tiny.txt.bz2"
    src.parent.mkdir()
    src.write_bytes(raw)
    spec = CorpusSpec(name="tiny", filename="tiny.txt.bz2", format="plain",
                      normalised=True, url=src.as_uri(), sha256=sha(raw),
                      size=len(raw), description="test", licence="none")
    monkeypatch.setitem(data.CORPORA, "tiny", spec)
    return spec


def test_resolve_downloads_into_cache_then_reuses(tiny_spec, tmp_path):
    with pytest.raises(QwemError, match="download=True"):
        resolve_corpus("tiny", download=False)
    path, spec = resolve_corpus("tiny")
    assert spec is tiny_spec
    assert path == tmp_path / "cache" / "corpora" / "tiny.txt.bz2"
    (tmp_path / "remote" / "tiny.txt.bz2").unlink()  # a second call must not download
    assert resolve_corpus("tiny", download=False)[0] == path


def test_resolve_prefers_qwem_data(tiny_spec, tmp_path, monkeypatch):
    folder = tmp_path / "mydata"
    folder.mkdir()
    (folder / "tiny.txt.bz2").write_bytes((tmp_path / "remote" /
                                           "tiny.txt.bz2").read_bytes())
    monkeypatch.setenv("QWEM_DATA", os.pathsep.join([str(tmp_path / "none"),
                                                     str(folder)]))
    assert resolve_corpus("tiny") == (folder / "tiny.txt.bz2", tiny_spec)
    assert leftovers(tmp_path / "cache" / "corpora") == []


def test_resolve_download_failure_names_url_and_fix(monkeypatch):
    spec = CorpusSpec(name="gone", filename="gone.zip", format="plain",
                      normalised=True, url="http://127.0.0.1:9/gone.zip")
    monkeypatch.setitem(data.CORPORA, "gone", spec)
    with pytest.raises(QwemError) as err:
        resolve_corpus("gone")
    assert spec.url in str(err.value) and "QWEM_DATA" in str(err.value)


def test_resolve_errors(tmp_path, monkeypatch):
    with pytest.raises(QwemError, match="unknown corpus 'nope'.*sample"):
        resolve_corpus("nope")
    with pytest.raises(QwemError, match="does not exist"):
        resolve_corpus(str(tmp_path / "missing.txt"))
    with pytest.raises(QwemError, match="does not exist"):
        resolve_corpus(tmp_path / "missing")
    with pytest.raises(QwemError, match="not a file"):
        resolve_corpus(tmp_path)
    filename = data.CORPORA["enwiki2015"].filename
    with pytest.raises(QwemError, match=f"set QWEM_DATA to the folder holding "
                                        f"{filename}"):
        resolve_corpus("enwiki2015")
    # a wrong-sized file under the registered name is reported, not silently used
    monkeypatch.setenv("QWEM_DATA", str(tmp_path))
    (tmp_path / filename).write_bytes(b"not the corpus")
    with pytest.raises(QwemError, match="truncated"):
        resolve_corpus("enwiki2015")


def test_text8_accepts_the_extracted_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEM_DATA", str(tmp_path))
    (tmp_path / "text8").write_bytes(b" anarchism originated as a term")
    path, spec = resolve_corpus("text8", download=False)
    assert path == tmp_path / "text8" and spec.normalised


@pytest.mark.parametrize("suffix", ["", ".bz2"])
def test_format_inferred_for_paths(tmp_path, suffix):
    texts = {"wikiextractor": b'<doc id="1" url="u" title="T">\nT\nx\n</doc>\n',
             "mediawiki": b'<mediawiki xmlns="http://www.mediawiki.org/xml/'
                          b'export-0.10/">\n</mediawiki>\n',
             "plain": b"just some text"}
    for fmt, raw in texts.items():
        path = tmp_path / f"{fmt}.txt{suffix}"
        path.write_bytes(bz2.compress(raw) if suffix else raw)
        got, spec = resolve_corpus(path)
        assert got == path and spec.format == fmt and not spec.normalised


# --------------------------------------------------------------------------------------
# Bundled files


@pytest.mark.parametrize("name", list(data.EVAL_FILES))
def test_eval_files_exist(name):
    path = eval_path(name)
    assert path.is_file() and path.stat().st_size > 1000


def test_eval_path_unknown_name():
    with pytest.raises(QwemError, match="questions-words"):
        eval_path("simlex")


def test_bundled_sample():
    path, spec = resolve_corpus("sample", download=False)
    assert spec.normalised and spec.format == "plain"
    assert path.stat().st_size == spec.size < 6_000_000
    assert data.sha256_file(path) == spec.sha256
    words = [w for batch in iter_words(path, scheme="none") for w in batch]
    assert len(words) == 2_000_000
    assert words[:5] == [b"anarchism", b"is", b"a", b"political", b"philosophy"]


def test_first_available_skips_missing_corpora(tmp_path):
    seen = []
    missing = str(tmp_path / "nope.txt")
    got = data.first_available([(missing, "text8"), ("sample", "auto")],
                               echo=seen.append)
    assert got == ("sample", "auto")
    assert len(seen) == 1 and "nope.txt" in seen[0]
    with pytest.raises(QwemError, match="could be found"):
        data.first_available([(missing, "auto")], echo=None)
