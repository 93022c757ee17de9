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
