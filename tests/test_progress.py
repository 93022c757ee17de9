"""qwem_lib.runtime.progress: bars only on a terminal, never in logs, pipes or notebooks."""

import io
import sys

import pytest

from qwem_lib.runtime import progress


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty,asked,env,drawn", [
    (True, True, None, True), (False, True, None, False), (True, False, None, False),
    (False, True, "1", True), (True, True, "0", False), (False, False, "1", False)])
def test_bars_only_where_someone_watches(monkeypatch, tty, asked, env, drawn):
    err = Stream(tty)
    monkeypatch.setattr(sys, "stderr", err)
    if env is None:
        monkeypatch.delenv("QWEM_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("QWEM_PROGRESS", env)
    assert progress.shown(asked) is drawn
    bar = progress.bar(asked, total=10, desc="work")
    bar.update(10)
    bar.close()
    progress.note("a note", asked)
    assert ("work" in err.getvalue()) is drawn
    assert ("a note" in err.getvalue()) is drawn
    assert ("\r" in err.getvalue()) is drawn


def test_no_tqdm_auto_in_the_library():
    """tqdm.auto warns (TqdmExperimentalWarning, IProgress) inside notebooks."""
    from pathlib import Path

    root = Path(progress.__file__).parent
    users = [p.name for p in root.glob("*.py") if "tqdm.auto" in p.read_text()
             and p.name != "progress.py"]
    assert not users, users


def test_eigensolver_bar_never_moves_back(monkeypatch, capsys):
    """Two passes (float32, then float64) share one bar that only moves forward."""
    import re

    import torch

    from qwem_lib.spectral import top_eigh

    monkeypatch.setenv("QWEM_PROGRESS", "1")
    g = torch.Generator().manual_seed(0)
    V, k = 1500, 40
    Q, _ = torch.linalg.qr(torch.randn(V, V, generator=g, dtype=torch.float64))
    lam = torch.cat([torch.linspace(60, 20, k), torch.linspace(19, -5, V - k)]).double()
    M = (Q * lam) @ Q.T
    res = top_eigh(M, k, work_dtype=torch.float32, progress=True, n_blocks=2)
    torch.testing.assert_close(res.eigvals, lam[:k], rtol=1e-7, atol=0)
    err = capsys.readouterr().err
    counts = [int(m) for m in re.findall(r"\| *(\d+)/40 ", err)]
    assert counts and counts[-1] == k
    assert counts == sorted(counts), counts
    assert "refining in float64" in err
