"""Defects found by adversarial testing, each with the test that found it:

* two processes writing one run folder (an exclusive lock, refused in one line);
* SIGTERM during ``qwem shard`` cleans up as SIGINT does (no hidden partial shards);
* a cache entry whose zip member is flagged encrypted, or compressed by an unknown
  method, is damaged (recomputed), not a traceback;
* a truncated MediaWiki XML dump is refused by ``qwem shard`` (it used to be split,
  exit 0);
* a ``--cluster local:2`` count prints no shutdown traceback (CommClosedError).
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from qwem_lib.cli import main
from qwem_lib.runtime import cache
from qwem_lib.runtime.errors import QwemError
from qwem_lib.runtime.history import (LOCK_FILE, RUN_FILES, check_run_dir,
                                      prepare_run_dir, run_dir_lock)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QWEM_DATA", raising=False)


def one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("qwem: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ----------------------------------------------------------------------------------
# 1. one process at a time writes a run folder
# ----------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys
    from qwem_lib.runtime.history import run_dir_lock
    with run_dir_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()          # until the test closes it (or kills us)
""")


def _hold(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=_env(), text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_in_use_by_another_process_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    holder = _hold(run)
    try:
        assert (run / LOCK_FILE).read_text().strip() == str(holder.pid)
        message = (f"run folder {run} is in use by another qwem process (pid "
                   f"{holder.pid}); wait for it or choose another --out")
        for attempt in (lambda: run_dir_lock(run).__enter__(),
                        lambda: check_run_dir(run, resume=False, overwrite=False),
                        lambda: prepare_run_dir(run, resume=True, overwrite=True)):
            with pytest.raises(QwemError) as err:
                attempt()
            assert str(err.value) == message
        # the command: one line, exit 2, before any work
        corpus = tmp_path / "c.txt"
        corpus.write_text("the cat sat on the mat and the dog sat on the log\n" * 50)
        assert main(["train", "--corpus", str(corpus), "--vocab-size", "8", "--dim",
                     "2", "--full-batch", "--out", str(run), "--quiet"]) == 2
        one_line_error(capsys, "in use by another qwem process", str(holder.pid),
                       "--out")
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()              # a crash: the system lets go of the lock
        holder.wait()
    with run_dir_lock(run):        # free again (the stale lock file is taken over)
        assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert list(run.iterdir()) == []  # the lock file goes with the lock


def test_the_lock_is_reentrant_and_leaves_no_file(tmp_path):
    with run_dir_lock(tmp_path / "a" / "b"):
        pass
    assert not (tmp_path / "a").exists()  # made for the run, left empty: removed
    run = tmp_path / "new" / "run"
    with run_dir_lock(run) as held:
        assert held == run and run.is_dir()
        with run_dir_lock(run):    # the trainer inside the command: fine
            prepare_run_dir(run, resume=False, overwrite=False)
            for name in RUN_FILES:
                (run / name).write_text("x")
        assert (run / LOCK_FILE).exists()
        # the lock file is not a run file: overwrite deletes only the run's files
        prepare_run_dir(run, resume=False, overwrite=True)
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
        (run / "embeddings.txt").write_text("x")
    assert sorted(p.name for p in run.iterdir()) == ["embeddings.txt"]
    with run_dir_lock(run):
        pass
    assert run.is_dir()            # not empty: kept
    empty = tmp_path / "empty"
    empty.mkdir()
    with run_dir_lock(empty):
        pass
    assert empty.is_dir() and not any(empty.iterdir())  # the user's folder: kept
    (tmp_path / "file").write_text("x")
    with pytest.raises(QwemError, match="is a file"):
        with run_dir_lock(tmp_path / "file"):
            pass


# ----------------------------------------------------------------------------------
# 2. SIGTERM during qwem shard
# ----------------------------------------------------------------------------------

def _big_plain_text(path: Path, mb: int) -> None:
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz    ", np.uint8)
    raw = letters[rng.integers(0, len(letters), size=mb << 20)]
    raw[::80] = ord("\n")
    path.write_bytes(raw.tobytes())


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix",
                    reason="POSIX signals")
