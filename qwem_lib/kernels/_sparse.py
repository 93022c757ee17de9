"""Compiled kernels of the sparse targets (numba): products and entry transforms.

Imported only when a sparse target is built, so that importing ``qwem_lib`` neither
imports numba nor compiles anything; compiled code is cached on disk (``cache=True``).
Every kernel works on a range of rows and releases the GIL, so that threads owning
disjoint row ranges run in parallel and each row is computed the same way whatever
the number of threads.
"""

from __future__ import annotations

import math

from numba import njit

# Fast-math without 'nnan'/'ninf' (NaN and inf propagate); 'reassoc' and 'contract'
# let the row updates vectorise.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

MSTAR, PMI, PPMI = 0, 1, 2


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def spmm_rows(indptr, indices, data, X, Y, r0, r1):  # pragma: no cover - compiled
    """``Y[r0:r1] = S[r0:r1] @ X`` for CSR ``S`` and row-major ``X`` (V, b)."""
    b = X.shape[1]
    for i in range(r0, r1):
        y = Y[i]
        for c in range(b):
            y[c] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            x = X[indices[p]]
            for c in range(b):
                y[c] += a * x[c]


@njit(cache=True, nogil=True)
def target_values(indptr, indices, data, total, unigram, neg, smoothed, k, method,
                  r0, r1):  # pragma: no cover - compiled
    """Counts of rows r0:r1 turned, in place, into the sparse part of a target.

    ``p = C_ij / total`` and ``q = k Q_ij`` (``Q_ij = P_i P_j``, or the symmetrised
    ``(P_i n_j + n_i P_j) / 2`` with ``n`` the smoothed negative distribution when it
    differs from ``P``).  ``MSTAR``: ``M*_ij + 2 = 4 p / (p + q)`` (M* = 2 (p - q) /
    (p + q), Thm. 1); ``PMI``: ``log(p / q)``; ``PPMI``: ``max(log(p / q), 0)``.
    """
    for i in range(r0, r1):
        ui = unigram[i]
        ni = neg[i]
        for pp in range(indptr[i], indptr[i + 1]):
            j = indices[pp]
            p = data[pp] / total
            if not smoothed:
                q = k * ui * unigram[j]
            else:
                q = k * 0.5 * (ui * neg[j] + ni * unigram[j])
            if method == MSTAR:
                data[pp] = 4.0 * p / (p + q)
            else:
                v = math.log(p / q)
                if method == PPMI and v < 0.0:
                    v = 0.0
                data[pp] = v


@njit(cache=True, nogil=True)
def scale_values(indptr, indices, data, g, r0, r1):  # pragma: no cover - compiled
    """``S_ij <- g_i S_ij g_j`` for rows r0:r1, in place."""
    for i in range(r0, r1):
        gi = g[i]
        for p in range(indptr[i], indptr[i + 1]):
            data[p] *= gi * g[indices[p]]


@njit(cache=True, nogil=True)
def union_sizes(ap, aj, bp, bj, sizes, r0, r1):  # pragma: no cover - compiled
    """``sizes[i]``: the number of distinct columns of row i in A or B (sorted
    rows), for rows r0:r1."""
    for i in range(r0, r1):
        p, pe = ap[i], ap[i + 1]
        q, qe = bp[i], bp[i + 1]
        n = 0
        while p < pe and q < qe:
            a, b = aj[p], bj[q]
            if a <= b:
                p += 1
            if b <= a:
                q += 1
            n += 1
        sizes[i] = n + (pe - p) + (qe - q)


@njit(cache=True, nogil=True)
def union_fill(ap, aj, ax, bp, bj, bx, cp, cj, cx, r0, r1):  # pragma: no cover
    """Rows r0:r1 of ``C = A + B`` (sorted rows merged) into the CSR arrays whose
    ``cp`` :func:`union_sizes` gave."""
    for i in range(r0, r1):
        p, pe = ap[i], ap[i + 1]
        q, qe = bp[i], bp[i + 1]
        r = cp[i]
        while p < pe and q < qe:
            a, b = aj[p], bj[q]
            if a < b:
                cj[r] = a
                cx[r] = ax[p]
                p += 1
            elif b < a:
                cj[r] = b
                cx[r] = bx[q]
                q += 1
            else:
                cj[r] = a
                cx[r] = ax[p] + bx[q]
                p += 1
                q += 1
            r += 1
        while p < pe:
            cj[r] = aj[p]
            cx[r] = ax[p]
            p += 1
            r += 1
        while q < qe:
            cj[r] = bj[q]
            cx[r] = bx[q]
            q += 1
            r += 1


@njit(cache=True, nogil=True)
def upper_sizes(cp, cj, first, r0, r1):  # pragma: no cover - compiled
    """``first[i]``: the position of row i's first column >= i (sorted rows)."""
    for i in range(r0, r1):
        lo, hi = cp[i], cp[i + 1]
        while lo < hi:
            mid = (lo + hi) // 2
            if cj[mid] < i:
                lo = mid + 1
            else:
                hi = mid
        first[i] = lo


@njit(cache=True, nogil=True)
def upper_fill(cp, cj, cx, first, up, uj, ux, r0, r1):  # pragma: no cover
    """Rows r0:r1 of the upper triangle (columns >= row) into ``up``'s arrays."""
    for i in range(r0, r1):
        r = up[i]
        for p in range(first[i], cp[i + 1]):
            uj[r] = cj[p]
            ux[r] = cx[p]
            r += 1


@njit(cache=True, nogil=True)
def mirror_sizes(up, uj, sizes):  # pragma: no cover - compiled
    """Row sizes of ``U + Uᵀ - diag(U)`` for an upper-triangular CSR ``U``."""
    V = len(up) - 1
    for i in range(V):
        sizes[i] += up[i + 1] - up[i]
        for p in range(up[i], up[i + 1]):
            j = uj[p]
            if j != i:
                sizes[j] += 1


@njit(cache=True, nogil=True)
def mirror_fill(up, uj, ux, cp, cj, cx, fill):  # pragma: no cover - compiled
    """``C = U + Uᵀ - diag(U)`` into ``C``'s arrays (``cp`` from mirror_sizes).

    Rows are visited in order, so the entries a row receives from the rows above
    it (columns < i) arrive sorted, before its own (columns >= i)."""
    V = len(up) - 1
    for i in range(V):
        fill[i] = cp[i]
    for i in range(V):
        r = fill[i] + 0
        for p in range(up[i], up[i + 1]):
            j = uj[p]
            cj[r] = j
            cx[r] = ux[p]
            r += 1
            if j != i:
                q = fill[j]
                cj[q] = i
                cx[q] = ux[p]
                fill[j] = q + 1
        fill[i] = r
