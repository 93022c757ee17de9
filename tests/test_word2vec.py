"""Our streaming word2vec (SGNS): pairs, windows, subsampling, negatives, the torch
step's gradient, and the trainer (both engines: learning, threads, resume,
divergence), against hand-worked cases and independent code.  The compiled kernel's
updates are checked against a per-pair reference in test_sgns_cpu.py."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from qwem_lib.kernels.sgns_torch import (NegativeSampler, draw_windows, prepare_block,
                                         sgns_update, window_pairs)
from qwem_lib.losses import keep_probs
from qwem_lib.runtime.errors import QwemError
from qwem_lib.runtime.history import History
from qwem_lib.train import TrainResult
from qwem_lib.word2vec import Word2VecConfig, train_word2vec

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------
# (1) pairs of a fixed window draw, (2) their expected weights
# ----------------------------------------------------------------------------------

def test_window_pairs_hand_worked():
    # Five kept positions, L = 3, window draws b = 2, 1, 3, 1, 2:
    # p0 sees 1, 2; p1 sees 0, 2; p2 sees 0, 1, 3, 4 (b=3 is cut by the ends);
    # p3 sees 2, 4; p4 sees 2, 3.
    windows = torch.tensor([2, 1, 3, 1, 2])
    centre, context = window_pairs(windows, 3)
    got = sorted(zip(centre.tolist(), context.tolist()))
    want = sorted([(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 3), (2, 4),
                   (3, 2), (3, 4), (4, 2), (4, 3)])
    assert got == want
    # A batch of centres sees contexts outside the batch, but only its own centres.
    c, o = window_pairs(windows, 3, start=1, stop=3)
    assert sorted(zip(c.tolist(), o.tolist())) == [(1, 0), (1, 2), (2, 0), (2, 1),
                                                     (2, 3), (2, 4)]
    # As word ids of a kept stream: a multiset (repeated pairs count twice).
    kept = torch.tensor([7, 3, 7, 1, 7])
    ids = sorted(zip(kept[centre].tolist(), kept[context].tolist()))
    assert ids == sorted([(7, 3), (7, 7), (3, 7), (3, 7), (7, 7), (7, 3), (7, 1),
                          (7, 7), (1, 7), (1, 7), (7, 7), (7, 1)])


def test_dynamic_window_weights():
    """Offset s is used with probability (L - s + 1)/L on either side."""
    L, n, draws = 4, 1000, 300
    gen = torch.Generator().manual_seed(1)
    counts = np.zeros(2 * L + 1)
    interior = 0
    for _ in range(draws):
        b = draw_windows(n, L, gen)
        assert int(b.min()) >= 1 and int(b.max()) <= L
        c, o = window_pairs(b, L)
        inside = (c >= L) & (c < n - L)  # centres whose windows are never cut
        counts += np.bincount((o - c)[inside].numpy() + L, minlength=2 * L + 1)
        interior += n - 2 * L
    rate = counts / interior
    expected = np.array([(L - abs(s) + 1) / L if s else 0.0
                         for s in range(-L, L + 1)])
    # ~3e5 centres per offset: standard error <= 9e-4
    assert np.abs(rate - expected).max() < 5e-3, (rate, expected)


# ----------------------------------------------------------------------------------
# (3) subsampling
# ----------------------------------------------------------------------------------

def test_keep_probs_hand_worked():
    # counts 90, 9, 1 (f = 0.9, 0.09, 0.01), t = 0.01:
    # (sqrt(f/t) + 1) t/f = (sqrt(90) + 1)/90 = 0.1165203..., (sqrt(9) + 1)/9 = 4/9,
    # (1 + 1)/1 = 2 -> clipped to 1.
    p = keep_probs([90, 9, 1], 0.01)
    want = torch.tensor([(math.sqrt(90) + 1) / 90, 4 / 9, 1.0], dtype=torch.float64)
    assert torch.allclose(p, want, rtol=1e-12, atol=0)
    assert abs(float(p[0]) - 0.1165203) < 1e-7
    assert torch.equal(keep_probs([90, 9, 1], 0), torch.ones(3, dtype=torch.float64))


def test_subsampling_keeps_that_fraction():
    """The stream keeps each token of word w with probability p_w."""
    ids = np.repeat(np.arange(3), [9000, 900, 100])
    keep = keep_probs(np.bincount(ids), 0.01)
    gen = torch.Generator().manual_seed(0)
    kept = np.zeros(3)
    for _ in range(20):
        blk = prepare_block(ids, keep, 2, gen, CPU)
        kept += np.bincount(blk.kept.numpy(), minlength=3)
        assert np.all(np.diff(blk.raw_pos) > 0)  # order kept
    rate = kept / (20 * np.array([9000, 900, 100]))
    assert np.allclose(rate, keep.numpy(), atol=0.02), (rate, keep)


# ----------------------------------------------------------------------------------
# (4) negatives
# ----------------------------------------------------------------------------------

def test_negative_sampler_matches_unigram_power():
    counts = np.array([1000, 400, 150, 60, 20, 7, 3, 1])
    s = NegativeSampler(counts, 0.75)
    want = counts ** 0.75 / (counts ** 0.75).sum()
    assert np.allclose(s.probs, want, rtol=1e-12)
    n = 400_000
    draws = s.draw((n,), torch.Generator().manual_seed(3)).numpy()
    freq = np.bincount(draws, minlength=len(counts)) / n
    # max abs error: standard error <= sqrt(0.25/n) = 8e-4
    assert np.abs(freq - want).max() < 4e-3
    chi2 = ((freq - want) ** 2 / want).sum() * n
    assert stats.chi2.sf(chi2, len(counts) - 1) > 1e-4, chi2
    # power 1 is the unigram itself
    assert np.allclose(NegativeSampler(counts, 1.0).probs, counts / counts.sum())


# ----------------------------------------------------------------------------------
# (5) one step's gradient against autograd on an independently written loss
# ----------------------------------------------------------------------------------

def _reference_loss(W, C, kept, windows, start, stop, negs, L):
    """SGNS loss of the batch, written pair by pair with Python loops."""
    total = W.new_zeros(())
    n_pairs = 0
    n = len(kept)
    for p in range(start, stop):
        c = kept[p]
        for s in range(-L, L + 1):
            if s == 0 or abs(s) > windows[p] or not 0 <= p + s < n:
                continue
            o = kept[p + s]
            n_pairs += 1
            total = total + F.softplus(-(W[o] @ C[c]))
            for m in negs[p - start]:
                if m != c:  # word2vec skips a negative equal to the centre word
                    total = total + F.softplus(W[o] @ C[m])
    return total, n_pairs


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("start,stop", [(0, 40), (5, 21), (30, 31)])
def test_update_is_the_sgns_gradient(tied, start, stop):
    V, d, L, k, n = 9, 4, 3, 3, 40
    g = torch.Generator().manual_seed(7)
    kept = torch.randint(0, V, (n,), generator=g)
    windows = draw_windows(n, L, g)
    negs = torch.randint(0, V, (stop - start, k), generator=g)
    negs[0, 0] = kept[start]  # one negative equal to its centre: skipped
    W = torch.randn(V, d, generator=g, dtype=torch.float64)
    C = None if tied else torch.randn(V, d, generator=g, dtype=torch.float64)

    Wr = W.clone().requires_grad_(True)
    Cr = Wr if tied else C.clone().requires_grad_(True)
    ref, n_ref = _reference_loss(Wr, Cr, kept.tolist(), windows.tolist(), start,
                                 stop, negs.tolist(), L)
    params = [Wr] if tied else [Wr, Cr]
    grads = torch.autograd.grad(ref, params)

    lr = 0.5
    W1 = W.clone()
    C1 = None if tied else C.clone()
    loss, n_pairs = sgns_update(W1, C1, kept, windows, start, stop, negs, lr, L,
                                step_cap=False)
    assert int(n_pairs) == n_ref
    assert torch.allclose(loss, ref.detach(), rtol=1e-12, atol=1e-12)
    assert torch.allclose((W - W1) / lr, grads[0], rtol=1e-10, atol=1e-12)
    if not tied:
        assert torch.allclose((C - C1) / lr, grads[1], rtol=1e-10, atol=1e-12)
    # With the step cap and a small lr every row keeps the plain SGD step.
    W2 = W.clone()
    C2 = None if tied else C.clone()
    sgns_update(W2, C2, kept, windows, start, stop, negs, 1e-6, L, step_cap=True)
    assert torch.allclose((W - W2) / 1e-6, grads[0], rtol=1e-6, atol=1e-9)


def _pair_lists(kept, windows, negs, L):
    """Positive (o, c) and negative (o, m) index lists, built by explicit loops."""
    pos, neg = [], []
    n = len(kept)
    for p in range(n):
        for s in range(-windows[p], windows[p] + 1):
            if s and 0 <= p + s < n:
                pos.append((kept[p + s], kept[p]))
                neg += [(kept[p + s], m) for m in negs[p] if m != kept[p]]
    return torch.tensor(pos), torch.tensor(neg)


def test_step_cap_is_a_newton_step_along_each_row():
    """Untied: row r moves by -min(lr, 1/κ_r) g_r, with κ_r = u^T H_r u along
    u = g_r/|g_r| and H_r the Hessian of the batch loss in that row (autograd)."""
    V, d, L, k, n = 25, 3, 3, 4, 40
    g = torch.Generator().manual_seed(11)
    kept = torch.randint(0, V, (n,), generator=g)
    kept[::3] = 0  # a frequent word
    windows = draw_windows(n, L, g)
    negs = torch.randint(0, V, (n, k), generator=g)
    negs[:, 0] = 1  # a frequent negative
    W = torch.randn(V, d, generator=g, dtype=torch.float64)
    C = torch.randn(V, d, generator=g, dtype=torch.float64)
    lr = 0.1
    pos, neg = _pair_lists(kept.tolist(), windows.tolist(), negs.tolist(), L)

    def loss_of(Wx, Cx):
        return (F.softplus(-(Wx[pos[:, 0]] * Cx[pos[:, 1]]).sum(1)).sum()
                + F.softplus((Wx[neg[:, 0]] * Cx[neg[:, 1]]).sum(1)).sum())

    W1, C1 = W.clone(), C.clone()
    sgns_update(W1, C1, kept, windows, 0, n, negs, lr, L, step_cap=True)
    Wr, Cr = W.clone().requires_grad_(True), C.clone().requires_grad_(True)
    gW, gC = torch.autograd.grad(loss_of(Wr, Cr), [Wr, Cr])
    capped = free = 0
    for which, (M0, M1, grad) in {"W": (W, W1, gW), "C": (C, C1, gC)}.items():
        for r in range(V):
            if not grad[r].any():
                assert torch.equal(M0[r], M1[r])
                continue

            def row_loss(v, r=r, which=which):
                M = torch.cat([M0[:r], v[None], M0[r + 1:]])
                return loss_of(M, C) if which == "W" else loss_of(W, M)
            H = torch.autograd.functional.hessian(row_loss, M0[r].clone())
            u = grad[r] / grad[r].norm()
            step = min(lr, 1.0 / float(u @ H @ u))
            capped += step < lr
            free += step == lr
            assert torch.allclose(M0[r] - M1[r], step * grad[r], rtol=1e-9,
                                  atol=1e-12), (which, r)
    assert capped >= 2 and free >= 10, (capped, free)  # frequent rows are capped


# ----------------------------------------------------------------------------------
# (6) learning structure, (7) resume, (8) divergence
# ----------------------------------------------------------------------------------

def _two_topics(n_segments=150, seg=60, per_topic=8, seed=0):
    """A stream of segments, each drawn from one of two disjoint word clusters."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(n_segments):
        topic = rng.integers(2)
        parts.append(topic * per_topic + rng.integers(0, per_topic, seg))
    return np.concatenate(parts), 2 * per_topic


