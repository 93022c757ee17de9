"""The Makefile's guard: a venv is made only by Python 3.11 or newer, and an older
interpreter is refused in one line before anything is written."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def _stub(tmp_path, version):
    """An 'interpreter' that only reports a version (and fails at anything else)."""
    stub = tmp_path / f"python{version}"
    stub.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python {version}"'
                    '; exit 0; fi\nexit 1\n')
    stub.chmod(0o755)
    return stub


def _make(*args):
    return subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("goal", ["venv", "test", "book"])
def test_python_older_than_3_11_is_refused_in_one_line(tmp_path, goal):
    venv = tmp_path / "venv"
    done = _make(goal, f"PYTHON={_stub(tmp_path, '3.10.12')}", f"VENV={venv}")
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "needs Python 3.11 or newer" in lines[0] and "Python 3.10.12" in lines[0]
    assert "PYTHON=python3.11" in lines[0]               # the fix
    assert not venv.exists()                             # nothing written


def test_python_3_11_or_newer_passes_the_guard(tmp_path):
    assert sys.version_info >= (3, 11)
    done = _make("-n", "venv", f"PYTHON={sys.executable}", f"VENV={tmp_path / 'v'}")
    assert done.returncode == 0, done.stderr
    assert "-m venv" in done.stdout                      # would create it (dry run)
    assert not (tmp_path / "v").exists()


def test_an_existing_venv_is_not_checked_again(tmp_path):
    """The guard looks at the interpreter only when the venv is to be made."""
    venv = tmp_path / "v"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    done = _make("-n", "venv", f"PYTHON={_stub(tmp_path, '3.9.1')}", f"VENV={venv}")
    assert done.returncode == 0, done.stderr
