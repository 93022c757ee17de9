"""The compiled SGNS kernel of :mod:`qwem_lib.kernels.sgns_cpu` (numba).

Imported only when a CPU word2vec run starts, so that importing ``qwem_lib`` neither
imports numba nor compiles anything.  Compiled code is cached on disk (numba's
``cache=True``), so only the first run on a machine pays the compilation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOSS_EVERY = 16  # the running loss is summed over every 16th centre of a thread
PROGRESS_EVERY = 256  # centres between two updates of a thread's visible progress

# Fast-math without 'nnan'/'ninf', so that NaN and inf propagate (and divergence is
# seen); 'reassoc' lets the dot products and row updates vectorise.
FASTMATH = {"reassoc", "contract", "nsz", "arcp", "afn"}

# SplitMix64 (Steele, Lea and Flood 2014), in uint64 so that numba keeps the
# arithmetic unsigned and wrapping.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_M53 = 2.0 ** -53
_TWO_M32 = 2.0 ** -32


@njit(inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def block_seed(seed, epoch, block):
    """The random state a block's stream starts from (a hash of the three)."""
    s = _mix(np.uint64(seed) + _GOLDEN)
    s = _mix(s + np.uint64(epoch) + _GOLDEN)
    return _mix(s + np.uint64(block) + _GOLDEN)


@njit(cache=True)
def splitmix_next(s):
    """One step of the stream: ``(new state, 64 random bits)`` (for tests)."""
    s = s + _GOLDEN
    return s, _mix(s)


@njit(inline="always")
def _prepare(ids, a, b, keep, window, s, kept, kraw, win):
    """Subsample raw tokens ``a..b-1`` and draw each kept position's window."""
    n = 0
    for p in range(a, b):
        w = ids[p]
        kw = keep[w]
        if kw < 1.0:
            s = s + _GOLDEN
            if (_mix(s) >> _S11) * _TWO_M53 >= kw:
                continue
        kept[n] = w
        kraw[n] = p
        n += 1
    Lu = np.uint64(window)
    for i in range(n):
        s = s + _GOLDEN
        win[i] = 1 + np.int64(((_mix(s) >> _S32) * Lu) >> _S32)
    return n, s


@njit(inline="always")
def _negative(s, prob, alias, Vu):
    """A word id from the alias tables, and the new state."""
    s = s + _GOLDEN
    r = _mix(s)
    col = np.int64(((r >> _S32) * Vu) >> _S32)
    if (r & _LOW32) * _TWO_M32 < prob[col]:
        return col, s
    return alias[col], s


@njit(inline="always")
def _draw_negatives(tg, K1, c, s, prob, alias, Vu):
    """``tg[1:K1]`` = k negatives (-1 where one equals the centre c: skipped); the
    new random state."""
    for j in range(1, K1):
        t, s = _negative(s, prob, alias, Vu)
        tg[j] = -1 if t == c else t
    return s


