"""The compiled SGNS kernel against a slow per-pair reference written in plain Python
(same random stream, one thread), and the Hogwild driver's waves, halts and threads."""

import math

import numpy as np
import pytest

from qwem_lib.kernels import _sgns as K
from qwem_lib.kernels.sgns_cpu import Hogwild, KernelState, alias_table
from qwem_lib.runtime.errors import QwemError

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# ----------------------------------------------------------------------------------
# the random stream, in Python integers
# ----------------------------------------------------------------------------------

def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class _Stream:
    def __init__(self, state):
        self.state = state

    def bits(self):
        self.state = (self.state + GOLDEN) & M64
        return _mix(self.state)

    def uniform(self):
        return (self.bits() >> 11) * 2.0 ** -53

    def window(self, L):
        return 1 + (((self.bits() >> 32) * L) >> 32)

    def negative(self, prob, alias):
        r = self.bits()
        col = ((r >> 32) * len(prob)) >> 32
        return col if (r & 0xFFFFFFFF) * 2.0 ** -32 < prob[col] else int(alias[col])


def _block_seed(seed, epoch, block):
    s = _mix((seed + GOLDEN) & M64)
    s = _mix((s + epoch + GOLDEN) & M64)
    return _mix((s + block + GOLDEN) & M64)


def test_splitmix64_published_values():
    # SplitMix64 from state 0 (Vigna's reference splitmix64.c): first three outputs.
    s = np.uint64(0)
    out = []
    for _ in range(3):
        s, r = K.splitmix_next(np.uint64(s))
        out.append(int(r))
    assert out == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    py = _Stream(0)
    assert [py.bits() for _ in range(3)] == out
    for args in [(0, 0, 0), (7, 2, 13), (2**40, 9, 123456)]:
        assert int(K.block_seed(*args)) == _block_seed(*args)
    assert len({_block_seed(0, e, b) for e in range(5) for b in range(50)}) == 250


