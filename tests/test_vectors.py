"""Tests for qwem_lib.vectors: the word2vec text format."""

import numpy as np
import pytest
import torch

from qwem_lib.runtime.errors import QwemError
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


def test_load_accepts_a_utf8_bom_and_str_or_path(tmp_path):
    W = _matrix(V=4, D=3)
    words = ["naïve", "b", "c", "d"]
    plain = save_word2vec(tmp_path / "v.txt", words, W)
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    for p in (bom, str(bom), plain, str(plain)):
        got_words, got = load_word2vec(p)
        assert got_words == words  # the mark is not part of the header or a word
        assert np.array_equal(got, load_word2vec(plain)[1])
    # a mark alone is an empty file
    (tmp_path / "only.txt").write_bytes(b"\xef\xbb\xbf\n")
    with pytest.raises(QwemError, match="only.txt is empty"):
        load_word2vec(tmp_path / "only.txt")


@pytest.mark.parametrize("token", ["nan", "NaN", "-nan", "inf", "-Infinity", "1e400"])
def test_load_refuses_non_finite_values_naming_the_line(tmp_path, token):
    p = tmp_path / "diverged.txt"
    p.write_text(f"3 2\nx 1 2\ny 3 4\nz 5 {token}\n")
    with pytest.raises(QwemError) as info:
        load_word2vec(str(p))
    msg = str(info.value)
    assert "\n" not in msg
    assert f"diverged.txt line 4 ('z') has a non-finite value {token!r}" in msg


