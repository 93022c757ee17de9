"""Targets from corpus statistics: P_ij, P_i, M*, PMI, PPMI (arXiv 2502.09863, Thm. 1).

All functions work on ``(V, V)`` torch tensors in float64 and process rows in blocks,
so the only large allocation is the output (which may be the input itself, with
``out=``): at V = 10^4 a V x V float64 matrix is 800 MB and the pipeline keeps one.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .kernels.threads import run_rows
from .runtime.errors import QwemError
from .runtime.memory import require_dense
from .runtime.options import check_real

__all__ = ["pair_probs", "negative_probs", "m_star", "pmi", "ppmi", "SparseTarget",
           "sparse_target",
           "setting31_weights", "target", "artanh_pmi"]

_BLOCK = 64   # rows per block: temporaries stay in cache
# A new float64 V x V output and the row blocks: measured 9.6, 8.6 and 8.6 bytes per
# entry (peak RSS of m_star(P, u) at V = 3,000, 6,000 and 8,000 on the bundled
# sample), i.e. 8.5 per entry and about 10 MB.
_NEW_BYTES = 8.5
_K = "negatives (k, --negatives)"
_ALPHA = "neg_power (--neg-power)"


def _check_square(name: str, A: torch.Tensor) -> None:
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise QwemError(f"{name} must be a square (V, V) matrix, got {tuple(A.shape)}")


def _check_probs(name: str, A: torch.Tensor) -> None:
    """Refuse a probability matrix with a negative, NaN or infinite entry (one pass:
    NaN fails ``min >= 0``, inf fails ``max < inf``), in one line."""
    if A.numel() == 0:
        return
    lo, hi = torch.aminmax(A)
    if not (float(lo) >= 0.0 and math.isfinite(float(hi))):
        raise QwemError(f"{name} must hold finite, non-negative probabilities; its "
                        f"entries range from {float(lo):g} to {float(hi):g} (NaN, inf "
                        "or a negative entry): check how it was made")


def pair_probs(counts: torch.Tensor, *, out: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise symmetric counts into P_ij and the unigram P_i.

    Parameters
    ----------
    counts : (V, V) tensor
        Symmetric weighted co-occurrence counts (see ``cooccurrence.count_pairs``).
    out : (V, V) tensor, optional
        Where to write P_ij (``out=counts`` normalises in place).

    Returns
    -------
    P_ij : (V, V) float64, sums to 1
    unigram : (V,) float64
        ``P_i = sum_j P_ij``: the window-weighted unigram distribution, so that
        ``sum_ij (P_ij - P_i P_j) = 0`` exactly.
    """
    _check_square("counts", counts)
    total = counts.sum(dtype=torch.float64)
    if not torch.isfinite(total) or total <= 0:
        raise QwemError("the co-occurrence counts are empty: the corpus has no pair of "
                        "in-vocabulary words within the window; use a larger corpus "
                        "or a smaller vocabulary")
    if out is None:
        out = torch.empty_like(counts, dtype=torch.float64)
    out = torch.div(counts, total, out=out) if out is not counts else counts.div_(total)
    unigram = out.sum(dim=1)
    return out, unigram