def test_sigterm_during_shard_leaves_no_partial_files(tmp_path):
    src = tmp_path / "big.txt"
    _big_plain_text(src, 64)
    out = tmp_path / "shards"
    proc = subprocess.Popen([sys.executable, "-m", "qwem_lib", "shard", str(src),
                             "--parts", "4", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list(out.glob(".*.tmp-*")) if out.is_dir() else []
        if any(p.stat().st_size > 0 for p in parts if p.exists()):
            break  # mid-split: partial shards are being written
        time.sleep(0.005)
    assert proc.poll() is None, "the split ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"Traceback" not in err, err
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], left        # no hidden partial shard, no complete-looking one
    assert not out.exists()        # the folder it made is removed too


def test_sigterm_handler_is_restored_after_a_split(tmp_path):
    from qwem_lib.corpus.splitter import split_corpus

    src = tmp_path / "c.txt"
    src.write_text("a b c\n" * 100)
    before = signal.getsignal(signal.SIGTERM)
    split_corpus(src, 2, tmp_path / "s")
    assert signal.getsignal(signal.SIGTERM) is before


# ----------------------------------------------------------------------------------
# 3. cache entries damaged into "encrypted" or an unknown compression method
# ----------------------------------------------------------------------------------

def _patch_zip(path: Path, *, flag: int = 0, method: int | None = None) -> None:
    """Set ``flag`` bits and/or the compression ``method`` of every member, in its
    local header and in the central directory."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8),
                                          (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            flags = struct.unpack_from("<H", data, at + flag_at)[0]
            struct.pack_into("<H", data, at + flag_at, flags | flag)
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [{"flag": 0x1}, {"method": 99}],
                         ids=["encrypted", "method-99"])
def test_cache_entry_with_encrypted_flag_or_unknown_method_is_recomputed(damage):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(5)}

    key, code = {"n": 5}, ("qwem_lib.runtime.cache",)
    assert cache.cached("sweep", key, compute, code=code)[1] is False
    path = cache.entry_path("sweep", key, code=code)
    _patch_zip(path, **damage)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays, hit = cache.cached("sweep", key, compute, code=code)
    assert hit is False and len(calls) == 2
    np.testing.assert_array_equal(arrays["x"], np.arange(5))
    assert any(issubclass(w.category, cache.CacheWarning)
               and "damaged cache entry" in str(w.message) for w in caught)
    assert cache.cached("sweep", key, compute, code=code)[1] is True  # rewritten


def test_checkpoint_and_cache_share_one_damage_tuple():
    from qwem_lib.runtime import _atomic, history

    assert cache._DAMAGE is history._DAMAGE is _atomic.DAMAGE
    assert {NotImplementedError, RuntimeError} <= set(_atomic.DAMAGE)


# ----------------------------------------------------------------------------------
# 4. a truncated MediaWiki XML dump
# ----------------------------------------------------------------------------------

HEADER = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
          'version="0.10">\n  <siteinfo><sitename>Wikipedia</sitename>'
          '<dbname>enwiki</dbname></siteinfo>\n')


def _dump(pages: int) -> str:
    body = "".join(
        f"  <page>\n    <title>Page {i}</title>\n    <ns>0</ns>\n    <id>{i}</id>\n"
        f"    <revision>\n      <text xml:space=\"preserve\">Article {i} is about "
        f"cats and dogs and birds.</text>\n    </revision>\n  </page>\n"
        for i in range(pages))
    return HEADER + body + "</mediawiki>\n"


@pytest.mark.parametrize("cut", ["mid-page", "after-page"])
def test_a_truncated_mediawiki_dump_is_refused(tmp_path, capsys, cut):
    full = _dump(4)
    whole = tmp_path / "whole.xml"
    whole.write_text(full + "\n\n")            # blanks after the end are fine
    assert main(["shard", str(whole), "--parts", "2", "--out",
                 str(tmp_path / "ok"), "--quiet"]) == 0
    capsys.readouterr()
    if cut == "mid-page":
        text = full[:full.index("Article 3") + 12]
    else:
        text = full[:full.rindex("</page>") + len("</page>\n")]
    dump = tmp_path / "dump.xml"
    dump.write_text(text)
    out = tmp_path / "shards"
    assert main(["shard", str(dump), "--parts", "2", "--out", str(out),
                 "--quiet"]) == 2
    one_line_error(capsys, str(dump), "truncated", "</mediawiki>", "download it again")
    assert not out.exists()                    # no shards, no folder


# ----------------------------------------------------------------------------------
# 5. a local cluster's shutdown prints nothing
# ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_local_cluster_count_prints_no_shutdown_traceback(tmp_path):
    pytest.importorskip("distributed")
    root = tmp_path / "corpus"
    root.mkdir()
    rng = np.random.default_rng(0)
    vocab = ["".join(rng.choice(list("abcdefghij"), size=4)) for _ in range(200)]
    for i in range(3):
        lines = (" ".join(rng.choice(vocab, size=40)) for _ in range(100))
        (root / f"p{i}.txt").write_text("\n".join(lines) + "\n")
    blocker = socket.socket()     # the dashboard's usual port taken: no warning
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:
        pass                      # already taken by something else: as good
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "qwem_lib", "embed", "--corpus", str(root),
             "--vocab-size", "30", "--dim", "3", "--out", str(tmp_path / "w.txt"),
             "--quiet", "--no-cache", "--cluster", "local:2"],
            capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    finally:
        blocker.close()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "CommClosedError" not in proc.stderr, proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr
