"""Top eigenpairs of symmetric targets; closed-form embeddings (arXiv 2502.09863).

Theorem 1: under Setting 3.1 the QWEM loss is ``(g/4)||W W^T - M*||_F^2 + const``, so
its global minimisers are ``W = V*_{:, :d} Λ_{:d}^{1/2} U`` (Eckart–Young).  We need the
top-d eigenpairs by *algebraic* value of a dense symmetric V x V matrix, without a full
dense eigendecomposition (O(V^3); about 70 s at V = 10^4 on two cores).

:func:`top_eigh` is a block Krylov method with full reorthogonalisation, Rayleigh–Ritz
extraction and thick restarts.  Every product with ``M`` is a matrix-matrix product
(BLAS-3), which is what makes it fast on CPUs and GPUs alike.  Krylov methods are
insensitive to the large negative eigenvalue of M* (chapter 3): the Rayleigh–Ritz step
captures it like any other extreme eigenvalue and we keep the top by algebraic value,
so no shift is needed.  Convergence is declared from the true residuals
``||M y - θ y||``, which bound the eigenvalue error (|θ - λ| <= ||r||).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .runtime._repr import short_repr
from .runtime.errors import QwemError

__all__ = ["EighResult", "top_eigh", "eigenbasis", "embeddings_from_eig",
           "closed_form_embeddings"]

_EIGENBASIS_VERSION = "lapack-evd-2"  # part of the eigenbasis cache key
_CACHE_MIN_V = 512  # eigenbasis(cache=None) stores a decomposition from this V on


@dataclass(frozen=True)
class EighResult:
    """Top-k eigenpairs, eigenvalues in descending order.

    Attributes
    ----------
    eigvals : (k,) float64 tensor
    eigvecs : (V, k) float64 tensor, orthonormal columns
    residuals : (k,) float64 tensor
        ``||M v - λ v||`` for each returned pair.
    n_matvecs : int
        Number of columns multiplied by M (the cost measure).
    n_restarts : int
    """

    __repr__ = short_repr

    eigvals: torch.Tensor
    eigvecs: torch.Tensor
    residuals: torch.Tensor
    n_matvecs: int
    n_restarts: int


def _cholesky_qr(Z: torch.Tensor, owned: bool = False) -> torch.Tensor | None:
    """Orthonormal basis of Z's columns by Cholesky QR (BLAS-3 only), or None.

    ``Z^T Z = L L^T`` and ``Z L^{-T}``: an order of magnitude faster than Householder
    QR for tall blocks on CPUs.  Columns are scaled to unit norm first (in place when
    the caller ``owned`` Z); None when the Gram matrix is not numerically positive
    definite (nearly dependent columns).
    """
    norms = torch.linalg.vector_norm(Z, dim=0)
    if not bool((norms > 0).all()):
        return None
    Z = Z.div_(norms) if owned else Z / norms
    L, info = torch.linalg.cholesky_ex(Z.T @ Z)
    if int(info) != 0:
        return None
    # Z L^{-T}, solved from the right: no transposed copies of the (V, b) block
    return torch.linalg.solve_triangular(L.T, Z, upper=True, left=False)


def _orthonormalize(Z: torch.Tensor, Q: torch.Tensor | None) -> torch.Tensor:
    """Columns of Z made orthonormal and orthogonal to Q (block Gram-Schmidt, twice).

    Each pass projects out span(Q) and orthonormalises by Cholesky QR; two passes
    ("twice is enough") restore the orthogonality one pass loses when Z is nearly
    inside span(Q) or badly conditioned.  Householder QR is the fallback.
    """
    owned = False
    for _ in range(2):
        if Q is not None and Q.shape[1]:
            Z = torch.addmm(Z, Q, Q.T @ Z, alpha=-1)   # one new block, no temporary
            owned = True
        Y = _cholesky_qr(Z, owned)
        Z = torch.linalg.qr(Z).Q if Y is None else Y
        owned = True
    return Z


def _append(M, Qbuf: torch.Tensor, MQbuf: torch.Tensor, m: int,
            Z: torch.Tensor) -> int:
    """Write the orthonormal block Z and its image ``M Z`` after the first m columns
    of the basis buffers; return Z's width."""
    w = Z.shape[1]
    Qbuf[:, m:m + w] = Z
    MQbuf[:, m:m + w] = M @ Z
    return w


