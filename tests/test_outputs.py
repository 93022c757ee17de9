"""qwem_lib.runtime._atomic: outputs never partial, never replacing an input or a special file,
with the modes the umask gives."""

import json
import os
import stat
import threading

import pytest

from qwem_lib.runtime._atomic import (atomic_path, check_outputs, strict_json,
                                      write_json, write_text)
from qwem_lib.runtime.errors import QwemError


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_mode_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new.txt") == 0o666 & ~umask


def test_existing_file_keeps_its_mode_and_is_overwritten(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]   # no temp left


def test_file_then_folder_synced_before_and_after_the_rename(tmp_path, monkeypatch):
    """fsync of the finished temporary file before it is renamed (its bytes on disk
    first) and of the folder after (the rename itself); nothing synced on failure."""
    import qwem_lib.runtime._atomic as atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(b)))
        real_replace(a, b)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    out = tmp_path / "out.txt"
    write_text(out, "done")
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert ".part" in events[0][1] and events[1][1] == str(out)
    assert events[2][1] == str(tmp_path)                   # the folder
    events.clear()
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert events == []


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_symlink_is_followed_not_replaced(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_device_file_is_written_into_not_replaced():
    write_text(os.devnull, "to nowhere")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    write_text(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_folder_refused(tmp_path):
    with pytest.raises(QwemError, match="is a folder"):
        write_text(tmp_path, "x")


@pytest.mark.parametrize("spelling", ["same", "dot", "relative", "symlink", "hardlink"])
def test_output_equal_to_an_input_is_refused(tmp_path, monkeypatch, spelling):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the corpus")
    monkeypatch.chdir(tmp_path)
    out = {"same": corpus, "dot": "./c.txt", "relative": "sub/../c.txt",
           "symlink": tmp_path / "link.txt", "hardlink": tmp_path / "hard.txt"}
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.txt").symlink_to(corpus)
    os.link(corpus, tmp_path / "hard.txt")
    with pytest.raises(QwemError, match="is the input --corpus"):
        check_outputs([("--out", out[spelling])], [("--corpus", str(corpus))])
    assert corpus.read_text() == "the corpus"


def test_two_outputs_naming_one_file_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(QwemError, match="--out and --timings name the same file"):
        check_outputs([("--out", "e.txt"), ("--timings", "./e.txt")])
    check_outputs([("--out", "e.txt"), ("--timings", "t.json"), ("--x", None)])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_location_refused_up_front(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(QwemError, match="read-only"):
            check_outputs([("--out", ro / "sub" / "e.txt")])
    finally:
        ro.chmod(0o700)


def test_output_under_a_file_refused_up_front(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(QwemError, match="is not a folder"):
        check_outputs([("--out", tmp_path / "f" / "e.txt")])
    with pytest.raises(QwemError, match="is a folder"):
        check_outputs([("--out", tmp_path)])


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    import errno

    with pytest.raises(QwemError, match="No space left"):
        with atomic_path(tmp_path / "e.txt") as tmp:
            tmp.write_text("part")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_strict_json_has_no_nan_or_infinity(tmp_path):
    import numpy as np

    obj = {"a": float("nan"), "b": [float("inf"), 1.5, np.float32(2.0)],
           "c": np.int64(3), "d": np.array([1.0, np.nan])}
    text = strict_json(obj)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.5, 2.0], "c": 3,
                                "d": [1.0, None]}
    write_json(tmp_path / "r.json", obj)
    json.loads((tmp_path / "r.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"non-strict token {c}"))


def test_dev_stdout_into_a_pipe_is_written_into():
    """/dev/stdout links to a pipe that has no path: it is opened, not replaced."""
    import subprocess
    import sys

    code = ("from qwem_lib.runtime._atomic import check_outputs, write_text\n"
            "check_outputs([('--out', '/dev/stdout')])\n"
            "write_text('/dev/stdout', 'through stdout')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "through stdout"