# ----------------------------------------------------------------------------------
# the per-pair reference
# ----------------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def reference(ids, keep, prob, alias, W, C, *, window, negatives, block_tokens, seed,
              epochs, lr, shared):
    """word2vec's SGNS, one centre and one pair at a time, in Python loops.

    W and C (C is W when tied) are float64 arrays, trained in place.  Returns the
    number of centres trained and Σ lr · pairs.
    """
    N = len(ids)
    total = epochs * N
    centres, flow = 0, 0.0
    for epoch in range(epochs):
        for blk in range(-(-N // block_tokens)):
            rs = _Stream(_block_seed(seed, epoch, blk))
            a, b = blk * block_tokens, min(N, (blk + 1) * block_tokens)
            kept, raw = [], []
            for p in range(a, b):
                w = int(ids[p])
                if keep[w] < 1 and rs.uniform() >= keep[w]:
                    continue
                kept.append(w)
                raw.append(p)
            wins = [rs.window(window) for _ in kept]
            for i, c in enumerate(kept):
                ctx = [kept[q] for q in range(i - wins[i], i + wins[i] + 1)
                       if q != i and 0 <= q < len(kept)]
                if not ctx:
                    continue
                eta = lr * max(1e-4, 1 - (epoch * N + raw[i]) / total)
                centres += 1
                flow += eta * len(ctx)
                shared_negs = ([rs.negative(prob, alias) for _ in range(negatives)]
                               if shared else None)
                for o in ctx:  # outputs updated at once, input at the end
                    negs = shared_negs or [rs.negative(prob, alias)
                                           for _ in range(negatives)]
                    targets = [(c, 1.0)] + [(t, 0.0) for t in negs if t != c]
                    # every target scored before any is updated
                    steps = [(t, (y - _sigmoid(float(W[o] @ C[t]))) * eta)
                             for t, y in targets]
                    neu = np.zeros_like(W[o])
                    for t, g in steps:
                        neu += g * C[t]
                        C[t] += g * W[o]
                    W[o] += neu
    return centres, flow


def _corpus(n=900, V=12, seed=0):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, V + 1)
    ids = rng.choice(V, size=n, p=p / p.sum()).astype(np.int32)
    ids[:V] = np.arange(V)  # every word occurs
    return ids, V


def _tables(ids, V, t, power):
    counts = np.bincount(ids, minlength=V).astype(float)
    f = counts / counts.sum()
    keep = np.ones(V) if t == 0 else np.minimum(1.0, np.sqrt(t / f) + t / f)
    _, prob, alias = alias_table(counts, power)
    return keep, prob, alias


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("tied", [True, False])
def test_kernel_matches_the_per_pair_reference(shared, tied):
    ids, V = _corpus()
    keep, prob, alias = _tables(ids, V, 0.02, 0.75)
    assert (keep < 1).any() and (keep == 1).any()  # subsampling is exercised
    d = 6
    rng = np.random.default_rng(1)
    W0 = rng.normal(0, 0.3, (V, d))
    C0 = None if tied else rng.normal(0, 0.3, (V, d))
    kw = dict(window=3, negatives=4, block_tokens=250, seed=5, epochs=2, lr=0.05,
              shared=shared)
    Wr = W0.copy()
    Cr = Wr if tied else C0.copy()
    centres, flow = reference(ids, keep, prob, alias, Wr, Cr, **kw)
    Wk = W0.copy()
    Ck = None if tied else C0.copy()
    h = Hogwild(ids, keep, prob, alias, Wk, Ck, threads=1, **kw)
    h.run(h.total_words)
    assert h.done and h.words_done == 2 * len(ids)
    assert h.steps == centres
    assert math.isclose(h.flow_time, flow, rel_tol=1e-12)
    assert np.abs(Wk - W0).max() > 0.05  # it trained
    np.testing.assert_allclose(Wk, Wr, rtol=1e-10, atol=1e-12)
    if not tied:
        np.testing.assert_allclose(Ck, Cr, rtol=1e-10, atol=1e-12)


def test_float32_follows_float64():
    ids, V = _corpus(2000)
    keep, prob, alias = _tables(ids, V, 0.0, 0.75)
    rng = np.random.default_rng(2)
    W0 = rng.normal(0, 0.3, (V, 8))
    out = {}
    for dt in (np.float64, np.float32):
        W = W0.astype(dt)
        h = Hogwild(ids, keep, prob, alias, W, None, window=4, negatives=3,
                    block_tokens=500, seed=0, epochs=1, lr=0.05, shared=True,
                    threads=1)
        h.run(h.total_words)
        out[dt] = W
    assert np.abs(out[np.float32] - out[np.float64]).max() < 1e-4


# ----------------------------------------------------------------------------------
# waves, halts, threads
# ----------------------------------------------------------------------------------

def _run(ids, V, targets, threads=1, state=None, W=None, C=None, **over):
    keep, prob, alias = _tables(ids, V, 0.02, 0.75)
    if W is None:
        rng = np.random.default_rng(3)
        W = rng.normal(0, 0.3, (V, 6)).astype(np.float32)
        C = np.zeros_like(W)
    kw = dict(window=3, negatives=4, block_tokens=300, seed=1, epochs=3, lr=0.05,
              shared=True, threads=threads)
    kw.update(over)
    h = Hogwild(ids, keep, prob, alias, W, C, state=state, **kw)
    for t in targets:
        h.run(t)
    return h, W, C


def test_pausing_anywhere_changes_nothing_on_one_thread():
    ids, V = _corpus(2000)
    whole, W1, C1 = _run(ids, V, [10**9])
    assert whole.done
    # many waves, stopping in the middle of blocks and of epochs
    cuts = [1, 2, 137, 299, 300, 301, 2222, 4001, 4500, 10**9]
    waves, W2, C2 = _run(ids, V, cuts)
    assert np.array_equal(W1, W2) and np.array_equal(C1, C2)
    assert waves.steps == whole.steps and waves.flow_time == whole.flow_time
    # a run continued from a copy of the state (a checkpoint) in a new driver
    part, W3, C3 = _run(ids, V, [3333])
    assert part.words_done >= 3333 and not part.done
    st = KernelState.from_arrays({k: v.copy() for k, v in
                                  part.state.to_arrays().items()})
    rest, _, _ = _run(ids, V, [10**9], state=st, W=W3.copy(), C=C3.copy())
    assert np.array_equal(rest.W, W1) and np.array_equal(rest.C, C1)


def test_a_halted_wave_can_continue():
    ids, V = _corpus(40000)
    whole, W1, _ = _run(ids, V, [10**9], epochs=1)
    keep, prob, alias = _tables(ids, V, 0.02, 0.75)
    rng = np.random.default_rng(3)
    W = rng.normal(0, 0.3, (V, 6)).astype(np.float32)
    C = np.zeros_like(W)
    h = Hogwild(ids, keep, prob, alias, W, C, window=3, negatives=4, block_tokens=300,
                seed=1, epochs=1, lr=0.05, shared=True, threads=1)

    class Stop(Exception):
        pass

    def poll():
        raise Stop

    with pytest.raises(Stop):
        h.run(h.total_words, poll=poll, poll_seconds=1e-4)
    h.run(h.total_words)
    assert np.array_equal(W, W1)


def test_threads_share_the_work():
    ids, V = _corpus(30000)
    h, W, _ = _run(ids, V, [10**9], threads=2, epochs=2)
    assert h.done and h.words_done == 2 * len(ids)
    one, W1, _ = _run(ids, V, [10**9], threads=1, epochs=2)
    # the same blocks, windows and negatives: the same number of centres and pairs
    assert h.steps == one.steps
    assert h.state.acc[:, 2].sum() == one.state.acc[:, 2].sum()
    assert (h.state.pos[:, 3] > 0).all()  # both threads trained
    # Hogwild: the same run up to the order of the updates, so the same loss
    assert np.isfinite(W).all()
    loss2, loss1 = (r.running_loss()[0] / r.running_loss()[1] for r in (h, one))
    assert abs(loss2 / loss1 - 1) < 0.01, (loss2, loss1)


def test_resume_needs_the_same_threads():
    ids, V = _corpus(3000)
    h, W, C = _run(ids, V, [1000], threads=2)
    with pytest.raises(QwemError, match="threads=2"):
        _run(ids, V, [10**9], threads=1, state=h.state, W=W, C=C)


def test_alias_table_is_exact():
    counts = np.array([1000, 400, 150, 60, 20, 7, 3, 1, 0])
    probs, prob, alias = alias_table(counts, 0.75)
    # the probability of each word, summed over the columns that give it
    V = len(counts)
    got = np.zeros(V)
    for col in range(V):
        got[col] += prob[col] / V
        got[alias[col]] += (1 - prob[col]) / V
    want = np.where(counts > 0, counts, 0) ** 0.75
    np.testing.assert_allclose(got, want / want.sum(), rtol=1e-12, atol=1e-15)
    assert got[-1] == 0
    with pytest.raises(QwemError):
        alias_table(np.zeros(3), 0.75)