def _start_basis(M, X: torch.Tensor, n_blocks: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The basis buffer and its image, (V, n_blocks·b) each, holding the
    orthonormalised start block X (V, b) and ``M`` times it in their first b
    columns."""
    V, b = X.shape
    Qbuf = torch.empty(V, n_blocks * b, dtype=X.dtype, device=X.device)
    MQbuf = torch.empty_like(Qbuf)
    _append(M, Qbuf, MQbuf, 0, _orthonormalize(X, None))
    return Qbuf, MQbuf


def _expand(M, Qbuf: torch.Tensor, MQbuf: torch.Tensor, m: int, new: int,
            n_blocks: int) -> int:
    """Grow the Krylov basis in use (its first m columns, the last ``new`` of them
    the newest block) by up to ``n_blocks - 1`` blocks, as many as fit; return the
    columns now in use.

    Each block is ``M`` times the newest one, made orthonormal to the basis; every
    block's product with ``M`` is kept, so Rayleigh-Ritz needs no extra products.
    """
    last = MQbuf[:, m - new:m]
    for _ in range(n_blocks - 1):
        if m + last.shape[1] > Qbuf.shape[1]:
            break
        w = _append(M, Qbuf, MQbuf, m, _orthonormalize(last, Qbuf[:, :m]))
        last = MQbuf[:, m:m + w]
        m += w
    return m


def _rayleigh_ritz(Q: torch.Tensor, MQ: torch.Tensor, b: int):
    """Ritz pairs of ``M`` in span(Q), from Q (V, m) and its image MQ (V, m).

    Returns
    -------
    theta : (m,) tensor, the Ritz values in descending order
    Y, MY : (V, b) tensors, the top-b Ritz vectors and their images
    R : (V, b) tensor, their residuals ``M y - θ y``
    res : (b,) tensor, the residual norms
    """
    H = Q.T @ MQ
    theta, S = torch.linalg.eigh(0.5 * (H + H.T))
    theta, S = theta.flip(0), S.flip(1)
    Y, MY = Q @ S[:, :b], MQ @ S[:, :b]
    R = MY - Y * theta[:b]
    return theta, Y, MY, R, torch.linalg.vector_norm(R, dim=0)


def _n_converged(theta: torch.Tensor, res: torch.Tensor, prev: torch.Tensor | None,
                 k: int, tol: float, scale: float,
                 residual_tol: float | None) -> int:
    """How many of the top-k Ritz pairs, counted from the top, have converged.

    A pair has when its residual is at most ``tol · scale`` (the largest |θ| seen)
    or its value moved by at most ``tol · |θ|`` since the previous restart
    (``prev``), and, with ``residual_tol``, its residual is at most
    ``residual_tol · |θ_1|``.
    """
    ok = res[:k] <= tol * scale
    if prev is not None:
        ok |= (theta[:k] - prev).abs() <= tol * theta[:k].abs()
    if residual_tol is not None:     # and every residual small next to θ_1
        ok &= res[:k] <= residual_tol * theta[0].abs()
    return int(ok.cumprod(0).sum())


def _block_krylov(M, X: torch.Tensor, k: int, n_blocks: int,
                  tol: float, max_restarts: int, callback, bar,
                  residual_tol: float | None = None,
                  refine: bool = False) -> EighResult:
    """Thick-restart block Krylov iteration from the start block X (V, b).

    The basis and its image under M live in two preallocated (V, n_blocks·b) buffers
    filled block by block (no concatenated copies), so the working memory is
    2·n_blocks·b·V numbers plus a few (V, b) blocks.  After a restart the basis is
    the b kept Ritz vectors plus blocks as wide as the unconverged part, as many as
    fit (at most n_blocks - 1 expansions).

    ``refine``: X holds approximate eigenvectors (a lower precision's Ritz vectors),
    so the first Rayleigh-Ritz step is taken in span(X) alone, before any expansion:
    the pairs already converged there cost no further products, and the blocks that
    follow are only as wide as the unconverged rest.
    """
    b = X.shape[1]
    Qbuf, MQbuf = _start_basis(M, X, n_blocks)
    m = new = n_mv = b   # columns in use, of them the newest block; products with M
    scale = 0.0
    done = 0
    prev = None
    for restart in range(max_restarts + 1):
        if restart or not refine:
            grown = _expand(M, Qbuf, MQbuf, m, new, n_blocks)
            n_mv += grown - m
            m = grown
        theta, Y, MY, R, res = _rayleigh_ritz(Qbuf[:, :m], MQbuf[:, :m], b)
        scale = max(scale, float(theta.abs().max()))
        done = _n_converged(theta, res, prev, k, tol, scale, residual_tol)
        prev = theta[:k].clone()
        if callback is not None:
            callback(restart, theta[:b], res, n_mv)
        if bar is not None and done > bar.n:  # never moves back (one bar, two passes)
            bar.n = done
            bar.refresh()
        if done == k:
            return EighResult(theta[:b], Y, res, n_mv, restart)
        # Thick restart: keep the top-b Ritz pairs (their images are known) and
        # continue from the residuals of the unconverged ones, which span the next
        # Krylov directions: span{Y, M Y} = span{Y, R}.
        Z = _orthonormalize(R[:, done:], Y)
        Qbuf[:, :b] = Y
        MQbuf[:, :b] = MY
        del Y, MY, R
        new = _append(M, Qbuf, MQbuf, b, Z)
        del Z
        m = b + new
        n_mv += new
    raise QwemError(
        f"the eigensolver did not converge in {max_restarts} restarts ({done} of {k} "
        f"pairs within tol={tol:g}); raise max_restarts or tol")


def _check_problem(M, k: int) -> int:
    """Refuse a non-square M or a k outside ``1 <= k < V``; return V."""
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise QwemError(f"M must be square, got shape {tuple(M.shape)}")
    V = M.shape[0]
    if not 1 <= k < V:
        raise QwemError(f"need 1 <= d < V for the top-d eigenpairs, got d={k}, V={V}; "
                        "choose a smaller --dim")
    return V


def _dense_top(M, k: int) -> EighResult:
    """Top-k eigenpairs by a full dense decomposition (small V: cheaper and exact);
    a matrix-free operator is made dense first."""
    V, dtype, device = M.shape[0], M.dtype, M.device
    if not isinstance(M, torch.Tensor):               # a matrix-free operator
        M = M.to_dense().to(device=device, dtype=dtype)
    w, U = torch.linalg.eigh(M)
    w, U = w.flip(0)[:k], U.flip(1)[:, :k]
    res = torch.linalg.vector_norm(M @ U - U * w, dim=0)
    return EighResult(w, U, res, V, 0)


def _start_block(V: int, b: int, dtype: torch.dtype, device,
                 seed: int) -> torch.Tensor:
    """The random (V, b) start block, drawn on the CPU from a private generator
    seeded with ``seed`` (the same block on every device)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(V, b, generator=gen, dtype=dtype).to(device)


def _rough_pass(M, X: torch.Tensor, k: int, work_dtype: torch.dtype | None,
                n_blocks: int, tol: float, max_restarts: int, callback, bar
                ) -> tuple[torch.Tensor, int, int]:
    """The iterations in ``work_dtype`` when it is less precise than M's dtype.

    Returns the start block of the final pass in M's dtype (the rough Ritz vectors,
    or X when there is no rough pass), the products with M and the restarts spent
    (counting the switch of precision as one).
    """
    dtype = M.dtype
    if work_dtype is None or not (torch.finfo(work_dtype).eps
                                  > torch.finfo(dtype).eps):
        return X, 0, 0
    Mw = M.to(work_dtype)
    tol_w = max(tol, 50 * torch.finfo(work_dtype).eps)
    rough = _block_krylov(Mw, X.to(work_dtype), k, n_blocks, tol_w,
                          max_restarts, callback, bar)
    del Mw
    if bar is not None:
        bar.set_postfix_str(f"refining in {str(dtype).removeprefix('torch.')}")
    return rough.eigvecs.to(dtype), rough.n_matvecs, rough.n_restarts + 1


def top_eigh(M: torch.Tensor, k: int, *, block_size: int | None = None,
             n_blocks: int = 4, tol: float | None = None, max_restarts: int = 60,
             residual_tol: float | None = None,
             work_dtype: torch.dtype | None = None, seed: int = 0,
             progress: bool = False, callback=None) -> EighResult:
    """Top-k eigenpairs (largest algebraic eigenvalues) of a symmetric matrix.

    Parameters
    ----------
    M : (V, V) tensor, symmetric, or a matrix-free operator
        Any device; results are in M's dtype on M's device (use float64 where
        spectra are compared with theory).  An operator such as
        :class:`qwem_lib.targets.SparseTarget` needs ``shape``, ``dtype``,
        ``device``, ``M @ X`` for (V, b) tensors X, ``to(dtype)`` and
        ``to_dense()`` (used only when V is small).
    k : int
        Number of eigenpairs, ``1 <= k < V``.
    block_size : int, optional
        Columns per Krylov block; default ``k + max(16, k // 6)``, capped at V.
    n_blocks : int
        Krylov depth between restarts.
    tol : float, optional
        Default ``max(1e-7, 50 * eps)`` of M's dtype.  A pair counts as converged
        when its Ritz value changed by at most ``tol * |θ|`` since the previous
        restart, or its residual satisfies ``||M v - θ v|| <= tol * |θ_max|``.
        Ritz values converge quadratically faster than vectors, and at the edge of
        a dense bulk (λ_200 of Wikipedia's M* sits in one) vectors converge slowly
        while values have long settled; the reported ``residuals`` bound the
        eigenvalue errors rigorously (``|θ - λ| <= ||r||``).
    max_restarts : int
    residual_tol : float, optional
        Also require of every returned pair, in the final pass, ``||M v - θ v|| <=
        residual_tol · |θ_1|`` (e.g. 5e-6: eigenvectors, not only eigenvalues,
        accurate where values settle first).
    work_dtype : torch dtype, optional
        A lower precision (e.g. ``torch.float32`` for a float64 M) for the bulk of
        the iterations, which then continue in M's dtype from the low-precision Ritz
        vectors until ``tol`` is met: about twice as fast, same final accuracy.
        Needs a copy of M (of a sparse operator's values) in ``work_dtype``.
    seed : int
        Seed of the random start block (a private generator; global RNG untouched).
    progress : bool
        Show a bar of converged pairs (on a terminal): one bar for both passes,
        which never moves back; the final pass in M's dtype shows as "refining".
    callback : callable, optional
        Called after each restart as ``callback(restart, theta, residuals, n_mv)``.

    Returns
    -------
    EighResult
    """
    V = _check_problem(M, k)
    dtype, device = M.dtype, M.device
    if tol is None:
        tol = max(1e-7, 50 * torch.finfo(dtype).eps)
    b = min(block_size or k + max(16, k // 6), V)
    if V <= max(3 * b, 600):      # small problems: dense is cheaper and exact
        return _dense_top(M, k)
    X = _start_block(V, b, dtype, device, seed)
    from .runtime.progress import bar as progress_bar

    bar = progress_bar(progress, total=k, desc="eigenpairs", unit="pair")
    try:
        X, n_mv, restarts = _rough_pass(M, X, k, work_dtype, n_blocks, tol,
                                        max_restarts, callback, bar)
        res = _block_krylov(M, X, k, n_blocks, tol, max_restarts, callback, bar,
                            residual_tol, refine=n_mv > 0)
    finally:
        if bar is not None:
            bar.close()
    return EighResult(res.eigvals[:k].clone(), res.eigvecs[:, :k].contiguous(),
                      res.residuals[:k].clone(), n_mv + res.n_matvecs,
                      restarts + res.n_restarts)


def embeddings_from_eig(eigvals: torch.Tensor, eigvecs: torch.Tensor) -> torch.Tensor:
    """``W = V_d Λ_d^{1/2}`` (paper, Thm. 1), columns in descending eigenvalue order.

    Negative eigenvalues cannot be factorised as ``W W^T``; their columns are set to 0
    (the loss minimiser learns nothing along them), with the count available from
    ``(eigvals < 0).sum()``.

    Returns
    -------
    W : (V, d) tensor
    """
    return eigvecs * eigvals.clamp_min(0).sqrt()


def closed_form_embeddings(M: torch.Tensor, d: int, **kw) -> tuple[torch.Tensor,
                                                                 EighResult]:
    """Top-d eigenpairs of ``M`` and the embeddings ``W = V_d Λ_d^{1/2}``."""
    eig = top_eigh(M, d, **kw)
    return embeddings_from_eig(eig.eigvals, eig.eigvecs), eig


def eigenbasis(M: torch.Tensor, *, cache: bool | None = None,
               progress: bool = False,
               timings: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every eigenpair of a symmetric matrix, in float64: ``M = U diag(λ) U^T``.

    The basis in which gradient descent on ``¼||W W^T - M||^2`` decouples
    (:func:`qwem_lib.train.train` trains there).  A dense O(V^3) decomposition (LAPACK
    through scipy on a CPU, torch on a GPU), so with ``cache`` (default: for
    V >= 512, where it takes longer than reading it back) it is stored under
    ``cache_dir()/"eigenbasis"``, keyed by a hash of M's float64 entries, and read
    back for the same M; an unreadable entry is recomputed.

    ``timings``, a dict, receives ``"eigenbasis"``: the seconds the decomposition
    took, here or, read from the cache, in the run that stored it (what this basis
    costs from M, wherever it was paid), and ``"eigenbasis cached"``: whether it was
    read back.

    Returns
    -------
    eigvals : (V,) float64 tensor, descending
    eigvecs : (V, V) float64 tensor, orthonormal columns in that order; on M's device
    """
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise QwemError(f"eigenbasis needs a square matrix, got {tuple(M.shape)}")
    M64 = M.to(torch.float64)
    key = None
    if cache or (cache is None and M.shape[0] >= _CACHE_MIN_V):
        import hashlib

        from .runtime import cache as cache_mod

        h = hashlib.sha256(np.ascontiguousarray(M64.cpu().numpy()).data)
        key = {"M": h.hexdigest(), "shape": list(M.shape),
               "version": _EIGENBASIS_VERSION}
        entry = cache_mod.load("eigenbasis", key, code=("qwem_lib.spectral",))
        if entry is not None:
            if timings is not None:
                timings["eigenbasis"] = float(entry["seconds"])
                timings["eigenbasis cached"] = True
            return (torch.from_numpy(entry["eigvals"]).to(M.device),
                    torch.from_numpy(entry["eigvecs"]).to(M.device))
    from .runtime.progress import note

    note(f"eigendecomposition of a {M.shape[0]} x {M.shape[0]} matrix ...", progress)
    t0 = time.perf_counter()
    if M64.device.type == "cpu":
        # scipy's LAPACK divide and conquer is faster here than torch's (bench/README)
        import scipy.linalg
        lam_np, U_np = scipy.linalg.eigh(M64.numpy(), driver="evd",
                                         check_finite=False)
        lam, U = torch.from_numpy(lam_np), torch.from_numpy(U_np)
    else:
        lam, U = torch.linalg.eigh(M64)
    lam, U = lam.flip(0), U.flip(1).contiguous()
    seconds = time.perf_counter() - t0
    if timings is not None:
        timings["eigenbasis"] = seconds
        timings["eigenbasis cached"] = False
    if key is not None:
        cache_mod.store("eigenbasis", key, {"eigvals": lam.cpu().numpy(),
                                            "eigvecs": U.cpu().numpy(),
                                            "seconds": np.float64(seconds)},
                        code=("qwem_lib.spectral",))
    return lam, U