def _cos(W):
    U = W / W.norm(dim=1, keepdim=True)
    return U @ U.T


# The kernel on one and two threads (Hogwild), and the torch engine on the CPU.
ENGINES = [dict(engine="kernel", threads=1), dict(engine="kernel", threads=2),
           dict(engine="torch")]


@pytest.mark.parametrize("run", ENGINES, ids=["kernel-1", "kernel-2", "torch"])
@pytest.mark.parametrize("tied", [True, False])
def test_learns_topic_clusters(tied, run):
    ids, V = _two_topics()
    cfg = Word2VecConfig(embed_dim=8, window=3, negatives=5, subsample=0, epochs=3,
                         lr=0.025, batch_size=16, tied=tied, dtype="float64")
    res = train_word2vec(cfg, ids, V, device=CPU, progress=False, n_checkpoints=5,
                         **run)
    assert isinstance(res, TrainResult) and isinstance(res.history, History)
    assert res.engine == run["engine"] and res.threads == run.get("threads", 1)
    S = _cos(res.W)
    same = np.add.outer(np.arange(V) // 8, -(np.arange(V) // 8)) == 0
    off = ~np.eye(V, dtype=bool)
    within = float(S[torch.from_numpy(same & off)].mean())
    across = float(S[torch.from_numpy(~same)].mean())
    assert within > across + 0.5, (within, across)
    h = res.history
    assert h.step[0] == 0 and h.step[-1] == res.steps
    assert res.checkpoint_words[-1] == 3 * len(ids)
    assert all(len(s) == 8 for s in h.singular_values)
    assert all(a >= b for s in h.singular_values for a, b in zip(s, s[1:]))
    assert np.all(np.diff(h.t) > 0) and h.loss[-1] < h.loss[0]
    assert (res.C is None) == tied


@pytest.mark.parametrize("shared", [True, False])
def test_kernel_one_thread_is_reproducible(shared):
    ids, V = _two_topics(n_segments=40)
    cfg = Word2VecConfig(embed_dim=6, window=3, subsample=1e-2, tied=False,
                         shared_negatives=shared)
    a, b = (train_word2vec(cfg, ids, V, device=CPU, threads=1, progress=False)
            for _ in range(2))
    assert torch.equal(a.W, b.W) and torch.equal(a.C, b.C)
    assert a.history.to_dict() == b.history.to_dict()
    c = train_word2vec(Word2VecConfig(embed_dim=6, window=3, subsample=1e-2,
                                      tied=False, shared_negatives=shared, seed=1),
                       ids, V, device=CPU, threads=1, progress=False)
    assert not torch.equal(a.W, c.W)  # the seed matters


@pytest.mark.parametrize("run", [dict(engine="kernel", threads=1),
                                 dict(engine="torch")], ids=["kernel", "torch"])
def test_resume_is_bitwise_identical(tmp_path, run):
    ids, V = _two_topics(n_segments=60, seg=50)
    cfg = Word2VecConfig(embed_dim=5, window=4, negatives=3, subsample=1e-2,
                         epochs=2, batch_size=20, tied=False, block_tokens=700)
    full = train_word2vec(cfg, ids, V, device=CPU, progress=False,
                          out_dir=tmp_path / "a", n_checkpoints=12, **run)
    assert (tmp_path / "a" / "checkpoint.npz").exists()
    assert (tmp_path / "a" / "history.json").exists()
    N = len(ids)
    for until in (7, N + N // 2 + 3):  # early, and mid-way in epoch 2
        out = tmp_path / f"b{until}"
        part = train_word2vec(cfg, ids, V, device=CPU, progress=False, out_dir=out,
                              n_checkpoints=12, until=until, **run)
        assert until <= part.checkpoint_words[-1] or part.steps < full.steps
        assert not (out / "history.json").exists()  # not finished
        assert 0 < part.steps < full.steps
        res = train_word2vec(cfg, ids, V, device=CPU, progress=False, out_dir=out,
                             n_checkpoints=12, resume=True, **run)
        assert res.steps == full.steps
        assert torch.equal(res.W, full.W) and torch.equal(res.C, full.C)
        assert res.history.to_dict() == full.history.to_dict()
        assert res.checkpoint_words == full.checkpoint_words
        assert (out / "history.json").exists()
        assert not [p for p in out.iterdir() if ".part" in p.name]
    # another configuration, or the other engine, refuses that checkpoint
    with pytest.raises(QwemError, match="another"):
        train_word2vec(Word2VecConfig(embed_dim=5, window=3), ids, V, device=CPU,
                       progress=False, out_dir=tmp_path / "a", n_checkpoints=12,
                       resume=True, **run)
    other = dict(engine="torch") if run["engine"] == "kernel" else \
        dict(engine="kernel", threads=1)
    with pytest.raises(QwemError, match="another"):
        train_word2vec(cfg, ids, V, device=CPU, progress=False,
                       out_dir=tmp_path / "a", n_checkpoints=12, resume=True, **other)


def test_resume_on_two_threads_continues(tmp_path):
    ids, V = _two_topics(n_segments=80, seg=50)
    cfg = Word2VecConfig(embed_dim=5, window=4, negatives=3, subsample=0, epochs=2,
                         tied=False, block_tokens=500)
    kw = dict(device=CPU, progress=False, out_dir=tmp_path, n_checkpoints=8,
              threads=2)
    part = train_word2vec(cfg, ids, V, until=len(ids), **kw)
    res = train_word2vec(cfg, ids, V, resume=True, **kw)
    assert res.checkpoint_words[:len(part.checkpoint_words)] == part.checkpoint_words
    assert res.checkpoint_words[-1] == 2 * len(ids)
    assert res.history.loss[-1] < res.history.loss[0]
    with pytest.raises(QwemError, match="another run: threads is 2 there and 1 here"):
        train_word2vec(cfg, ids, V, until=len(ids), resume=True,
                       **dict(kw, threads=1, out_dir=tmp_path))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("run,lr,n_checkpoints,what", [
    # overflows at once: seen in the sampled loss or in W, whichever comes first
    (dict(engine="kernel"), 1e30, 1, "(the loss|W) became NaN/inf"),
    (dict(engine="torch"), 1e30, 1, "the loss became NaN/inf"),
    # summed batch steps overshoot, caught by the running loss
    (dict(engine="torch"), 5.0, 30, "the loss per pair rose to"),
])
def test_divergence_names_step_and_lr(tied, run, lr, n_checkpoints, what):
    ids, V = _two_topics(n_segments=40)
    cfg = Word2VecConfig(embed_dim=4, window=3, lr=lr, subsample=0, batch_size=16,
                         tied=tied)
    with pytest.raises(QwemError, match=rf"diverged at step \d+: {what}.*"
                                        r"learning rate \d"):
        train_word2vec(cfg, ids, V, device=CPU, progress=False,
                       n_checkpoints=n_checkpoints, **run)


def test_engine_and_threads_checked():
    ids, V = _two_topics(n_segments=20)
    cfg = Word2VecConfig(embed_dim=2, window=2)
    for kw, match in [(dict(engine="numba"), "engine must be"),
                      (dict(threads=0), "threads must be"),
                      (dict(threads=1.5), "threads must be")]:
        with pytest.raises(QwemError, match=match):
            train_word2vec(cfg, ids, V, device=CPU, progress=False, **kw)


# ----------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(window=0), dict(negatives=0),
                                    dict(batch_size=0), dict(epochs=0),
                                    dict(lr=0.0), dict(lr=float("nan")),
                                    dict(subsample=-1.0), dict(init_scale=0.0),
                                    dict(dtype="float16"), dict(seed=-1)])