def test_eval_command_exits_2_on_a_nan_file(tmp_path, capsys):
    from qwem_lib import cli

    p = tmp_path / "nan.txt"
    p.write_text("2 2\nking 1 nan\nqueen 1 2\n")
    assert cli.main(["eval", str(p), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qwem: error: load_word2vec: ") and err.count("\n") == 1
    assert "nan.txt line 2 ('king') has a non-finite value 'nan'" in err


@pytest.mark.parametrize(
    "content, match",
    [
        ("2 3 4\nx 1 2\ny 1 2\n", "line 1 should be the header"),
        ("-1 2\n", "line 1 should be the header"),
        ("2.0 2\nx 1 2\ny 1 2\n", "line 1 should be the header"),
        ("2 0\nx\ny 1 2\n", "line 3 has 3 fields, expected 1"),
        ("2 2\nx 1 2\ny 1_0 2\n", "line 3 has a non-numeric value '1_0'"),
        ("2 2\nx 0x1 2\ny 1 2\n", "line 2 has a non-numeric value '0x1'"),
        ("2 2\nx 1 2\ny 1,5 2\n", "line 3 has a non-numeric value '1,5'"),
    ],
)
def test_load_malformed_rows_and_headers(tmp_path, content, match):
    p = tmp_path / "bad.txt"
    p.write_text(content)
    with pytest.raises(QwemError, match=match) as info:
        load_word2vec(p)
    assert "bad.txt" in str(info.value) and "\n" not in str(info.value)


def test_load_zero_dimensions(tmp_path):
    p = tmp_path / "d0.txt"
    p.write_text("2 0\nx\ny \n")
    words, W = load_word2vec(p)
    assert words == ["x", "y"] and W.shape == (2, 0)


def test_load_refuses_a_folder_and_utf16(tmp_path):
    with pytest.raises(QwemError, match="is a folder"):
        load_word2vec(tmp_path)
    p = tmp_path / "wide.txt"
    p.write_bytes(b"\xff\xfe" + "1 2\nx 1 2\n".encode("utf-16-le"))
    with pytest.raises(QwemError, match="UTF-16LE.*iconv -f UTF-16LE -t UTF-8"):
        load_word2vec(p)


def test_save_refuses_non_finite_and_writes_nothing(tmp_path):
    dest = tmp_path / "v.txt"
    dest.write_text("old contents\n")
    W = torch.ones(3, 4)
    W[2, 1] = float("nan")
    with pytest.raises(QwemError, match=r"row 2 \('c'\), column 1") as info:
        save_word2vec(dest, ["a", "b", "c"], W)
    assert "\n" not in str(info.value)
    assert dest.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.txt"]
    with pytest.raises(QwemError, match="non-finite"):
        save_word2vec(str(dest), ["a"], np.array([[-np.inf, 0.0]]))
    assert dest.read_text() == "old contents\n"


# ------------------------------------------------------------------ other formats


def _kv_pair(V=40, D=6, seed=3):
    """Words and float32-exact vectors (binary files hold float32)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((V, D)).astype(np.float32).astype(np.float64)
    words = [f"w{i}" for i in range(V)]
    words[1], words[2] = "naïve", "東京"
    return words, W


def _compress(path, kind):
    import bz2
    import gzip
    import lzma

    data = path.read_bytes()
    out = path.with_name(path.name + {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz"}[kind])
    out.write_bytes({"gzip": gzip.compress, "bz2": bz2.compress,
                     "xz": lzma.compress}[kind](data))
    return out


def test_gensim_binary_text_and_glove_files_read_the_same(tmp_path):
    from qwem_lib.vectors import from_keyedvectors, to_keyedvectors

    words, W = _kv_pair()
    kv = to_keyedvectors(words, W)
    kv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    kv.save_word2vec_format(str(tmp_path / "v.txt"), binary=False)
    kv.save_word2vec_format(str(tmp_path / "v.glove"), binary=False,
                            write_header=False)
    kv.save_word2vec_format(str(tmp_path / "gensim.txt.gz"), binary=False)
    files = [tmp_path / n for n in ("v.bin", "v.txt", "v.glove", "gensim.txt.gz")]
    files += [_compress(tmp_path / "v.bin", k) for k in ("gzip", "bz2", "xz")]
    files += [_compress(tmp_path / "v.glove", "gzip")]
    for f in files:
        got_words, got = load_word2vec(f)
        assert got_words == words, f
        # binary holds the float32 values; gensim's text their shortest repr
        assert np.array_equal(got.astype(np.float32), W.astype(np.float32)), f
        if "bin" in f.name:
            assert np.array_equal(got, W), f
    # the name does not matter: a gzip file called .txt, a binary file called .txt
    (tmp_path / "looks.txt").write_bytes((tmp_path / "v.bin.gz").read_bytes())
    assert np.array_equal(load_word2vec(tmp_path / "looks.txt")[1], W)
    assert from_keyedvectors(kv)[0] == words
    assert np.array_equal(from_keyedvectors(kv)[1], W)


def test_binary_as_the_c_tool_writes_it_with_newlines(tmp_path):
    words, W = _kv_pair(V=5, D=3)
    W[0, 0] = np.frombuffer(b"\n\x00\x80\x3f", "<f4")[0]   # a vector starting with \n
    W = W.astype(np.float32).astype(np.float64)
    body = b"".join(w.encode() + b" " + W[i].astype("<f4").tobytes() + b"\n"
                    for i, w in enumerate(words))
    p = tmp_path / "c.bin"
    p.write_bytes(b"5 3\n" + body)
    got_words, got = load_word2vec(p)
    assert got_words == words and np.array_equal(got, W)
    for fmt in ("binary", "auto"):
        assert np.array_equal(load_word2vec(p, format=fmt)[1], W)
    # binary read as text: a clear error naming the format option
    with pytest.raises(QwemError, match="not UTF-8|line 2"):
        load_word2vec(p, format="text")


def test_binary_truncated_or_with_garbage(tmp_path):
    words, W = _kv_pair(V=4, D=3)
    body = b"".join(w.encode() + b" " + W[i].astype("<f4").tobytes()
                    for i, w in enumerate(words))
    p = tmp_path / "t.bin"
    for n_cut in (1, 7, 20):
        p.write_bytes(b"4 3\n" + body[:-n_cut])
        with pytest.raises(QwemError, match=r"t.bin \(word2vec binary\)") as info:
            load_word2vec(p)
        assert "\n" not in str(info.value)
    p.write_bytes(b"3 3\n" + body)
    with pytest.raises(QwemError, match="bytes after the 3 words"):
        load_word2vec(p)
    # a header announcing far more than the file holds: refused before allocating
    import tracemalloc

    for header in (b"1000000000 3\n", b"4 100000000\n", b"1000000 1000000\n"):
        p.write_bytes(header + body)
        tracemalloc.start()
        with pytest.raises(QwemError, match="announces .* but holds"):
            load_word2vec(p, "binary")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 10_000_000, peak
    nan = W.copy()
    nan[2, 1] = np.nan
    p.write_bytes(b"4 3\n" + b"".join(w.encode() + b" " + nan[i].astype("<f4").tobytes()
                                      for i, w in enumerate(words)))
    with pytest.raises(QwemError, match="word 3 .* non-finite"):
        load_word2vec(p)


def test_glove_words_with_spaces_and_forced_formats(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("the 0.5 -1\n. . . 1e-3 2\nof 3 4\n")
    words, W = load_word2vec(p)
    assert words == ["the", ". . .", "of"]
    assert np.array_equal(W, [[0.5, -1], [1e-3, 2], [3, 4]])
    # a GloVe file whose first word is a number is read when forced
    q = tmp_path / "n.txt"
    q.write_text("1990 0.5 1\nthe 2 3\n")
    with pytest.raises(QwemError, match="line 1 should be the header.*glove"):
        load_word2vec(q)
    assert load_word2vec(q, format="glove")[0] == ["1990", "the"]
    with pytest.raises(QwemError, match="line 2 has 2 fields, expected 3"):
        (tmp_path / "bad.txt").write_text("the 1 2\nof 3\n")
        load_word2vec(tmp_path / "bad.txt")
    with pytest.raises(QwemError, match="unknown format 'word2vec'"):
        load_word2vec(p, format="word2vec")


def test_corrupt_compressed_file(tmp_path):
    words, W = _kv_pair(V=30)
    gz = _compress(save_word2vec(tmp_path / "v.txt", words, W), "gzip")
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    with pytest.raises(QwemError, match="gzip-compressed but cannot be decompressed"):
        load_word2vec(gz)


def test_to_keyedvectors_matches_our_vectors(tmp_path):
    from qwem_lib.vectors import to_keyedvectors

    words, W = _kv_pair()
    kv = to_keyedvectors(words, torch.from_numpy(W))
    assert kv.index_to_key == words
    assert np.array_equal(kv["東京"], W[2].astype(np.float32))
    with pytest.raises(QwemError, match="appears twice"):
        to_keyedvectors(["a", "b", "a"], np.zeros((3, 2)))
    with pytest.raises(QwemError, match="2 words but W has 3 rows"):
        to_keyedvectors(["a", "b"], np.zeros((3, 2)))


def test_words_with_unicode_spaces_round_trip_and_bad_ones_are_refused(tmp_path):
    """A word may hold any character but ASCII whitespace and NUL (U+00A0, U+2028
    too: gensim and word2vec.c read them back); a lone surrogate (a stray byte kept
    by --scheme none) is refused in one line, before anything is written."""
    from qwem_lib.vectors import check_words

    words = ["nbsp\u00a0word", "line\u2028sep", "tab\u0085nel", "\u00a0edge\u00a0"]
    W = np.arange(8, dtype=np.float64).reshape(4, 2)
    for binary in (False, True):
        p = tmp_path / f"u{binary}.txt"
        save_word2vec(p, words, W) if not binary else None
        if binary:
            body = b"".join(w.encode() + b" " + W[i].astype("<f4").tobytes()
                            for i, w in enumerate(words))
            p.write_bytes(b"4 2\n" + body)
        got, W2 = load_word2vec(p, "binary" if binary else "auto")
        assert got == words and np.allclose(W2, W)
    for bad, match in (("a b", "ASCII whitespace"), ("", "empty"),
                       ("x\tz", "ASCII whitespace"), ("nul\x00", "NUL"),
                       ("stray\udcff", "not UTF-8")):
        with pytest.raises(QwemError, match=match):
            check_words(["ok", bad])
        with pytest.raises(QwemError, match=match):
            save_word2vec(tmp_path / "bad.txt", ["ok", bad], W[:2])
        assert not (tmp_path / "bad.txt").exists()


def test_a_word_twice_is_refused_when_read_and_when_written(tmp_path):
    W = np.arange(6, dtype=np.float64).reshape(3, 2)
    with pytest.raises(QwemError, match="'b' appears twice"):
        save_word2vec(tmp_path / "d.txt", ["a", "b", "b"], W)
    assert not (tmp_path / "d.txt").exists()
    p = tmp_path / "dup.txt"
    p.write_text("3 2\na 0 1\nb 2 3\na 4 5\n")
    with pytest.raises(QwemError, match="'a' twice .*line 2 and line 4"):
        load_word2vec(p)
    body = b"".join(w + b" " + W[i].astype("<f4").tobytes()
                    for i, w in enumerate([b"x", b"y", b"x"]))
    (tmp_path / "dup.bin").write_bytes(b"3 2\n" + body)
    with pytest.raises(QwemError, match="'x' twice .*word 1 and word 3"):
        load_word2vec(tmp_path / "dup.bin")
