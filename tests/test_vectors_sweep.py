"""Adversarial sweep: GloVe reading of word2vec text and ragged GloVe rows, words
holding Unicode whitespace, and torch's thread count during training."""

import numpy as np
import pytest
import torch

from qwem_lib import train as train_mod
from qwem_lib.cli import main
from qwem_lib.kernels.threads import SMALL_WORK, torch_threads, torch_threads_for
from qwem_lib.runtime.errors import QwemError
from qwem_lib.train import TrainConfig, train
from qwem_lib.vectors import check_words, load_word2vec, save_word2vec

# ----------------------------------------------------------------------------------
# 1. --format glove on word2vec text; GloVe rows of different lengths
# ----------------------------------------------------------------------------------

def _w2v_text(tmp_path, V=300, d=50):
    W = np.random.default_rng(0).normal(size=(V, d))
    return save_word2vec(tmp_path / "v.txt", [f"w{i}" for i in range(V)], W)


def test_glove_forced_on_word2vec_text_is_refused(tmp_path):
    p = _w2v_text(tmp_path)
    with pytest.raises(QwemError, match="looks like word2vec text") as err:
        load_word2vec(p, format="glove")
    assert "\n" not in str(err.value) and "--format text" in str(err.value)
    # the same file is read as word2vec text
    words, W = load_word2vec(p)
    assert len(words) == 300 and W.shape == (300, 50)
    # a one-dimensional word2vec file too (its header "V 1" is not a GloVe row)
    q = tmp_path / "d1.txt"
    q.write_text("2 1\na 0.5\nb 1.5\n")
    with pytest.raises(QwemError, match="looks like word2vec text"):
        load_word2vec(q, format="glove")