def test_bad_config(kwargs):
    with pytest.raises(QwemError):
        Word2VecConfig(**kwargs)


def test_bad_tokens():
    cfg = Word2VecConfig(embed_dim=2, window=2)
    with pytest.raises(QwemError, match="empty|0 token"):
        train_word2vec(cfg, np.zeros(0, np.int32), 5, device=CPU, progress=False)
    with pytest.raises(QwemError, match="distinct ids occur"):
        train_word2vec(cfg, np.array([0, 1, 2, 1, 0]), 5, device=CPU,
                       progress=False)
    with pytest.raises(QwemError, match=r"0\.\.2"):
        train_word2vec(cfg, np.array([0, 1, 3]), 3, device=CPU, progress=False)
    with pytest.raises(QwemError, match="1-D integer"):
        train_word2vec(cfg, np.array([0.0, 1.0]), 2, device=CPU, progress=False)
    with pytest.raises(QwemError, match="resume"):
        train_word2vec(cfg, np.array([0, 1, 0]), 2, device=CPU, progress=False,
                       resume=True)


# ----------------------------------------------------------------------------------
# a real corpus
# ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_bundled_sample_learns_analogies_and_neighbours():
    from qwem_lib.corpus import load_tokens
    from qwem_lib.evaluate import analogy_paper
    torch.set_num_threads(1)
    tokens = load_tokens("sample", 2000, progress=False)
    words = tokens.vocab.words
    cfg = Word2VecConfig(embed_dim=50, window=5, batch_size=64)
    res = train_word2vec(cfg, tokens.ids, len(words), device=CPU, progress=False,
                         n_checkpoints=3)
    acc = analogy_paper(res.W, words, device=CPU)
    print(f"analogy accuracy (paper's protocol) {acc.accuracy:.3f} on {acc.n} "
          f"analogies; chance ~ {1 / len(words):.4f}")
    assert acc.accuracy > 0.05
    S = _cos(res.W)
    months = {"january", "february", "march", "april", "june", "july", "august",
              "september", "october", "november", "december"}
    numbers = {"two", "three", "four", "five", "six", "seven", "eight", "nine"}
    for word, group in (("july", months), ("four", numbers)):
        i = words.index(word)
        top = [words[j] for j in S[i].argsort(descending=True)[1:6].tolist()]
        print(word, "->", top)
        assert len(group & set(top)) >= 3, top


