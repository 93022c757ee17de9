"""Compiled kernels of the sparse window counts (numba), for
:func:`qwem_lib.corpus.cooccurrence.count_pairs_sparse`.

Imported only when sparse counts are made, so that importing ``qwem_lib`` neither
imports numba nor compiles anything; compiled code is cached on disk
(``cache=True``).  Every row kernel works on a range of rows and releases the GIL, so
that threads owning disjoint row ranges run in parallel and each row is computed the
same way whatever the number of threads.

Token positions are sorted by centre word (:func:`sort_positions`, a stable counting
sort), then every row ``i`` is built with a sparse accumulator: for each position
``t`` of word ``i`` and each separation ``s``, ``w_s`` is added to the columns
``x_{t+s}`` and ``x_{t-s}`` (:func:`mark_row`).  This gives the full symmetric
``C = N + N^T`` directly (a pair of two equal words at separation ``s`` is seen from
both ends: ``2 w_s`` on the diagonal).  A first pass counts the entries of each row
(:func:`count_rows`), a second fills the preallocated CSR arrays (:func:`fill_rows`).

The columns touched in a row are marked with plain byte stores (no
read-modify-write, no branch): ``flag[j] = 1`` and ``block[j // 64] = 1``.  At the
end of the row the block markers are read eight at a time (as uint64 words), and the
64 column markers of each touched block are gathered into the bits of one word
(:func:`block_mask`), whose set bits are the block's columns in ascending order: no
per-row sort, time ``V / 512 + 8 * (touched blocks) + (entries)``.  The windows of
the positions a few steps ahead are prefetched (the positions of one word are
scattered over the corpus).  Work is ``O(T L + nnz + V^2 / 512)`` word operations
per pass (the last term: each row's scan of its block markers, small up to V of a
few 100,000s).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils
from numba.extending import intrinsic

#: Positions whose windows are prefetched ahead of the one being marked.
AHEAD = 10
#: Multiplying eight 0/1 bytes by this gathers them into the top byte, no carries.
BYTES_TO_BITS = np.uint64(0x0102040810204080)


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of the integer ``x``."""
    if not isinstance(x, numba.types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen


@intrinsic
def ctz(typingctx, x):
    """The number of trailing zero bits of the integer ``x != 0``."""
    if not isinstance(x, numba.types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return x(x), codegen


@intrinsic
def prefetch(typingctx, arr, idx):
    """A read hint for ``arr[idx]`` (LLVM's prefetch, high locality)."""
    if not (isinstance(arr, numba.types.Array)
            and isinstance(idx, numba.types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                       wraparound=False)
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return numba.types.void(arr, idx), codegen


@njit(cache=True, nogil=True, boundscheck=False)
def sort_positions(ids, starts, order):  # pragma: no cover - compiled
    """Stable counting sort of the positions by word: ``order[starts[i]:
    starts[i+1]]`` are the positions of word ``i``, ascending (``starts`` zero on
    entry)."""
    T = ids.shape[0]
    V = starts.shape[0] - 1
    for t in range(T):
        starts[ids[t] + 1] += 1
    for i in range(V):
        starts[i + 1] += starts[i]
    nxt = starts[:V].copy()
    for t in range(T):
        x = ids[t]
        order[nxt[x]] = t
        nxt[x] += 1


@njit(cache=True, nogil=True, boundscheck=False)
def block_mask(flag64, b):  # pragma: no cover - compiled
    """The 64 byte markers of block ``b`` as the bits of one word (bit k: column
    ``64 b + k``), cleared."""
    m = np.uint64(0)
    for k in range(8):
        f = flag64[(b << 3) + k]
        flag64[(b << 3) + k] = 0
        m |= ((f * BYTES_TO_BITS) >> np.uint64(56)) << np.uint64(8 * k)
    return m


@njit(cache=True, nogil=True, boundscheck=False)
def mark_row(ids, order, starts, seps, wts, i, flag, block,
             acc):  # pragma: no cover - compiled
    """Mark the columns of row ``i`` in ``flag`` and ``block``, and add their weights
    to ``acc`` unless it is None (then ``wts`` is unused, and may be None too).

    ``acc`` None or an array is told apart at compile time (numba prunes the branch
    for the argument's type): two specialisations, no test in the loops.
    """
    T = ids.shape[0]
    K = seps.shape[0]
    L = seps[K - 1]
    for p in range(starts[i], starts[i + 1]):
        if p + AHEAD < T:
            ta = order[p + AHEAD]
            for u in range(max(ta - L, 0), min(ta + L, T - 1) + 16, 16):
                prefetch(ids, min(u, T - 1))
        t = order[p]
        if L <= t < T - L:  # the whole window inside the corpus
            for k in range(K):
                j = ids[t + seps[k]]
                flag[j] = 1
                block[j >> 6] = 1
                if acc is not None:
                    acc[j] += wts[k]
                j = ids[t - seps[k]]
                flag[j] = 1
                block[j >> 6] = 1
                if acc is not None:
                    acc[j] += wts[k]
            continue
        for k in range(K):
            u = t + seps[k]
            if u >= T:
                break
            j = ids[u]
            flag[j] = 1
            block[j >> 6] = 1
            if acc is not None:
                acc[j] += wts[k]
        for k in range(K):
            u = t - seps[k]
            if u < 0:
                break
            j = ids[u]
            flag[j] = 1
            block[j >> 6] = 1
            if acc is not None:
                acc[j] += wts[k]


@njit(cache=True, nogil=True, boundscheck=False)
def count_rows(ids, order, starts, seps, r0, r1, flag, block, flag64, block64,
               nnz_row):  # pragma: no cover - compiled
    """``nnz_row[i]``: the number of distinct columns of every row ``r0 <= i < r1``;
    clears the markers (``flag64``, ``block64``: the same memory as ``flag``,
    ``block``)."""
    for i in range(r0, r1):
        if starts[i + 1] == starts[i]:
            continue
        mark_row(ids, order, starts, seps, None, i, flag, block, None)
        n = 0
        for bw in range(block64.shape[0]):
            s = block64[bw]
            if s == 0:
                continue
            block64[bw] = 0
            while s:
                b = (bw << 3) + (ctz(s) >> 3)  # a touched block
                n += popcount(block_mask(flag64, b))
                s &= s - np.uint64(1)
        nnz_row[i] = n


@njit(cache=True, nogil=True, boundscheck=False)
def fill_rows(ids, order, starts, seps, wts, r0, r1, flag, block, flag64, block64,
              acc, indptr, indices, data):  # pragma: no cover - compiled
    """Rows ``r0 <= i < r1`` into ``indices``/``data[indptr[i]:indptr[i+1]]``,
    columns ascending; ``acc`` (all zero between rows) sums the weights per
    column."""
    for i in range(r0, r1):
        if starts[i + 1] == starts[i]:
            continue
        mark_row(ids, order, starts, seps, wts, i, flag, block, acc)
        q = indptr[i]
        for bw in range(block64.shape[0]):
            s = block64[bw]
            if s == 0:
                continue
            block64[bw] = 0
            while s:
                b = (bw << 3) + (ctz(s) >> 3)
                m = block_mask(flag64, b)
                while m:
                    j = (b << 6) + ctz(m)
                    indices[q] = j
                    data[q] = acc[j]
                    acc[j] = 0.0
                    q += 1
                    m &= m - np.uint64(1)
                s &= s - np.uint64(1)


@njit(cache=True, nogil=True, boundscheck=False)
def symmetrize_values(indptr, indices, data):  # pragma: no cover - compiled
    """``data[(i, j)] = data[(j, i)] =`` their mean, for every ``i < j``.

    The pattern is symmetric, so the entries ``(j, i)`` of row ``j`` come up in
    ascending ``i``: a cursor per row finds each one.
    """
    V = indptr.shape[0] - 1
    cursor = indptr[:V].copy()
    for i in range(V):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j <= i:
                continue
            q = cursor[j]
            cursor[j] += 1
            m = (data[p] + data[q]) * 0.5
            data[p] = m
            data[q] = m
