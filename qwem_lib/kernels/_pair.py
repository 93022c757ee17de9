"""Compiled kernels of the expected (matrix-form) loss: one pass over a block of pairs.

:func:`qwem_lib.losses.expected_loss` and :func:`~qwem_lib.losses.expected_grad` sum,
over every pair (i, j) of a row block, ``a_ij l+(x_ij) + b_ij l-(x_ij)`` or form
``D_ij = a_ij l+'(x_ij) + b_ij l-'(x_ij)``.  In torch that is five to eight passes
over the block with as many temporaries; here it is one, in each thread's own rows.
Imported only when a CPU block is evaluated (importing ``qwem_lib`` neither imports
numba nor compiles anything); compiled code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .threads import run_ranges

QWEM, SGNS = 0, 1
LOSS_CODES = {"qwem": QWEM, "sgns": SGNS}


@njit(cache=True, nogil=True)
def _sigmoids(v):  # pragma: no cover - compiled
    """(σ(v), σ(-v)), each to full relative precision (no 1 - σ cancellation)."""
    e = math.exp(-abs(v))
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    return (big, small) if v >= 0.0 else (small, big)


@njit(cache=True, nogil=True)
def grad_rows(x, a, b, loss, r0, r1):  # pragma: no cover - compiled
    """``x[i, j] <- a_ij l+'(x_ij) + b_ij l-'(x_ij)`` for rows r0:r1, in place.

    QWEM: ``l+' = x/2 - 1``, ``l-' = x/2 + 1``; SGNS: ``l+' = -σ(-x)``, ``l-' = σ(x)``.
    """
    n = x.shape[1]
    for i in range(r0, r1):
        for j in range(n):
            v = x[i, j]
            if loss == QWEM:
                x[i, j] = a[i, j] * (0.5 * v - 1.0) + b[i, j] * (0.5 * v + 1.0)
            else:
                sp, sm = _sigmoids(v)
                x[i, j] = b[i, j] * sp - a[i, j] * sm


@njit(inline="always")
def _pair_loss(a, b, v, loss):  # pragma: no cover - compiled
    """``a l+(v) + b l-(v)``.  QWEM: ``l± = v²/4 ∓ v``; SGNS: ``l+ = softplus(-v)``,
    ``l- = softplus(v)``, with ``softplus(z) = max(z, 0) + log1p(e^{-|z|})`` (exact
    for every z)."""
    if loss == QWEM:
        q = 0.25 * v * v
        return a * (q - v) + b * (q + v)
    tail = math.log1p(math.exp(-abs(v)))
    return a * (max(-v, 0.0) + tail) + b * (max(v, 0.0) + tail)


@njit(cache=True, nogil=True)
def loss_rows(x, a, b, loss, out, r0, r1):  # pragma: no cover - compiled
    """``out[i] = Σ_j a_ij l+(x_ij) + b_ij l-(x_ij)`` for rows r0:r1
    (:func:`_pair_loss`)."""
    n = x.shape[1]
    for i in range(r0, r1):
        s = 0.0
        for j in range(n):
            s += _pair_loss(a[i, j], b[i, j], x[i, j], loss)
        out[i] = s


@njit(cache=True, nogil=True)
def loss_rows_unit_g(x, P, u, n, k, row0, loss, out, r0, r1):  # pragma: no cover
    """:func:`loss_rows` with Setting 3.1's weights formed in the same pass: for word
    ``i = row0 + r``, ``a_ij = P_ij / G_ij`` and ``b_ij = k Q_ij / G_ij`` with ``Q_ij =
    ½(u_i n_j + n_i u_j)`` and ``G = P + kQ`` (1 where G is not positive), as
    :meth:`qwem_lib.losses.Reweighting.weight_rows` forms them; ``P`` holds the
    block's rows of P_ij."""
    m = x.shape[1]
    for r in range(r0, r1):
        ui, ni = u[row0 + r], n[row0 + r]
        s = 0.0
        for j in range(m):
            p = P[r, j]
            q = k * (0.5 * (ui * n[j] + ni * u[j]))
            g = p + q
            if g > 0.0:
                s += _pair_loss(p / g, q / g, x[r, j], loss)
            else:
                s += _pair_loss(p, q, x[r, j], loss)
        out[r] = s


def _split(n_rows: int, n_threads: int) -> list[tuple[int, int]]:
    cuts = np.linspace(0, n_rows, max(1, min(n_threads, n_rows)) + 1).astype(int)
    return list(zip(cuts[:-1], cuts[1:]))


def block_grad(x: np.ndarray, a: np.ndarray, b: np.ndarray, loss: str,
               n_threads: int) -> None:
    """Overwrite the block ``x`` with ``a l+'(x) + b l-'(x)`` (:func:`grad_rows`)."""
    code = LOSS_CODES[loss]
    run_ranges(lambda r0, r1: grad_rows(x, a, b, code, r0, r1),
               _split(x.shape[0], n_threads))


def block_loss(x: np.ndarray, a: np.ndarray, b: np.ndarray, loss: str,
               n_threads: int) -> float:
    """``Σ a l+(x) + b l-(x)`` over the block (:func:`loss_rows`; rows summed last,
    pairwise, so the rounding error stays that of a row)."""
    code = LOSS_CODES[loss]
    out = np.empty(x.shape[0], dtype=np.float64)
    run_ranges(lambda r0, r1: loss_rows(x, a, b, code, out, r0, r1),
               _split(x.shape[0], n_threads))
    return float(out.sum())


def block_loss_unit_g(x: np.ndarray, P_rows: np.ndarray, u: np.ndarray, n: np.ndarray,
                      k: float, row0: int, loss: str, n_threads: int) -> float:
    """:func:`block_loss` under Setting 3.1, its weights formed in the pass
    (:func:`loss_rows_unit_g`) instead of read from two blocks of weights."""
    code = LOSS_CODES[loss]
    out = np.empty(x.shape[0], dtype=np.float64)
    run_ranges(lambda r0, r1: loss_rows_unit_g(x, P_rows, u, n, k, row0, code, out,
                                               r0, r1),
               _split(x.shape[0], n_threads))
    return float(out.sum())