def test_cli_glove_forced_on_word2vec_text_is_one_line(tmp_path, capsys):
    p = _w2v_text(tmp_path, V=40, d=8)
    assert main(["eval", str(p), "--format", "glove"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qwem: error: ") and err.count("\n") == 1, err
    assert "looks like word2vec text" in err and "Traceback" not in err


@pytest.mark.parametrize("text, line", [
    ("a 1 2\nb 1 2 3\n", 2),              # a longer row is not a word "b 1"
    ("a 1 2 3\nb 1 2 3\nc 1 2 3 4\nd 1 2\n", 3),
    ("a 1 2 3\nb 1 2\nc 1 2 3\n", 2),     # a shorter row
    ("2 3\nx 1 2\ny 1 2\n", 2),           # two integers, then rows of 2 values
    ("the 1 2\n. . . 1 2 3\n", 2),        # a spaced word followed by 3 values
])
def test_glove_rows_of_different_lengths_name_the_first_bad_line(tmp_path, text,
                                                                   line):
    p = tmp_path / "g.txt"
    p.write_text(text)
    with pytest.raises(QwemError, match=f"line {line} has .*same number of values"):
        load_word2vec(p, format="glove")


def test_glove_still_reads_spaced_and_numeric_words(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("the 0.5 -1\n. . . 1e-3 2\n1990 3 4\n")
    words, W = load_word2vec(p, format="glove")
    assert words == ["the", ". . .", "1990"]
    assert np.array_equal(W, [[0.5, -1], [1e-3, 2], [3, 4]])
    assert load_word2vec(p)[0] == words  # detected as GloVe


# ----------------------------------------------------------------------------------
# 2. words with Unicode whitespace: fields are split at ASCII blanks only
# ----------------------------------------------------------------------------------

UNICODE_WORDS = ["nbsp\u00a0word", "line\u2028sep", "ideo\u3000space", "plain",
                 "\u00a0edge", "sep\x1cctl", "nel\u0085x"]


def _binary(words, W) -> bytes:
    return f"{len(words)} {W.shape[1]}\n".encode() + b"".join(
        w.encode() + b" " + W[i].astype("<f4").tobytes() + b"\n"
        for i, w in enumerate(words))


def test_writer_accepts_what_the_reader_reads(tmp_path):
    check_words(UNICODE_WORDS)  # the writer's check: no refusal
    for bad in ("a b", "a\tb", "a\rb", "a\x0bb", "a\x0cb", "a\nb", "a\x00b"):
        with pytest.raises(QwemError, match="ASCII whitespace"):
            check_words(["ok", bad])


@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_unicode_whitespace_words_round_trip(tmp_path, fmt):
    W = (np.arange(3 * len(UNICODE_WORDS), dtype=np.float32)
         .reshape(len(UNICODE_WORDS), 3) + 0.25)
    p = tmp_path / f"u.{fmt}"
    if fmt == "text":
        save_word2vec(p, UNICODE_WORDS, W)
    else:
        p.write_bytes(_binary(UNICODE_WORDS, W))
    for forced in ("auto", fmt):
        words, W2 = load_word2vec(p, forced)
        assert words == UNICODE_WORDS
        assert np.array_equal(W2, W.astype(np.float64))


@pytest.mark.parametrize("ch", ["\u00a0", "\u2028", "\u3000", "\x1c"])
def test_glove_words_with_unicode_whitespace(tmp_path, ch):
    words = [f"a{ch}b", "plain", f"{ch}c"]
    W = np.arange(9, dtype=np.float64).reshape(3, 3)
    p = tmp_path / "g.txt"
    p.write_text("".join(w + " " + " ".join(map(str, W[i])) + "\n"
                         for i, w in enumerate(words)), encoding="utf-8")
    for fmt in ("auto", "glove"):
        got, W2 = load_word2vec(p, fmt)
        assert got == words and np.array_equal(W2, W)


def test_bad_line_after_a_unicode_word_is_named(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("3 2\na\u00a0b 1 2\nc 1 2\nd 1 x\n", encoding="utf-8")
    with pytest.raises(QwemError, match="line 4 has a non-numeric value 'x'"):
        load_word2vec(p)
    p.write_text("3 2\na\u3000b 1 2\nc 1 2 3\nd 1 2\n", encoding="utf-8")
    with pytest.raises(QwemError, match="line 3 has 4 fields, expected 3"):
        load_word2vec(p)


# ----------------------------------------------------------------------------------
# 3. torch's threads: one for small steps; the caller's setting restored
# ----------------------------------------------------------------------------------

def test_thread_selection_rule():
    assert torch_threads_for(1_000, cpus=16, current=16) == 1
    assert torch_threads_for(SMALL_WORK - 1, cpus=16, current=16) == 1
    assert torch_threads_for(SMALL_WORK, cpus=16, current=16) == 16
    assert torch_threads_for(10 * SMALL_WORK, cpus=2, current=16) == 2  # capped
    assert torch_threads_for(10 * SMALL_WORK, cpus=16, current=4) == 4
    assert torch_threads_for(10 * SMALL_WORK, cpus=0, current=0) == 1
    # a minibatch step of a small run is small work; full batch at large V is not
    cfg = TrainConfig(batch_size=1024, embed_dim=50)
    small = train_mod._step_work(cfg, "word", False, 2000, 50)
    assert torch_threads_for(small, cpus=16, current=16) == 1
    record = train_mod._step_work(cfg, "word", False, 500, 20, record=True)
    assert torch_threads_for(record, cpus=16, current=16) == 1  # its loss, V^2 d
    record = train_mod._step_work(cfg, "word", False, 5000, 50, record=True)
    assert torch_threads_for(record, cpus=16, current=16) == 16
    full = TrainConfig(embed_dim=50)
    big = train_mod._step_work(full, "word", True, 20_000, 50)
    assert torch_threads_for(big, cpus=16, current=16) == 16


def test_torch_threads_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(before + 2):
            assert torch.get_num_threads() == before + 2
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def _pq(V=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    C = torch.rand(V, V, generator=g, dtype=torch.float64) ** 4
    C = C + C.T
    P = C / C.sum()
    return P, P.sum(1)


def test_training_uses_one_thread_per_small_step_and_restores_the_callers(
        monkeypatch):
    P, u = _pq()
    seen = []
    real = train_mod.minibatch_grad

    def spy(*args, **kw):
        seen.append(torch.get_num_threads())
        return real(*args, **kw)

    monkeypatch.setattr(train_mod, "minibatch_grad", spy)
    at_checkpoints = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        cfg = TrainConfig(loss="sgns", reweight="word2vec", embed_dim=4, lr=0.01,
                          steps=20, batch_size=64, init_scale=0.1, n_checkpoints=3)
        train(cfg, P, u, device="cpu", progress=False,
              callback=lambda s, t, W: at_checkpoints.append(torch.get_num_threads()))
        assert torch.get_num_threads() == 3
        assert seen and set(seen) == {1}
        assert set(at_checkpoints) == {3}  # callbacks see the caller's setting
        # a full-batch run, and a run that diverges, leave it unchanged too
        train(TrainConfig(embed_dim=2, steps=5, lr=0.01), P, u, device="cpu",
              progress=False)
        assert torch.get_num_threads() == 3
        with pytest.raises(QwemError):
            train(TrainConfig(embed_dim=2, steps=50, lr=1e30, init_scale=0.1,
                              batch_size=16), P, u, device="cpu", progress=False)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
