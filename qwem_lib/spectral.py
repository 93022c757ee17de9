"""Top eigenpairs of symmetric targets; closed-form embeddings (arXiv 2502.09863, Thm. 1).

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


def _block_krylov(M, X: torch.Tensor, k: int, n_blocks: int,
                  tol: float, max_restarts: int, callback, bar,
                  residual_tol: float | None = None) -> EighResult:
    """Thick-restart block Krylov iteration from the start block X (V, b).

    The basis and its image under M live in two preallocated (V, n_blocks·b) buffers
    filled block by block (no concatenated copies), so the working memory is
    2·n_blocks·b·V numbers plus a few (V, b) blocks.  After a restart the basis is
    the b kept Ritz vectors plus blocks as wide as the unconverged part, as many as
    fit (at most n_blocks - 1 expansions).
    """
    V, b = X.shape
    width = n_blocks * b
    Qbuf = torch.empty(V, width, dtype=X.dtype, device=X.device)
    MQbuf = torch.empty_like(Qbuf)
    Q = _orthonormalize(X, None)
    Qbuf[:, :b] = Q
    MQbuf[:, :b] = M @ Q
    m = b                       # columns of the basis in use
    n_mv = b
    scale = 0.0
    done = 0
    prev = None
    for restart in range(max_restarts + 1):
        # Expand the Krylov basis from the newest block; every block's product with
        # M is kept, so Rayleigh-Ritz needs no extra products.
        last = MQbuf[:, m - b:m] if restart == 0 else MQbuf[:, m - nz:m]
        for _ in range(n_blocks - 1):
            if m + last.shape[1] > width:
                break
            Z = _orthonormalize(last, Qbuf[:, :m])
            w = Z.shape[1]
            Qbuf[:, m:m + w] = Z
            MQbuf[:, m:m + w] = M @ Z
            last = MQbuf[:, m:m + w]
            m += w
            n_mv += w
            del Z
        Qall, MQall = Qbuf[:, :m], MQbuf[:, :m]
        H = Qall.T @ MQall
        theta, S = torch.linalg.eigh(0.5 * (H + H.T))
        theta, S = theta.flip(0), S.flip(1)
        scale = max(scale, float(theta.abs().max()))
        Y, MY = Qall @ S[:, :b], MQall @ S[:, :b]
        R = MY - Y * theta[:b]
        res = torch.linalg.vector_norm(R, dim=0)
        ok = res[:k] <= tol * scale
        if prev is not None:
            ok |= (theta[:k] - prev).abs() <= tol * theta[:k].abs()
        if residual_tol is not None:     # and every residual small next to θ_1
            ok &= res[:k] <= residual_tol * theta[0].abs()
        prev = theta[:k].clone()
        done = int(ok.cumprod(0).sum())
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
        nz = Z.shape[1]
        Qbuf[:, :b] = Y
        MQbuf[:, :b] = MY
        del Y, MY, R
        Qbuf[:, b:b + nz] = Z
        MQbuf[:, b:b + nz] = M @ Z
        del Z
        m = b + nz
        n_mv += nz
    raise QwemError(
        f"the eigensolver did not converge in {max_restarts} restarts ({done} of {k} "
        f"pairs within tol={tol:g}); raise max_restarts or tol")


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
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise QwemError(f"M must be square, got shape {tuple(M.shape)}")
    V = M.shape[0]
    if not 1 <= k < V:
        raise QwemError(f"need 1 <= d < V for the top-d eigenpairs, got d={k}, V={V}; "
                        "choose a smaller --dim")
    dtype, device = M.dtype, M.device
    if tol is None:
        tol = max(1e-7, 50 * torch.finfo(dtype).eps)
    b = min(block_size or k + max(16, k // 6), V)
    if V <= max(3 * b, 600):      # small problems: dense is cheaper and exact
        if not isinstance(M, torch.Tensor):               # a matrix-free operator
            M = M.to_dense().to(device=device, dtype=dtype)
        w, U = torch.linalg.eigh(M)
        w, U = w.flip(0)[:k], U.flip(1)[:, :k]
        res = torch.linalg.vector_norm(M @ U - U * w, dim=0)
        return EighResult(w, U, res, V, 0)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    X = torch.randn(V, b, generator=gen, dtype=dtype).to(device)
    from .runtime.progress import bar as progress_bar

    bar = progress_bar(progress, total=k, desc="eigenpairs", unit="pair")
    try:
        n_mv = restarts = 0
        if work_dtype is not None and (torch.finfo(work_dtype).eps
                                       > torch.finfo(dtype).eps):
            Mw = M.to(work_dtype)
            tol_w = max(tol, 50 * torch.finfo(work_dtype).eps)
            rough = _block_krylov(Mw, X.to(work_dtype), k, n_blocks, tol_w,
                                  max_restarts, callback, bar)
            del Mw
            X = rough.eigvecs.to(dtype)
            n_mv, restarts = rough.n_matvecs, rough.n_restarts + 1
            if bar is not None:
                bar.set_postfix_str(f"refining in {str(dtype).removeprefix('torch.')}")
        res = _block_krylov(M, X, k, n_blocks, tol, max_restarts, callback, bar,
                            residual_tol)
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
