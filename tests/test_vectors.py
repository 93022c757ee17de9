"""Tests for qwem_lib.vectors: the word2vec text format."""

import numpy as np
import pytest
import torch

from qwem_lib.errors import QwemError
from qwem_lib.vectors import load_word2vec, save_word2vec


def _matrix(V=50, D=7, seed=0):
    """Rows at very different scales (down to 1e-13), a zero, signs mixed."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((V, D)) * 10.0 ** rng.uniform(-13, 3, size=(V, 1))
    W[0, 0] = 0.0
    W[1, :3] = [9.9999999999, -0.99999999996, 1e-5]
    return W


def test_round_trip_float64(tmp_path):
    W = _matrix()
    words = [f"w{i}" for i in range(len(W))]
    words[2], words[3] = "naïve", "東京"
    path = save_word2vec(tmp_path / "v.txt", words, W)
    got_words, got = load_word2vec(path)
    assert got_words == words
    assert got.dtype == np.float64 and got.shape == W.shape
    nz = W != 0
    assert np.all(got[~nz] == 0)
    assert np.max(np.abs(got[nz] / W[nz] - 1)) < 1e-8
    for axis in (0, 1):
        rel = (got**2).sum(axis) / (W**2).sum(axis) - 1
        assert np.max(np.abs(rel)) < 1e-7


def test_round_trip_torch_float32_is_exact(tmp_path):
    W = torch.from_numpy(_matrix(seed=1)).float()
    words = [f"w{i}" for i in range(W.shape[0])]
    save_word2vec(tmp_path / "v.txt", words, W)
    _, got = load_word2vec(tmp_path / "v.txt")
    assert np.array_equal(got.astype(np.float32), W.numpy())


def test_extreme_exponents(tmp_path):
    W = np.array([[1e-200, -2.5e150, 3.3e-5], [1.0, -1.0, 0.0],
                  [5e-324, -2.2250738585072014e-308, 1.7976931348623157e308],
                  [9.9999999999e99, 1e-100, 9.9999999999e-100]])
    save_word2vec(tmp_path / "v.txt", list("abcd"), W)
    _, got = load_word2vec(tmp_path / "v.txt")
    np.testing.assert_allclose(got, W, rtol=5e-9, atol=0)  # 9 significant digits


def test_exact_format(tmp_path):
    W = _matrix(V=5, D=3)
    words = ["the", "of", "and", "in", "a"]
    save_word2vec(tmp_path / "v.txt", words, W)
    raw = (tmp_path / "v.txt").read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw and b"\x00" not in raw
    lines = raw.decode("utf-8").split("\n")[:-1]
    assert lines[0] == "5 3"
    assert len(lines) == 1 + 5
    for word, row, line in zip(words, W, lines[1:]):
        parts = line.split(" ")  # how gensim splits: single spaces, no trailing one
        assert len(parts) == 1 + 3
        assert parts[0] == word
        assert np.allclose([float(p) for p in parts[1:]], row, rtol=1e-8, atol=0)
    # 9 significant digits in scientific notation
    assert lines[2].split(" ")[1] == "1.00000000e+01"
    assert lines[2].split(" ")[2] == "-1.00000000e+00"


def test_save_validation(tmp_path):
    W = np.ones((2, 3))
    dest = tmp_path / "v.txt"
    bad = [
        (["a"], W),  # length mismatch
        (["a", "b c"], W),  # whitespace in a word
        (["a", "b\tc"], W),
        (["a", ""], W),  # empty word
        (["a", "b"], np.array([[1.0, np.nan, 0], [0, 0, 0]])),
        (["a", "b"], np.array([[1.0, np.inf, 0], [0, 0, 0]])),
        (["a", "b"], np.ones(2)),  # not 2-D
    ]
    for words, M in bad:
        with pytest.raises(QwemError):
            save_word2vec(dest, words, M)
        assert not dest.exists()
    assert not list(tmp_path.iterdir())  # no temporary files left behind


def test_load_accepts_c_tool_style(tmp_path):
    # the original C tool writes a trailing space; tabs are tolerated too
    p = tmp_path / "c.txt"
    p.write_text("2 3\nx 1 2 3 \ny\t4 5e-1 -6\n")
    words, W = load_word2vec(p)
    assert words == ["x", "y"]
    assert np.array_equal(W, [[1, 2, 3], [4, 0.5, -6]])


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("hello world\nx 1 2\n", "line 1"),
        ("2\nx 1 2\n", "line 1"),
        ("2 2\nx 1 2\ny 1\n", "line 3 has 2 fields"),
        ("2 2\nx 1 2\ny 1 2 3\n", "line 3 has 4 fields"),
        ("2 2\nx 1 2\ny 1 z\n", "line 3 has a non-numeric value 'z'"),
        ("3 2\nx 1 2\ny 1 2\n", "header says 3"),
        ("1 2\nx 1 2\ny 1 2\n", "header says 1"),
    ],
)
def test_load_errors(tmp_path, content, match):
    p = tmp_path / "bad.txt"
    p.write_text(content)
    with pytest.raises(QwemError, match=match) as info:
        load_word2vec(p)
    assert "bad.txt" in str(info.value)


def test_load_missing_and_binary(tmp_path):
    with pytest.raises(QwemError, match="does not exist"):
        load_word2vec(tmp_path / "nope.txt")
    p = tmp_path / "bin.bin"
    p.write_bytes(b"2 2\nx \xff\xfe\x00\x01\n")
    with pytest.raises(QwemError, match="binary"):
        load_word2vec(p)