# ----------------------------------------------------------------------------------
# (9) resume continues the same run, or is refused naming what differs
# ----------------------------------------------------------------------------------

_W2V_RUN = dict(window=4, scheme="text8", vocab_size=16, corpus="sha256:" + "ab" * 32)


def _w2v_interrupted(out, **kw):
    ids, V = _two_topics(n_segments=30, seg=50)
    cfg = Word2VecConfig(embed_dim=4, window=4, negatives=2, subsample=0, epochs=2,
                         block_tokens=300)
    run = dict(device=CPU, progress=False, threads=1, n_checkpoints=6, **kw)
    train_word2vec(cfg, ids, V, out_dir=out, until=len(ids) // 2,
                   run_info=_W2V_RUN, **run)
    return cfg, ids, V, run


def test_w2v_resume_with_run_info_is_bitwise(tmp_path):
    cfg, ids, V, run = _w2v_interrupted(tmp_path)
    ref = train_word2vec(cfg, ids, V, **run)
    res = train_word2vec(cfg, ids, V, out_dir=tmp_path, resume=True,
                         run_info=dict(_W2V_RUN), **run)
    assert torch.equal(res.W, ref.W)
    assert res.history.to_dict() == ref.history.to_dict()


@pytest.mark.parametrize("change,expected", [
    (dict(cfg=dict(window=3)), "window is 4 there and 3 here"),
    (dict(cfg=dict(negatives=3, lr=0.05)),
     "negatives is 2 there and 3 here, lr is 0.025 there and 0.05 here"),
    (dict(run_info=dict(corpus="sha256:" + "cd" * 32)), "the corpus differs"),
    (dict(run_info=dict(scheme="auto")), "scheme is 'text8' there and 'auto' here"),
    (dict(ids="other"), "the token stream differs"),
    (dict(ids="longer"), "n_tokens is 1500 there and 1501 here, the token stream "
                         "differs"),
    (dict(run=dict(n_checkpoints=7)), "n_checkpoints is 6 there and 7 here"),
    (dict(run=dict(engine="torch")), "engine is 'kernel' there and 'torch' here"),
])
def test_w2v_resume_of_another_run_is_refused(tmp_path, change, expected):
    cfg, ids, V, run = _w2v_interrupted(tmp_path)
    cfg = Word2VecConfig(**{**cfg.to_dict(), **change.get("cfg", {})})
    if change.get("ids") == "other":
        ids = ids.copy()
        ids[[5, 6]] = ids[[6, 5]] if ids[5] != ids[6] else ids[[7, 5]]
    elif change.get("ids") == "longer":
        ids = np.append(ids, ids[0])
    run = {**run, **change.get("run", {})}
    with pytest.raises(QwemError) as e:
        train_word2vec(cfg, ids, V, out_dir=tmp_path, resume=True,
                       run_info={**_W2V_RUN, **change.get("run_info", {})}, **run)
    assert str(e.value) == (
        f"the checkpoint {tmp_path / 'checkpoint.npz'} belongs to another run: "
        f"{expected}; resume with the same settings, or start afresh with "
        "overwrite=True (--overwrite) instead of resuming")


