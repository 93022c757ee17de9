"""Task vectors as a spiked random matrix (arXiv 2502.09863, Sec. 4).

For an analogy category with N unique pairs ``(a_n, b_n)`` the task vectors
``r_n = w_{b_n} - w_{a_n}`` are the rows of ``R ∈ R^{N x D}``; ``R_d`` keeps the first
d columns (for the closed-form embeddings, the first d eigen-features, so that
sweeping d stands in for sweeping training time, by the paper's flow).  The paper models
``R_d`` as a shared signal plus noise, ``R_d = 1 μ^T + X``: the spectrum of the Gram
matrix ``(1/d) R_d R_d^T`` is then a Marchenko-Pastur bulk plus one outlier that
carries the mean task vector μ.

Seen from its d columns, ``R_d`` is d samples in ``R^N`` whose covariance is
``σ²(I + ℓ e e^T)`` with ``e = 1/√N``: a multiplicative spike of strength ℓ, the
model of Baik, Ben Arous and Péché (BBP).  With ``γ = N/d_eff``:

* the bulk follows the Marchenko-Pastur law of :func:`mp_pdf` on
  ``[σ²(1-√γ)², σ²(1+√γ)²]`` (with an atom ``1 - 1/γ`` at 0 when γ > 1);
* the spike separates from the bulk if and only if ``ℓ > √γ`` (the BBP threshold),
  and then sits at ``σ²(1 + ℓ)(1 + γ/ℓ)`` (:func:`spike_location`), above the edge
  ``σ²(1+√γ)²``; inverting this map (:func:`spike_strength`) reads ℓ off an outlier.

The paper fits ``d_eff`` by hand with per-figure factors; :func:`fit_mp` fits
``(σ², γ)`` to the bulk by minimum Kolmogorov-Smirnov distance, and decides which
eigenvalues are outliers itself: those above the fitted edge plus a Tracy-Widom
margin (Johnstone 2001), i.e. whose spike strength clears the BBP threshold by more
than a finite-size fluctuation.  The fit is repeated without the outliers until the
set of outliers no longer changes.

The other summaries of the paper: :func:`snr` (``λ_max · rank / trace``),
:func:`localisation` (the power of the mean task vector on each eigen-feature) and
:func:`ipr` (its inverse participation ratio), and :func:`learned_fraction`, the share
of that power learned by time t under the closed-form dynamics; :func:`acquired_at`
reads off a measured accuracy curve when a category is acquired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import optimize

from .dynamics import mode_trajectory
from .evaluate import _check, _word_index, analogy_pairs
from .runtime._repr import short_repr
from .runtime.errors import QwemError

__all__ = ["TaskVectors", "task_vectors", "principal_axes", "category_report",
           "gram_spectrum", "mp_edges", "mp_pdf",
           "mp_cdf", "ks_distance", "spike_location", "spike_strength",
           "tw_scale", "MPFit", "fit_mp", "snr", "localisation", "ipr",
           "learned_fraction", "acquired_at", "TW1_99"]

TW1_99 = 2.0234
"""99th percentile of the Tracy-Widom law of order 1 (largest eigenvalue, real)."""


_TINY = np.finfo(np.float64).tiny  # smallest normal float64


def _check_finite(X: np.ndarray, what: str) -> None:
    """Refuse NaN/inf: any spectrum or fit computed from them would be meaningless."""
    if not np.isfinite(X).all():
        raise QwemError(f"{what} has NaN or inf entries; the embedding diverged or was "
                        "not computed: fix the run (e.g. a smaller learning rate) "
                        "before analysing it")


def _json_float(x) -> float | None:
    """A float for a JSON report: NaN or inf (undefined) becomes None."""
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------------
# task vectors
# ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TaskVectors:
    """The task vectors of one analogy category.

    Attributes
    ----------
    category : str
    pairs : list of (str, str)
        The unique in-vocabulary pairs ``(a_n, b_n)``, in the file's order.
    R : (N, D) float64 array
        Rows ``w_{b_n} - w_{a_n}``.
    """

    __repr__ = short_repr

    category: str
    pairs: list = field(default_factory=list)
    R: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def n(self) -> int:
        """N, the number of pairs."""
        return len(self.pairs)

    def mean(self, d: int | None = None) -> np.ndarray:
        """The mean task vector ``⟨r⟩`` over the first d coordinates, shape (d,)."""
        return self.R[:, :d].mean(axis=0)


def task_vectors(W, words: Sequence[str], questions=None, *,
                 min_pairs: int = 2) -> dict[str, TaskVectors]:
    """Task vectors ``r_n = w_b - w_a`` of every analogy category (paper, Sec. 4).

    Parameters
    ----------
    W : (V, D) numpy array or torch tensor
        Embeddings; for closed-form ones, column k is the k-th eigen-feature.
    words : sequence of str, length V
    questions : optional
        Analogy questions (:func:`qwem_lib.evaluate.load_analogies` output or a path);
        None for the bundled Google file.
    min_pairs : int
        Categories with fewer unique in-vocabulary pairs are left out.

    Returns
    -------
    dict of str to TaskVectors
        In the file's category order.
    """
    W = _check(W, words, "task_vectors").cpu().numpy().astype(np.float64)
    index = _word_index(words)
    out = {}
    for cat, pairs in analogy_pairs(questions, words).items():
        if len(pairs) < min_pairs:
            continue
        a = np.array([index[x] for x, _ in pairs])
        b = np.array([index[y] for _, y in pairs])
        out[cat] = TaskVectors(cat, list(pairs), W[b] - W[a])
    return out


def principal_axes(W) -> np.ndarray:
    """Embeddings in the coordinates of their own principal axes, ``W V = U S``.

    ``V`` holds the right singular vectors of W, in descending singular value, so
    column k is the k-th principal direction and keeping the first d columns keeps
    the top-d subspace.  For closed-form embeddings ``W = V* Λ^{1/2}`` these axes
    are the eigen-features themselves (up to sign), so this changes nothing; for
    trained ones (rotated by an arbitrary orthogonal matrix, paper, Thm. 1) it undoes
    the rotation, which makes :func:`localisation` and the first-d truncation
    meaningful for any embedding.

    Parameters
    ----------
    W : (V, D) array or tensor

    Returns
    -------
    (V, D) float64 array
    """
    W = np.asarray(W.detach().cpu() if hasattr(W, "detach") else W, dtype=np.float64)
    _check_finite(W, "principal_axes: W")
    U, S, _ = np.linalg.svd(W, full_matrices=False)
    return U * S


def gram_spectrum(R, d: int | None = None) -> np.ndarray:
    """Eigenvalues of ``(1/d) R_d R_d^T``, descending (paper, Sec. 4).

    Parameters
    ----------
    R : (N, D) array
    d : int, optional
        Keep the first d columns (default all).

    Returns
    -------
    (N,) float64 array
        Eigenvalues at the level of rounding are set to exactly 0.
    """
    R = np.asarray(R, dtype=np.float64)
    d = R.shape[1] if d is None else int(d)
    if not 1 <= d <= R.shape[1]:
        raise QwemError(f"gram_spectrum: need 1 <= d <= {R.shape[1]}, got d={d}")
    Rd = R[:, :d]
    _check_finite(Rd, "gram_spectrum: R")
    with np.errstate(over="ignore", invalid="ignore"):  # reported just below
        G = Rd @ Rd.T / d
    if not np.isfinite(G).all():
        raise QwemError("gram_spectrum: (1/d) R R^T overflows float64 (task vectors "
                        f"up to {np.abs(Rd).max():.3g}); rescale the embeddings")
    lam = np.linalg.eigvalsh(G)[::-1].copy()
    # A Gram matrix is PSD of rank <= min(N, d): set rounding noise to exact zeros
    # (the Marchenko-Pastur atom at 0 when N > d).
    tol = max(Rd.shape) * np.finfo(np.float64).eps * max(lam[0], 0.0)
    lam[lam <= tol] = 0.0
    return lam


# ----------------------------------------------------------------------------------
# the Marchenko-Pastur law
# ----------------------------------------------------------------------------------

def _check_params(sigma2: float, gamma: float) -> None:
    if not (sigma2 > 0 and gamma > 0 and math.isfinite(sigma2)
            and math.isfinite(gamma)):
        raise QwemError(f"Marchenko-Pastur parameters must be finite and > 0, got "
                        f"sigma2={sigma2}, gamma={gamma}")


def mp_edges(sigma2: float, gamma: float) -> tuple[float, float]:
    """Edges ``λ± = σ²(1 ± √γ)²`` of the Marchenko-Pastur bulk."""
    _check_params(sigma2, gamma)
    g = math.sqrt(gamma)
    return sigma2 * (1 - g) ** 2, sigma2 * (1 + g) ** 2


def mp_pdf(x, sigma2: float, gamma: float) -> np.ndarray:
    """Continuous part of the Marchenko-Pastur density (paper, Sec. 4).

    ``p(λ) = √((λ₊-λ)(λ-λ₋)) / (2π σ² γ λ)`` on ``[λ₋, λ₊]``, 0 elsewhere.  It
    integrates to ``min(1, 1/γ)``; for ``γ > 1`` the rest is an atom at 0 (the
    ``N - d_eff`` zero eigenvalues of a rank-``d_eff`` Gram matrix).

    Parameters
    ----------
    x : array_like
    sigma2 : float
        σ², the variance of an entry.
    gamma : float
        γ = N / d_eff.
    """
    lo, hi = mp_edges(sigma2, gamma)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > lo) & (x < hi)
    xs = np.where(inside, x, 1.0)
    val = np.sqrt(np.clip((hi - xs) * (xs - lo), 0.0, None))
    return np.where(inside, val / (2 * math.pi * sigma2 * gamma * xs), 0.0)


def _mp_cont(x: np.ndarray, sigma2: float, gamma: float) -> np.ndarray:
    """Mass of the continuous part on ``(-inf, x]`` (closed form, see mp_cdf)."""
    g = math.sqrt(gamma)
    c, r = sigma2 * (1 + gamma), 2 * sigma2 * g
    theta = np.arccos(np.clip((c - x) / r, -1.0, 1.0))
    half = theta / 2
    atan = np.arctan2((1 + g) * np.sin(half), abs(1 - g) * np.cos(half))
    cont = (c * theta + r * np.sin(theta) - 2 * sigma2 * abs(1 - gamma) * atan) / (
        2 * math.pi * sigma2 * gamma)
    return np.clip(cont, 0.0, min(1.0, 1 / gamma))


def mp_cdf(x, sigma2: float, gamma: float) -> np.ndarray:
    """Cumulative distribution of the Marchenko-Pastur law, atom at 0 included.

    In closed form: with ``λ = c - r cos θ``, ``c = σ²(1+γ)``, ``r = 2σ²√γ``, the
    mass of ``[λ₋, λ]`` is

        (c θ + r sin θ - 2σ²|1-γ| arctan((1+√γ) tan(θ/2) / |1-√γ|)) / (2π σ² γ),

    which is 1 at θ = π for γ ≤ 1 and 1/γ for γ > 1; for γ > 1 the atom
    ``1 - 1/γ`` sits at 0.
    """
    _check_params(sigma2, gamma)
    x = np.asarray(x, dtype=np.float64)
    atom = max(0.0, 1 - 1 / gamma)
    return np.where(x >= 0, atom, 0.0) + _mp_cont(x, sigma2, gamma)


def ks_distance(eigs, sigma2: float, gamma: float) -> float:
    """Kolmogorov-Smirnov distance between the eigenvalues' empirical law and MP.

    ``sup_x |F_n(x) - F(x)|``, checked on both sides of every jump of ``F_n``
    (with the law's left limit ``F(x-)``, which matters at its atom at 0).
    """
    x = np.sort(np.asarray(eigs, dtype=np.float64))
    n = len(x)
    if n == 0:
        raise QwemError("ks_distance: no eigenvalues")
    _check_params(sigma2, gamma)
    cont = _mp_cont(x, sigma2, gamma)
    atom = max(0.0, 1 - 1 / gamma)
    F = cont + np.where(x >= 0, atom, 0.0)
    F_left = cont + np.where(x > 0, atom, 0.0)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - F), np.max(F_left - (i - 1) / n)))


# ----------------------------------------------------------------------------------
# spikes (BBP) and the fit
# ----------------------------------------------------------------------------------

def spike_location(ell, sigma2: float, gamma: float) -> np.ndarray:
    """Where a spike of strength ℓ ends up: ``σ²(1+ℓ)(1+γ/ℓ)`` above the BBP
    threshold ``ℓ > √γ``; below it the top eigenvalue sticks to the edge ``λ₊``."""
    _check_params(sigma2, gamma)
    ell = np.asarray(ell, dtype=np.float64)
    above = ell > math.sqrt(gamma)
    safe = np.where(above, ell, 1.0)
    return np.where(above, sigma2 * (1 + safe) * (1 + gamma / safe),
                    mp_edges(sigma2, gamma)[1])


def spike_strength(lam, sigma2: float, gamma: float) -> np.ndarray:
    """The spike strength ℓ > √γ whose outlier sits at λ (inverse of
    :func:`spike_location`); NaN for λ inside the bulk (below ``λ₊``).

    Solves ``ℓ² + (1 + γ - λ/σ²) ℓ + γ = 0`` for its larger root.
    """
    _check_params(sigma2, gamma)
    lam = np.asarray(lam, dtype=np.float64)
    b = lam / sigma2 - 1 - gamma
    disc = b * b - 4 * gamma
    ok = (lam >= mp_edges(sigma2, gamma)[1]) & (disc >= 0)
    return np.where(ok, (b + np.sqrt(np.where(ok, disc, 0.0))) / 2, np.nan)


def tw_scale(sigma2: float, gamma: float, n_dim: int) -> float:
    """Fluctuation scale of the largest bulk eigenvalue (Johnstone 2001).

    For an ``n_dim x n`` white Wishart with ``n = n_dim / γ`` samples, scaled like
    the bulk, the top eigenvalue is ``λ₊ + s·TW₁`` with
    ``s = σ² (√n + √p)(1/√n + 1/√p)^{1/3} / n`` (p = n_dim).
    """
    _check_params(sigma2, gamma)
    p = float(n_dim)
    n = p / gamma
    return sigma2 * (math.sqrt(n) + math.sqrt(p)) * (
        1 / math.sqrt(n) + 1 / math.sqrt(p)) ** (1 / 3) / n


@dataclass(frozen=True)
class MPFit:
    """A Marchenko-Pastur fit to the bulk of a spectrum, outliers set apart.

    Attributes
    ----------
    sigma2, gamma : float
        The fitted law; ``d_eff = n / gamma`` with n the number of eigenvalues.
    n : int
        All eigenvalues (N, the number of task vectors).
    ks : float
        Kolmogorov-Smirnov distance between the bulk eigenvalues and the law.
    outliers : (m,) array
        The eigenvalues set apart from the bulk, descending: once the fit has
        converged, those above ``threshold`` (at most ``max_outliers``).
    threshold : float
        ``λ₊ + TW₁(0.99) · tw_scale``: above it an eigenvalue is an outlier.
    spike : (m,) array
        Spike strength ℓ of each outlier (:func:`spike_strength`).
    iterations : int
        Refits until the set of outliers stopped changing.
    """

    __repr__ = short_repr

    sigma2: float
    gamma: float
    n: int
    ks: float
    outliers: np.ndarray
    threshold: float
    spike: np.ndarray
    iterations: int = 1

    @property
    def d_eff(self) -> float:
        """Effective number of independent coordinates, ``N / γ``."""
        return self.n / self.gamma

    @property
    def edges(self) -> tuple[float, float]:
        return mp_edges(self.sigma2, self.gamma)

    @property
    def bbp(self) -> float:
        """The BBP threshold ``√γ`` on the spike strength."""
        return math.sqrt(self.gamma)

    def pdf(self, x) -> np.ndarray:
        return mp_pdf(x, self.sigma2, self.gamma)

    def cdf(self, x) -> np.ndarray:
        return mp_cdf(x, self.sigma2, self.gamma)


def _fit_ks(bulk: np.ndarray) -> tuple[float, float, float]:
    """Minimum-KS (σ², γ) for the eigenvalues ``bulk``: a grid, then Nelder-Mead."""
    mean = float(bulk.mean())
    if not mean > 0:
        raise QwemError("fit_mp: the eigenvalues are all zero; nothing to fit")
    var = float(bulk.var())

    def ks(p):
        return ks_distance(bulk, math.exp(p[0]), math.exp(p[1]))

    # MP has mean σ² and variance σ⁴γ: start there, then search around it.
    # (for eigenvalues near the smallest floats, mean² underflows to 0: divide twice)
    ratio = var / mean ** 2 if mean ** 2 > 0 else (math.sqrt(var) / mean) ** 2
    g0 = min(max(ratio, 1e-3), 1e3)
    best = (ks((math.log(mean), math.log(g0))), math.log(mean), math.log(g0))
    for lg in np.linspace(math.log(1e-3), math.log(1e2), 41):
        for ls in math.log(mean) + np.linspace(-2.0, 1.0, 31):
            v = ks((ls, lg))
            if v < best[0]:
                best = (v, ls, lg)
    res = optimize.minimize(ks, x0=[best[1], best[2]], method="Nelder-Mead",
                            options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000})
    if res.fun < best[0]:
        best = (float(res.fun), float(res.x[0]), float(res.x[1]))
    return math.exp(best[1]), math.exp(best[2]), best[0]


def fit_mp(eigs, *, max_outliers: int | None = None, z: float = TW1_99,
           max_iter: int = 10) -> MPFit:
    """Fit a Marchenko-Pastur law to a spectrum's bulk, finding its outliers itself.

    1. Fit ``(σ², γ)`` to the eigenvalues not (yet) called outliers, by minimum
       Kolmogorov-Smirnov distance (a grid over γ and σ², refined by Nelder-Mead).
    2. Call outliers the eigenvalues above ``λ₊ + z · tw_scale``: their spike
       strength ℓ clears the BBP threshold √γ by more than the largest bulk
       eigenvalue's Tracy-Widom fluctuation.
    3. Repeat until the outliers no longer change (at most ``max_iter`` times).

    Parameters
    ----------
    eigs : (N,) array
        The spectrum, e.g. :func:`gram_spectrum`.
    max_outliers : int, optional
        At most this many outliers (default ``N // 4``).
    z : float
        Tracy-Widom quantile of the margin (default its 99th percentile).
    max_iter : int

    Returns
    -------
    MPFit
    """
    lam = np.sort(np.asarray(eigs, dtype=np.float64))[::-1]
    n = len(lam)
    if n < 4:
        raise QwemError(f"fit_mp: need at least 4 eigenvalues (task vectors), got "
                        f"{n}; use a category with more pairs in the vocabulary")
    if not np.all(np.isfinite(lam)):
        raise QwemError("fit_mp: the spectrum has NaN or infinite values")
    cap = n // 4 if max_outliers is None else int(max_outliers)

    def fit(m):
        sigma2, gamma, ks = _fit_ks(lam[m:])
        thr = mp_edges(sigma2, gamma)[1] + z * tw_scale(sigma2, gamma, n)
        return sigma2, gamma, ks, thr, min(int((lam > thr).sum()), cap)

    m, tried = 0, [0]
    sigma2, gamma, ks, thr, m_new = fit(m)
    it = 1
    while m_new != m and it < max_iter:
        # a cycle (m -> m' -> m): keep the larger outlier set, fit once more, stop
        m = max(m, m_new) if m_new in tried else m_new
        tried.append(m)
        sigma2, gamma, ks, thr, m_new = fit(m)
        it += 1
        if tried.count(m) > 1:
            break
    out = lam[:m]
    return MPFit(sigma2, gamma, n, ks, out, thr,
                 spike_strength(out, sigma2, gamma), it)


# ----------------------------------------------------------------------------------
# signal-to-noise, localisation
# ----------------------------------------------------------------------------------

def snr(R, d: int | None = None, *, rtol: float | None = None) -> float:
    """``λ_max(R_d R_d^T) · rank / trace`` (paper, Sec. 4): the top eigenvalue over the
    mean of the nonzero ones (1 for a flat spectrum, up to the rank for one spike).

    Parameters
    ----------
    R : (N, D) array
    d : int, optional
        First d columns (default all).
    rtol : float, optional
        Eigenvalues below ``rtol · λ_max`` count as zero for the rank (default: those
        :func:`gram_spectrum` set to zero, below ``max(N, d) · eps · λ_max`` as in
        numpy's ``matrix_rank``).
    """
    return _snr(gram_spectrum(R, d), rtol)


def _snr(lam: np.ndarray, rtol: float | None = None) -> float:
    """:func:`snr` of a spectrum from :func:`gram_spectrum` (descending)."""
    top = lam[0]
    if not top > 0:
        return math.nan
    rank = int((lam > (0.0 if rtol is None else rtol * top)).sum())
    return float(top * rank / lam.sum())


def localisation(R, d: int | None = None, basis=None) -> np.ndarray:
    """Power of the mean task vector on each eigen-feature, normalised to sum 1.

    ``p_k = (⟨r⟩^T u_k)^2 / ||⟨r⟩||^2`` over the first d features.  For closed-form
    embeddings ``W = V Λ^{1/2}`` the features are the coordinate axes (``basis``
    None); for another embedding pass its feature directions as the columns of
    ``basis`` (D, K), orthonormal.

    Returns
    -------
    (d,) or (K,) array
    """
    m = np.asarray(R, dtype=np.float64)[:, :d].mean(axis=0)
    if basis is not None:
        m = np.asarray(basis, dtype=np.float64)[: len(m)].T @ m
    top = float(np.abs(m).max()) if m.size else 0.0
    if not top > 0:
        raise QwemError("localisation: the mean task vector is zero")
    m = m / top  # squares of tiny (or huge) entries would underflow (overflow)
    p = m * m
    return p / p.sum()


def ipr(p) -> float:
    """Inverse participation ratio ``Σ p_k²`` of a normalised power vector: 1 when all
    the power is on one feature, 1/K when it is spread evenly over K."""
    p = np.asarray(p, dtype=np.float64)
    return float((p * p).sum() / p.sum() ** 2)


def learned_fraction(p, t, eigvals, s2_0) -> np.ndarray:
    """Share of the mean task vector's power learned by flow time t.

    Under the closed-form dynamics (paper's flow) feature k of the embeddings has
    grown by ``s_k(t)/√λ_k`` of its final size, so the mean task vector's power on it
    by ``s_k²(t)/λ_k``: ``f(t) = Σ_k p_k s_k²(t)/λ_k``.

    Parameters
    ----------
    p : (K,) array
        :func:`localisation` over the K trained features.
    t : (T,) array
        Flow times.
    eigvals : (K,) array
        λ_k.
    s2_0 : float or (K,) array
        Initial squared projection of each mode.

    Returns
    -------
    (T,) array
    """
    p = np.asarray(p, dtype=np.float64)
    lam = np.asarray(eigvals, dtype=np.float64)
    if p.shape != lam.shape:
        raise QwemError(f"learned_fraction: p {p.shape} and eigvals {lam.shape} "
                        "must have the same length")
    s2 = mode_trajectory(np.asarray(t, dtype=np.float64), lam, s2_0)
    s2 = np.asarray(s2.cpu() if hasattr(s2, "cpu") else s2, dtype=np.float64)
    return (s2 / lam) @ p


def acquired_at(x, y, level) -> float:
    """Where a category's accuracy ``y`` reaches ``level`` for good.

    The measured moment a category's analogies are learned, to set against the
    closed form's predictions of it (paper, Sec. 4).  A category is acquired where
    its accuracy has crossed the level and never falls below it again: after the
    last sample below ``level`` (NaN counts as below), interpolated linearly
    between that sample and the next.  Before its features are learned a few
    analogies can be solved by chance, which a first crossing would mistake for the
    acquisition.

    Parameters
    ----------
    x : (T,) array, increasing
        Training time at each checkpoint, or the number d of eigen-features kept
        (the closed form truncated to d features stands in for training time).
    y : (T,) array
        Accuracy at each x.
    level : float
        E.g. half the final accuracy, ``y[-1] / 2``.

    Returns
    -------
    float
        ``x[0]`` if y is at or above the level throughout; NaN if its last value
        is below it.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 1 or x.shape != y.shape or not len(x):
        raise QwemError(f"acquired_at: x {x.shape} and y {y.shape} must be 1-d "
                        "arrays of the same, nonzero length")
    below = np.nonzero(~(y >= level))[0]
    i = below[-1] + 1 if below.size else 0
    if i == 0:
        return float(x[0])
    if i == len(y):
        return math.nan
    frac = (level - y[i - 1]) / (y[i] - y[i - 1])      # of the way from i-1 to i
    return float(x[i - 1] + frac * (x[i] - x[i - 1]))


def category_report(tv: TaskVectors, dims: Sequence[int]) -> dict:
    """Everything this module says about one category, at each d (JSON-ready).

    Parameters
    ----------
    tv : TaskVectors
        Task vectors in principal-axis (or eigen-feature) coordinates.
    dims : sequence of int
        Numbers of leading features to keep (those above ``tv.R.shape[1]`` are
        skipped).

    Returns
    -------
    dict
        ``{"category", "n_pairs", "by_dim": [{"d", "snr", "ipr", "fit": {...}}]}``;
        ``fit`` is None with fewer than 4 pairs or task vectors so small (below about
        1e-154) that their Gram matrix underflows; ``snr`` and ``ipr`` are None when
        the task vectors (or their mean) are zero.  It holds no NaN or inf (an
        undefined value is None), so ``json.dumps(..., allow_nan=False)`` works.

    Raises
    ------
    QwemError
        If ``tv.R`` has NaN or inf entries.
    """
    _check_finite(np.asarray(tv.R, dtype=np.float64),
                  f"category_report: the task vectors of {tv.category!r}")
    rows = []
    for d in dims:
        if not 1 <= d <= tv.R.shape[1]:
            continue
        lam = gram_spectrum(tv.R, d)            # one spectrum for SNR and fit
        row = {"d": int(d), "snr": _json_float(_snr(lam)), "ipr": None, "fit": None}
        if np.any(tv.mean(d)):
            row["ipr"] = _json_float(ipr(localisation(tv.R, d)))
        if tv.n >= 4 and lam[0] >= _TINY:  # below: R R^T underflowed, no spectrum
            f = fit_mp(lam)
            row["fit"] = {
                **{k: _json_float(v) for k, v in (
                    ("sigma2", f.sigma2), ("gamma", f.gamma), ("d_eff", f.d_eff),
                    ("ks", f.ks), ("edge", f.edges[1]), ("bbp", f.bbp))},
                "outliers": [_json_float(x) for x in f.outliers],
                "spike": [_json_float(x) for x in f.spike]}
        rows.append(row)
    return {"category": tv.category, "n_pairs": tv.n, "by_dim": rows}