def negative_probs(unigram: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Distribution of negative contexts: ``P_j^power`` renormalised (word2vec: 3/4)."""
    power = check_real(power, _ALPHA)
    if power == 1.0:
        return unigram
    q = unigram.pow(power)
    return q / q.sum()


def _blocks(V: int):
    for i0 in range(0, V, _BLOCK):
        yield i0, min(i0 + _BLOCK, V)


def _product(unigram: torch.Tensor, neg: torch.Tensor, i0: int, i1: int
             ) -> torch.Tensor:
    """Rows i0:i1 of the (symmetrised) negative-pair distribution Q_ij."""
    if neg is unigram:
        return unigram[i0:i1, None] * unigram[None, :]
    # i ~ P_i, j ~ P_j^alpha; symmetrised so that tied weights see a symmetric target.
    return 0.5 * (unigram[i0:i1, None] * neg[None, :] + neg[i0:i1, None] * unigram)


def m_star(P_ij: torch.Tensor, unigram: torch.Tensor, *, negatives: float = 1.0,
           neg_power: float = 1.0, psi_pos: torch.Tensor | None = None,
           psi_neg: torch.Tensor | None = None, out: torch.Tensor | None = None
           ) -> torch.Tensor:
    """The QWEM target M* (paper, Thm. 1).

    ``M*_ij = (Ψ⁺ P_ij - Ψ⁻ k Q_ij) / (½ (Ψ⁺ P_ij + Ψ⁻ k Q_ij))`` with ``Q_ij = P_i P_j``
    (or the symmetrised smoothed product when ``neg_power != 1``) and ``k`` negatives.
    Without ``psi_pos``/``psi_neg`` the reweighting is Setting 3.1's
    ``Ψ⁺ = Ψ⁻ = 1 / (P_ij + k Q_ij)``, under which the ratio does not depend on Ψ and
    ``M* ∈ [-2, 2]``; pairs that never co-occur get ``-2``.

    Parameters
    ----------
    P_ij : (V, V) float64
    unigram : (V,) float64
    negatives : float
        k, the weight of the negative term (word2vec's number of negatives).
    neg_power : float
        Smoothing exponent of the negative distribution (1: the paper's; 0.75: word2vec).
    psi_pos, psi_neg : (V, V) tensors, optional
        General reweightings Ψ⁺, Ψ⁻ ≥ 0.  Entries where ``G = Ψ⁺P + Ψ⁻kQ`` is 0 get 0.
    out : (V, V) tensor, optional
        Output buffer; may be ``P_ij`` itself (computed row block by row block).

    Returns
    -------
    M_star : (V, V) float64, symmetric
    """
    _check_square("P_ij", P_ij)
    _check_probs("P_ij", P_ij)
    negatives = check_real(negatives, _K, gt=0)
    V = P_ij.shape[0]
    neg = negative_probs(unigram, neg_power)
    if out is None:
        require_dense(V, _NEW_BYTES, P_ij.device,
                      what="the target M* (a new V x V matrix)", overhead=20e6)
        out = torch.empty_like(P_ij, dtype=torch.float64)
    general = psi_pos is not None or psi_neg is not None
    for i0, i1 in _blocks(V):
        negq = _product(unigram, neg, i0, i1)
        if negatives != 1.0:
            negq.mul_(negatives)
        if general:
            pp = P_ij[i0:i1] * (psi_pos[i0:i1] if psi_pos is not None else 1.0)
            if psi_neg is not None:
                negq.mul_(psi_neg[i0:i1])
            g = pp + negq
            out[i0:i1] = torch.where(g > 0, 2.0 * (pp - negq) / g,
                                     torch.zeros((), dtype=g.dtype, device=g.device))
            continue
        # Setting 3.1: M* = 2 (p - q) / (p + q) = 2 - 4 q / (p + q), in place and
        # fused (a few passes over cache-sized blocks instead of many temporaries).
        blk = out[i0:i1]
        if blk.data_ptr() != P_ij[i0:i1].data_ptr():
            blk.copy_(P_ij[i0:i1])
        blk.add_(negq)
        negq.div_(blk)
        torch.mul(negq, -4.0, out=blk).add_(2.0)
    if not general:
        # Words with no co-occurrences at all give 0/0: there M* is undefined (G = 0)
        # and, as in the general case, set to 0.
        dead = unigram == 0
        if bool(dead.any()):
            out[dead] = 0.0
            out[:, dead] = 0.0
    return out


def setting31_weights(P_ij: torch.Tensor, unigram: torch.Tensor,
                      negatives: float = 1.0) -> torch.Tensor:
    """Setting 3.1's reweighting ``Ψ = 1 / (P_ij + k P_i P_j)`` (so that G = 1).

    Returns
    -------
    psi : (V, V) float64
    """
    _check_square("P_ij", P_ij)
    negatives = check_real(negatives, _K, gt=0)
    return 1.0 / (P_ij + negatives * unigram[:, None] * unigram[None, :])


def pmi(P_ij: torch.Tensor, unigram: torch.Tensor, *, negatives: float = 1.0,
        neg_power: float = 1.0, positive: bool = False,
        out: torch.Tensor | None = None) -> torch.Tensor:
    """(Shifted) PMI, ``log(P_ij / (k Q_ij))``, with unobserved pairs set to 0.

    ``log 0`` is undefined; following the usual convention for svd(PMI) (Levy and
    Goldberg's PMI_0) pairs that never co-occur get 0.  With ``positive=True`` this
    is PPMI, ``max(PMI, 0)``.

    Returns
    -------
    (V, V) float64
    """
    _check_square("P_ij", P_ij)
    negatives = check_real(negatives, _K, gt=0)
    V = P_ij.shape[0]
    neg = negative_probs(unigram, neg_power)
    if out is None:
        require_dense(V, _NEW_BYTES, P_ij.device,
                      what="the target (a new V x V matrix)", overhead=20e6)
        out = torch.empty_like(P_ij, dtype=torch.float64)
    for i0, i1 in _blocks(V):
        q = _product(unigram, neg, i0, i1)
        if negatives != 1.0:
            q.mul_(negatives)
        blk = out[i0:i1]
        if blk.data_ptr() != P_ij[i0:i1].data_ptr():
            blk.copy_(P_ij[i0:i1])
        blk.div_(q).log_()            # log 0 = -inf where the pair never occurs
        if positive:
            blk.clamp_min_(0.0)
        else:
            blk.masked_fill_(torch.isneginf(blk), 0.0)
    dead = unigram == 0                # 0/0: a word with no co-occurrences at all
    if bool(dead.any()):
        out[dead] = 0.0
        out[:, dead] = 0.0
    return out


def ppmi(P_ij: torch.Tensor, unigram: torch.Tensor, **kw) -> torch.Tensor:
    """Positive PMI, ``max(log(P_ij / (k P_i P_j)), 0)``; see :func:`pmi`."""
    return pmi(P_ij, unigram, positive=True, **kw)


def target(method: str, P_ij: torch.Tensor, unigram: torch.Tensor, *,
           out: torch.Tensor | None = None, **kw) -> torch.Tensor:
    """Dispatch by name: ``"mstar"``, ``"ppmi"`` or ``"pmi"``."""
    if method == "mstar":
        return m_star(P_ij, unigram, out=out, **kw)
    if method == "ppmi":
        return pmi(P_ij, unigram, positive=True, out=out, **kw)
    if method == "pmi":
        return pmi(P_ij, unigram, out=out, **kw)
    raise QwemError(f"unknown method {method!r}; use mstar, ppmi or pmi")


def artanh_pmi(m: torch.Tensor) -> torch.Tensor:
    """PMI as a function of M* under Setting 3.1: ``2 artanh(M*/2)`` (paper, Thm. 1)."""
    return 2.0 * torch.atanh(m / 2.0)


# --------------------------------------------------------------- sparse targets (large V)


class SparseTarget:
    """A target that is sparse plus rank one: ``M = S + shift · a aᵀ``, matrix-free.

    Wherever a pair never co-occurs, M*_ij = -2 exactly (Thm. 1 with P_ij = 0), so
    ``M* = S - 2·a aᵀ`` with ``S = M* + 2`` non-zero only on observed pairs and ``a``
    the indicator of words that occur at all (rows of words that never co-occur are
    0, as in :func:`m_star`).  PMI and PPMI are 0 on unobserved pairs: ``shift = 0``.
    With pair weights ``g_i g_j`` (``weight_power``) the operator is ``ΓMΓ``: ``S``
    scaled on both sides and ``a`` by ``Γ``.  A product ``M X`` costs O(nnz · b + V · b)
    for a block of b columns instead of O(V² · b).

    It offers what :func:`qwem_lib.spectral.top_eigh` needs of a matrix: ``shape``,
    ``dtype``, ``device``, ``ndim``, ``@`` with a (V, b) tensor, ``to(dtype)`` and
    ``to_dense()`` (small V only).  On the CPU the product is a compiled kernel over
    row ranges on ``n_threads`` threads (each row is computed by one thread, so the
    result does not depend on their number); on CUDA a torch sparse CSR product.

    Attributes
    ----------
    indptr, indices : (V + 1,), (nnz,) int arrays
        CSR structure of S (symmetric, both triangles stored).
    data : (nnz,) float array
        S's values, float64 (float32 in a working copy from ``to(torch.float32)``).
    a : (V,) float64 ndarray
    shift : float
    stats : dict
        ``columns`` multiplied and ``seconds`` spent in products so far (shared by
        the copies from ``to``): the cost the sparse form changes.
    """

    ndim = 2

    def __init__(self, indptr, indices, data, a, shift: float, *, device=None,
                 n_threads: int | None = None, stats: dict | None = None,
                 engine: str | None = None):
        self.indptr = np.asarray(indptr)
        self.indices = np.asarray(indices)
        self.data = np.asarray(data)
        self.a = np.asarray(a, dtype=np.float64)
        self.shift = float(shift)
        V = len(self.indptr) - 1
        self.shape = (V, V)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.n_threads = n_threads or max(1, torch.get_num_threads())
        # "kernel": the compiled CPU product; "torch": torch's sparse CSR product (the
        # one for CUDA; on a CPU only to test it against the kernel)
        self.engine = engine or ("kernel" if self.device.type == "cpu" else "torch")
        if self.engine not in ("kernel", "torch") or (
                self.engine == "kernel" and self.device.type != "cpu"):
            raise QwemError(f"SparseTarget engine must be 'torch' or, on a CPU, "
                            f"'kernel'; got {self.engine!r} on {self.device}")
        self._torch = None          # the torch CSR form, built on first use
        # Products so far (shared with the copies from to()): columns, seconds.
        self.stats = {"columns": 0, "seconds": 0.0} if stats is None else stats

    # -- what top_eigh uses ---------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.data.dtype == np.float32 else torch.float64

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def to(self, dtype: torch.dtype) -> "SparseTarget":
        """The same operator with S's values in ``dtype`` (float32 or float64)."""
        np_dtype = {torch.float32: np.float32, torch.float64: np.float64}[dtype]
        if self.data.dtype == np_dtype:
            return self
        return SparseTarget(self.indptr, self.indices, self.data.astype(np_dtype),
                            self.a, self.shift, device=self.device,
                            n_threads=self.n_threads, stats=self.stats,
                            engine=self.engine)

    def __matmul__(self, X: torch.Tensor) -> torch.Tensor:
        vec = X.ndim == 1
        X2 = X[:, None] if vec else X
        if X2.shape[0] != self.shape[0]:
            raise QwemError(f"SparseTarget @ X: X has {X2.shape[0]} rows, the "
                            f"operator {self.shape[0]}")
        t0 = time.perf_counter()
        if self.engine == "kernel":
            from .kernels._sparse import spmm_rows

            Xn = np.ascontiguousarray(X2.detach().cpu().numpy(), dtype=self.data.dtype)
            Yn = np.empty_like(Xn)
            run_rows(spmm_rows, self.indptr, self.n_threads, self.indptr,
                      self.indices, self.data, Xn, Yn)
            Y = torch.from_numpy(Yn)
        else:
            Y = self._csr() @ X2.to(self.device, self.dtype)
        if self.shift:
            a = torch.from_numpy(self.a).to(Y.device, Y.dtype)
            Y.add_(a[:, None] * (self.shift * (a @ X2.to(Y.dtype)))[None, :])
        if Y.device.type == "cuda":
            torch.cuda.synchronize(Y.device)
        self.stats["columns"] += X2.shape[1]
        self.stats["seconds"] += time.perf_counter() - t0
        return Y[:, 0] if vec else Y

    def _csr(self) -> torch.Tensor:
        if self._torch is None:
            import warnings

            idx = torch.int32 if self.nnz < 2**31 else torch.int64
            with warnings.catch_warnings():   # "support is in beta": nothing to act on
                warnings.filterwarnings("ignore", "Sparse CSR tensor support")
                # our CSR is valid by construction: no invariant checks
                self._torch = torch.sparse_csr_tensor(
                    torch.from_numpy(self.indptr).to(self.device, idx),
                    torch.from_numpy(self.indices).to(self.device, idx),
                    torch.from_numpy(self.data).to(self.device), size=self.shape,
                    check_invariants=False)
        return self._torch

    # -- inspection -----------------------------------------------------------------
    def row(self, i: int) -> np.ndarray:
        """Row ``i`` of M as a dense float64 vector (V,)."""
        out = self.shift * self.a[i] * self.a
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        out[self.indices[lo:hi]] += self.data[lo:hi]
        return out

    def to_dense(self) -> torch.Tensor:
        """M as a dense (V, V) float64 tensor (small V: tests and the dense fallback)."""
        from .runtime.memory import require_dense

        require_dense(self.shape[0], 8.0, torch.device("cpu"),
                      what="a dense copy of the sparse target")
        V = self.shape[0]
        M = np.outer(self.a, self.a) * self.shift
        rows = np.repeat(np.arange(V), np.diff(self.indptr))
        np.add.at(M, (rows, self.indices), self.data.astype(np.float64))
        return torch.from_numpy(M)

    def __repr__(self) -> str:
        return (f"SparseTarget(V={self.shape[0]:,}, nnz={self.nnz:,} "
                f"({self.nnz / max(self.shape[0], 1) ** 2:.2%}), shift={self.shift:g}, "
                f"{str(self.dtype).removeprefix('torch.')}, {self.device})")


def sparse_target(method: str, counts, *, negatives: float = 1.0,
                  neg_power: float = 1.0, scale: np.ndarray | None = None,
                  device=None, n_threads: int | None = None
                  ) -> tuple[SparseTarget, np.ndarray]:
    """M*, PMI or PPMI of sparse counts as a :class:`SparseTarget` (Thm. 1).

    The same entries as :func:`m_star` / :func:`pmi` of the dense counts (to
    rounding), without a V x V matrix: the counts' values are turned into S's in
    place.

    Parameters
    ----------
    method : {"mstar", "pmi", "ppmi"}
    counts : scipy.sparse.csr_matrix (V, V), float64, symmetric
        From :func:`qwem_lib.corpus.cooccurrence.count_pairs_sparse`; its ``data`` is
        overwritten.
    negatives, neg_power : float
        k and the smoothing exponent of the negative distribution.
    scale : (V,) array, optional
        ``Γ``'s diagonal (``pipeline.row_scale``): the operator is then ``ΓMΓ``.
    device : torch device, optional
        Where products run (CPU default).

    Returns
    -------
    target : SparseTarget
    unigram : (V,) float64 ndarray
        ``P_i = Σ_j P_ij``.
    """
    from .kernels._sparse import MSTAR, PMI, PPMI, scale_values, target_values

    codes = {"mstar": MSTAR, "pmi": PMI, "ppmi": PPMI}
    if method not in codes:
        raise QwemError(f"unknown method {method!r}; use mstar, ppmi or pmi")
    negatives = check_real(negatives, _K, gt=0)
    neg_power = check_real(neg_power, _ALPHA)
    V = counts.shape[0]
    indptr, indices, data = counts.indptr, counts.indices, counts.data
    total = float(data.sum(dtype=np.float64))
    if not math.isfinite(total) or total <= 0:
        raise QwemError("the co-occurrence counts are empty: the corpus has no pair of "
                        "in-vocabulary words within the window; use a larger corpus "
                        "or a smaller vocabulary")
    unigram = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel() / total
    neg = negative_probs(torch.from_numpy(unigram), neg_power).numpy()
    n_threads = n_threads or max(1, torch.get_num_threads())
    run_rows(target_values, indptr, n_threads, indptr, indices, data, total, unigram,
              np.ascontiguousarray(neg), neg_power != 1.0, negatives, codes[method])
    if method == "ppmi":
        counts.eliminate_zeros()
        indptr, indices, data = counts.indptr, counts.indices, counts.data
    a = (unigram > 0).astype(np.float64)
    if scale is not None:
        g = np.ascontiguousarray(scale, dtype=np.float64)
        run_rows(scale_values, indptr, n_threads, indptr, indices, data, g)
        a = a * g
    shift = -2.0 if method == "mstar" else 0.0
    return SparseTarget(indptr, indices, data, a, shift, device=device,
                        n_threads=n_threads), unigram