def test_w2v_resume_with_another_vocabulary_is_refused_before_shapes(tmp_path):
    cfg, ids, V, run = _w2v_interrupted(tmp_path)
    ids2 = np.append(ids, V)  # one more word
    with pytest.raises(QwemError, match=r"another run: vocab_size is 16 there and 17 "
                                        r"here, n_tokens is 1500 there and 1501 here"):
        train_word2vec(cfg, ids2, V + 1, out_dir=tmp_path, resume=True,
                       run_info=_W2V_RUN, **run)


@pytest.mark.parametrize("cut", [0, 7, 500, -400, -1])
def test_w2v_resume_from_a_truncated_checkpoint_is_one_line(tmp_path, cut):
    cfg, ids, V, run = _w2v_interrupted(tmp_path)
    ck = tmp_path / "checkpoint.npz"
    ck.write_bytes(ck.read_bytes()[:cut])
    with pytest.raises(QwemError, match=r"cannot read the checkpoint .*; delete it to "
                                        r"start afresh \(overwrite=True") as e:
        train_word2vec(cfg, ids, V, out_dir=tmp_path, resume=True,
                       run_info=_W2V_RUN, **run)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad,match", [
    (dict(W=np.zeros((16, 5), np.float32)), r"the array\(s\) W have the wrong shape"),
    (dict(kernel_pos=np.zeros((2, 4), np.int64)), "kernel_pos have the wrong shape"),
    (dict(checkpoint_words=np.zeros(1, np.int64)), "history have the wrong shape"),
    (dict(history=np.array("{")), "history have the wrong shape or content"),
])
def test_w2v_checkpoint_with_wrong_arrays_is_one_line(tmp_path, bad, match):
    from qwem_lib.runtime.history import save_checkpoint
    cfg, ids, V, run = _w2v_interrupted(tmp_path)
    ck = tmp_path / "checkpoint.npz"
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    save_checkpoint(ck, meta, **{**arrays, **bad})
    with pytest.raises(QwemError, match=f"cannot read the checkpoint .*{match}"):
        train_word2vec(cfg, ids, V, out_dir=tmp_path, resume=True,
                       run_info=_W2V_RUN, **run)


