"""qwem_lib.runtime.cache: entries keyed by content, settings and code; damage recomputed."""

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from qwem_lib.runtime import cache
from qwem_lib.runtime.errors import QwemError

pytestmark = pytest.mark.usefixtures("isolated_cache")

CODE = ("qwem_lib.runtime.cache",)


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(value), "label": np.array("hello")}
    return compute, calls


def test_hit_after_miss_and_refresh_and_off():
    compute, calls = counting(4)
    a, hit = cache.cached("demo", {"n": 4}, compute, code=CODE)
    assert not hit and len(calls) == 1
    b, hit = cache.cached("demo", {"n": 4}, compute, code=CODE)
    assert hit and len(calls) == 1
    np.testing.assert_array_equal(a["x"], b["x"])
    assert str(b["label"]) == "hello" and "__key__" not in b
    _, hit = cache.cached("demo", {"n": 4}, compute, code=CODE, cache="refresh")
    assert not hit and len(calls) == 2
    _, hit = cache.cached("demo", {"n": 4}, compute, code=CODE, cache=False)
    assert not hit and len(calls) == 3
    with pytest.raises(QwemError, match="cache must be"):
        cache.cached("demo", {"n": 4}, compute, code=CODE, cache="yes")


def test_every_part_of_the_key_matters():
    compute, calls = counting(2)
    cache.cached("demo", {"n": 2, "s": "a"}, compute, code=CODE)
    for kind, key, code in (("demo", {"n": 2, "s": "b"}, CODE),
                            ("demo", {"n": 3, "s": "a"}, CODE),
                            ("other", {"n": 2, "s": "a"}, CODE),
                            ("demo", {"n": 2, "s": "a"}, ("qwem_lib.runtime.errors",))):
        _, hit = cache.cached(kind, key, compute, code=code)
        assert not hit, (kind, key, code)
    # numpy scalars and paths in keys mean the same as Python's
    _, hit = cache.cached("demo", {"n": np.int64(2), "s": "a"}, compute, code=CODE)
    assert hit


def test_code_fingerprint_follows_imports(tmp_path, monkeypatch):
    """The fingerprint covers the module and what it imports, transitively, and
    changes with any of their sources."""
    from qwem_lib import pipeline
    assert cache._imports("qwem_lib.pipeline", open(pipeline.__file__).read()) >= {
        "qwem_lib.corpus.cooccurrence", "qwem_lib.targets", "qwem_lib.spectral"}
    base = cache.code_fingerprint("qwem_lib.pipeline")
    assert base != cache.code_fingerprint("qwem_lib.runtime.errors")
    # a copy of the package with one imported module edited gives another value
    pkg = tmp_path / "qwem_lib"
    shutil.copytree(Path(cache.__file__).parents[1], pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "data_files"))
    real = cache._module_file

    def in_copy(name):
        path = real(name)
        return None if path is None else pkg / path.relative_to(real("qwem_lib").parent)
    monkeypatch.setattr(cache, "_module_file", in_copy)
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint("qwem_lib.pipeline") == base
    target = pkg / "targets.py"
    target.write_text(target.read_text() + "\n# an edit\n")
    cache.code_fingerprint.cache_clear()
    edited = cache.code_fingerprint("qwem_lib.pipeline")
    assert edited != base
    # a module two packages away, reached by relative imports (pipeline ->
    # targets -> .kernels._sparse, runtime.cache -> ._atomic), counts too
    kernel = pkg / "kernels" / "_sparse.py"
    kernel.write_text(kernel.read_text() + "\n# an edit\n")
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint("qwem_lib.pipeline") not in (base, edited)
    assert cache.code_fingerprint("qwem_lib.runtime.errors") == \
        cache.code_fingerprint("qwem_lib.runtime.errors")
    cache.code_fingerprint.cache_clear()


def test_file_identity_is_the_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one two three")
    b.write_text("one two three")
    assert cache.file_identity(a) == cache.file_identity(b)
    st = os.stat(a)
    a.write_text("one two thrее")                  # same size, same mtime
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.file_identity(a) != cache.file_identity(b)
    with pytest.raises(QwemError, match="cannot read"):
        cache.file_identity(tmp_path / "missing.txt")