@njit(inline="always")
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(inline="always")
def _softplus(z):
    """``log(1 + e^z)``, without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit(inline="always")
def _dot(A, i, B, j, d):
    acc = A[i, 0] * B[j, 0]
    for q in range(1, d):
        acc += A[i, q] * B[j, q]
    return acc


@njit(inline="always")
def _window(W, C, ctx, m, c, tg, k, shared, lr, prob, alias, Vu, s, neu, gbuf, sample,
            acc):
    """One centre c, pair after pair: for each context o, the scores of o against c
    and the negatives from the current vectors (all k + 1 read before any is
    updated: independent dot products, which the CPU overlaps), then the output
    vectors updated target after target and the input vector once with its summed
    step.  ``shared``: the k negatives ``tg[1:]`` drawn for the centre (-1: equal
    to c, skipped); else k fresh negatives for every pair (-1 likewise).
    Sequential word2vec.c differs only where a target repeats within a pair (a
    negative drawn twice): there both scores are read before the first update."""
    d = W.shape[1]
    K1 = k + 1
    tg[0] = c
    for a in range(m):
        o = ctx[a]
        if not shared:
            s = _draw_negatives(tg, K1, c, s, prob, alias, Vu)
        for j in range(K1):
            t = tg[j]
            if t < 0:
                continue
            x = _dot(W, o, C, t, d)
            if j == 0:
                gbuf[j] = (1.0 - _sigmoid(x)) * lr
                if sample:
                    acc[0] += _softplus(-x)
            else:
                gbuf[j] = -_sigmoid(x) * lr
                if sample:
                    acc[0] += _softplus(x)
        for q in range(d):
            neu[q] = 0.0
        for j in range(K1):
            t = tg[j]
            if t < 0:
                continue
            g = gbuf[j]
            for q in range(d):      # one pass: C[t] read once for both updates
                ct = C[t, q]
                neu[q] += g * ct
                C[t, q] = ct + g * W[o, q]
        for q in range(d):
            W[o, q] += neu[q]
    return s


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def wave(ids, keep, prob, alias, W, C, shared, window, k, block_tokens, seed, epoch,
         blk_hi, state, rng, target, lr0, lr_floor, total_words, lr_base, lr_mult, acc,
         halt, neu, gbuf, tg, ctx):
    """One thread's part of a wave: train until its next centre lies at or beyond
    raw position ``target`` (or its last block ``blk_hi - 1`` is done, or
    ``halt[0]`` is set).

    ``state`` (int64): block, next centre in it (-1: not begun), raw position of the
    words read, centres trained; ``rng`` (uint64, 1): the random state inside a
    begun block; ``acc`` (float64): sampled loss, its pairs, all pairs, Σ lr·pairs.
    All four are updated in place.  ``neu`` (d,) and ``gbuf`` (k + 1,) in W's dtype,
    ``tg`` (k + 1,) and ``ctx`` (2·window,) int64, are scratch space, passed in
    rather than allocated here: LLVM then vectorises the row updates (bench/README,
    ``word2vec_speed.py``).  The learning rate at a centre of raw position p
    is ``lr0 · max(lr_floor, 1 - (lr_base + lr_mult · p)/total_words)``.
    """
    N = ids.shape[0]
    d = W.shape[1]
    R = block_tokens
    Vu = np.uint64(prob.shape[0])
    K1 = k + 1
    kept = np.empty(R, np.int64)
    kraw = np.empty(R, np.int64)
    win = np.empty(R, np.int64)
    blk = state[0]
    off = state[1]
    ncent = state[3]
    s = rng[0]
    while blk < blk_hi:
        a0 = blk * R
        b0 = min(a0 + R, N)
        n, s1 = _prepare(ids, a0, b0, keep, window, block_seed(seed, epoch, blk),
                         kept, kraw, win)
        if off < 0:
            off = 0
            s = s1
        for i in range(off, n):
            if kraw[i] >= target or halt[0] != 0:
                state[0] = blk
                state[1] = i
                state[2] = kraw[i]
                state[3] = ncent
                rng[0] = s
                return
            bw = win[i]
            lo = max(i - bw, 0)
            hi = min(i + bw, n - 1)
            m = 0
            for q in range(lo, hi + 1):
                if q != i:
                    ctx[m] = kept[q]
                    m += 1
            if m == 0:
                continue
            c = kept[i]
            lr = lr0 * max(lr_floor, 1.0 - (lr_base + lr_mult * kraw[i])
                           / total_words)
            sample = ncent % LOSS_EVERY == 0
            if shared:
                s = _draw_negatives(tg, K1, c, s, prob, alias, Vu)
            s = _window(W, C, ctx, m, c, tg, k, shared, lr, prob, alias, Vu, s, neu,
                        gbuf, sample, acc)
            if sample:
                acc[1] += m
            acc[2] += m
            acc[3] += lr * m
            ncent += 1
            if ncent % PROGRESS_EVERY == 0:
                state[2] = kraw[i]
        blk += 1
        off = -1
        state[2] = b0
    state[0] = blk
    state[1] = -1
    state[3] = ncent
    rng[0] = s