def test_w2v_new_run_does_not_mix_with_another(tmp_path):
    cfg, ids, V, run = _w2v_interrupted(tmp_path)
    with pytest.raises(QwemError, match=r"already holds a run \(checkpoint\.npz\); "
                                        r"use resume=True \(--resume\) to continue "
                                        r"it, overwrite=True \(--overwrite\)"):
        train_word2vec(cfg, ids, V, out_dir=tmp_path, **run)
    ref = train_word2vec(cfg, ids, V, **run)
    res = train_word2vec(cfg, ids, V, out_dir=tmp_path, overwrite=True, **run)
    assert torch.equal(res.W, ref.W)
    assert History.load(tmp_path / "history.json").to_dict() == ref.history.to_dict()


# ----------------------------------------------------------------------------------
# (10) options
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(negatives=float("inf")), "negatives (--negatives) must be an integer from 1 "
                                   "to 1,000, got inf"),
    (dict(negatives=5.0), "negatives (--negatives) must be an integer from 1 to"),
    (dict(negatives=10**6), "negatives (--negatives) must be an integer from 1 to"),
    (dict(window=0), "window (--window) must be an integer from 1 to 1,000, got 0"),
    (dict(window=10**4), "window (--window) must be an integer from 1 to 1,000"),
    (dict(window=2.0), "window (--window) must be an integer from 1 to 1,000, got 2.0"),
    (dict(window=True), "window (--window) must be an integer from 1 to 1,000"),
    (dict(seed=10**23), "seed (--seed) must be an integer from 0 to "
                        "9,223,372,036,854,775,807, got 100000000000000000000000"),
    (dict(lr=float("inf")), "lr (--lr) must be a finite number > 0, got inf"),
    (dict(subsample=float("nan")), "subsample (--subsample) must be a finite number "
                                   ">= 0, got nan"),
    (dict(neg_power=float("inf")), "neg_power (--neg-power) must be a finite number"),
    (dict(init_scale=0.0), "init_scale (--init-scale) must be a finite number > 0"),
    (dict(init_scale=float("inf")), "init_scale (--init-scale) must be a finite"),
    (dict(epochs=np.float32(1)), "epochs (--epochs) must be an integer >= 1, got 1.0"),
    (dict(embed_dim=False), "embed_dim (--dim) must be an integer >= 1, got False"),
    (dict(tied="yes"), "tied must be True or False"),
])
def test_w2v_config_options_are_checked(kwargs, message):
    with pytest.raises(QwemError) as e:
        Word2VecConfig(**kwargs)
    assert str(e.value).startswith(message), str(e.value)


def test_w2v_config_accepts_numpy_numbers_as_python_ones():
    cfg = Word2VecConfig(embed_dim=np.int64(4), window=np.int32(3),
                         negatives=np.int64(2), epochs=np.uint8(1),
                         lr=np.float32(0.05), subsample=np.float64(0),
                         neg_power=np.float64(0.75), seed=np.int64(2**63 - 1),
                         init_scale=np.float64(0.2), tied=np.bool_(True))
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    ints = ("embed_dim", "window", "negatives", "epochs", "seed")
    assert [type(d[k]) for k in ints] == [int] * 5
    assert [type(d[k]) for k in ("lr", "subsample", "neg_power", "init_scale")] \
        == [float] * 4
    assert d["tied"] is True and d["seed"] == 2**63 - 1
    ids, V = _two_topics(n_segments=10, seg=40)
    for run in (dict(engine="kernel", threads=1), dict(engine="torch")):
        res = train_word2vec(cfg, ids, V, device=CPU, progress=False,
                             n_checkpoints=np.int64(2), **run)
        assert torch.isfinite(res.W).all()


def test_w2v_until_and_run_info_checked():
    ids, V = _two_topics(n_segments=10, seg=40)
    cfg = Word2VecConfig(embed_dim=2, window=2)
    with pytest.raises(QwemError, match="until must be an integer >= 0"):
        train_word2vec(cfg, ids, V, device=CPU, progress=False, until=1.5)
    with pytest.raises(QwemError, match="run_info must be a dict"):
        train_word2vec(cfg, ids, V, device=CPU, progress=False, run_info="x")
    with pytest.raises(QwemError, match=r"device \(--device\) 'gpu'"):
        train_word2vec(cfg, ids, V, device="gpu", progress=False)