def test_the_same_bytes_read_two_ways_are_two_corpora(tmp_path):
    """A gzip file's bytes named s.txt.gz are a text; named s.txt they are other
    (binary) text: the token cache must not serve one for the other."""
    import gzip

    from qwem_lib.corpus import load_tokens

    words = " ".join(f"w{i % 7} x{i % 3}" for i in range(3000)) + "\n"
    raw = gzip.compress(words.replace("0", "a").encode(), mtime=0)
    (tmp_path / "s.txt.gz").write_bytes(raw)
    (tmp_path / "s.txt").write_bytes(raw)
    a, b = cache.file_identity(tmp_path / "s.txt.gz"), cache.file_identity(
        tmp_path / "s.txt")
    assert a["sha256"] == b["sha256"] and a != b
    assert (a["read_as"], b["read_as"]) == ("gzip", "plain")
    gz = load_tokens(str(tmp_path / "s.txt.gz"), 3, scheme="paper", progress=False)
    assert gz.n_tokens == 6000
    # read as it is named (binary, not text), not served the .gz's cached tokens
    with pytest.raises(QwemError, match="not UTF-8 text"):
        load_tokens(str(tmp_path / "s.txt"), 3, scheme="paper", progress=False)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_entry_is_reported_and_recomputed(damage):
    compute, calls = counting(1000)
    cache.cached("demo", {"n": 1}, compute, code=CODE)
    path = cache.entry_path("demo", {"n": 1}, code=CODE)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        i = data.index(b"x.npy") + 200      # inside the array's bytes
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"not a cache entry at all")
    with pytest.warns(cache.CacheWarning, match="damaged cache entry"):
        arrays, hit = cache.cached("demo", {"n": 1}, compute, code=CODE)
    assert not hit and len(calls) == 2
    np.testing.assert_array_equal(arrays["x"], np.arange(1000))
    _, hit = cache.cached("demo", {"n": 1}, compute, code=CODE)  # rewritten
    assert hit


def test_entry_under_another_key_is_not_returned():
    compute, _ = counting(3)
    cache.cached("demo", {"n": 3}, compute, code=CODE)
    other = cache.entry_path("demo", {"n": 4}, code=CODE)
    other.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(cache.entry_path("demo", {"n": 3}, code=CODE), other)
    with pytest.warns(cache.CacheWarning, match="another key"):
        assert cache.load("demo", {"n": 4}, code=CODE) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_warns_and_returns_the_result(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setenv("QWEM_CACHE", str(ro))
    ro.chmod(0o500)
    try:
        compute, calls = counting(2)
        with pytest.warns(cache.CacheWarning, match="cannot write to the cache"):
            arrays, hit = cache.cached("demo", {"n": 2}, compute, code=CODE)
        assert not hit and list(arrays["x"]) == [0, 1]
    finally:
        ro.chmod(0o700)


def test_unwritable_cache_warns_and_returns_the_result(tmp_path, monkeypatch):
    """A cache folder that cannot be made (a file is in the way) loses the cache,
    not the result; works as root too."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("QWEM_CACHE", str(blocker / "cache"))
    cache._unwritable.clear()
    compute, calls = counting(2)
    with pytest.warns(cache.CacheWarning, match="cannot write to the cache"):
        arrays, hit = cache.cached("demo", {"n": 2}, compute, code=CODE)
    assert not hit and list(arrays["x"]) == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # reported once, not at every call
        cache.cached("demo", {"n": 2}, compute, code=CODE)
    assert len(calls) == 2


def test_full_disk_warns_and_returns_the_result(monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "savez", full)
    cache._unwritable.clear()
    compute, _ = counting(2)
    with pytest.warns(cache.CacheWarning, match="No space left"):
        arrays, hit = cache.cached("demo", {"n": 2}, compute, code=CODE)
    assert not hit and list(arrays["x"]) == [0, 1]
    assert not list(cache.entry_path("demo", {"n": 2}, code=CODE).parent.glob("*"))


def test_a_bug_while_writing_is_not_hidden(monkeypatch):
    def bug(*args, **kwargs):
        raise TypeError("a bug")
    monkeypatch.setattr(np, "savez", bug)
    compute, _ = counting(2)
    with pytest.raises(TypeError, match="a bug"):
        cache.cached("demo", {"n": 2}, compute, code=CODE)


def test_function_fingerprint_follows_the_functions_it_calls():
    ns = {}
    src = """
def helper(x):
    return x + 1

def compute():
    return {"x": helper(1)}
"""
    exec(compile(src, "<chapter>", "exec"), ns)
    ns["compute"].__module__ = ns["helper"].__module__ = "chapter"
    ns["__name__"] = "chapter"
    base = cache.function_fingerprint(ns["compute"])
    assert cache.function_fingerprint(ns["compute"]) == base
    ns2 = {}
    exec(compile(src.replace("x + 1", "x + 2"), "<chapter>", "exec"), ns2)
    for f in ("compute", "helper"):
        ns2[f].__module__ = "chapter"
    assert cache.function_fingerprint(ns2["compute"]) != base   # the callee changed
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(2)}
    cache.cached("demo", {"n": 1}, compute, code=("qwem_lib.runtime.errors", compute))
    _, hit = cache.cached("demo", {"n": 1}, compute, code=("qwem_lib.runtime.errors", compute))
    assert hit
    _, hit = cache.cached("demo", {"n": 1}, ns["compute"],
                          code=("qwem_lib.runtime.errors", ns["compute"]))
    assert not hit
