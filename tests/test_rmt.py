"""Tests for qwem_lib.rmt: task vectors, Marchenko-Pastur, spikes, SNR, localisation.

References: numerical integration of the density (scipy.integrate.quad), scipy's own
Kolmogorov-Smirnov statistic, simulated white and spiked Wishart matrices with known
parameters (BBP), and hand-worked small cases.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from qwem_lib import rmt
from qwem_lib.runtime.errors import QwemError

PARAMS = [(1.0, 0.25), (2.0, 1.0), (0.5, 3.0), (0.1, 0.05)]


def _spiked(N, d, ell, seed, sigma2=1.0):
    """R = 1 μ^T + X, X_ij ~ N(0, σ²), with spike strength N||μ||²/(d σ²) = ell."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d)) * math.sqrt(sigma2)
    mu = rng.standard_normal(d)
    mu *= math.sqrt(ell * d * sigma2 / N) / np.linalg.norm(mu)
    return X + mu


# ------------------------------------------------------------------- the MP law


@pytest.mark.parametrize("sigma2, gamma", PARAMS)
def test_pdf_mass_is_min_one_inverse_gamma(sigma2, gamma):
    lo, hi = rmt.mp_edges(sigma2, gamma)
    mass, _ = integrate.quad(lambda x: rmt.mp_pdf(x, sigma2, gamma), lo, hi,
                             limit=200)
    assert mass == pytest.approx(min(1.0, 1.0 / gamma), abs=1e-7)


@pytest.mark.parametrize("sigma2, gamma", PARAMS)
def test_cdf_closed_form_matches_quadrature(sigma2, gamma):
    lo, hi = rmt.mp_edges(sigma2, gamma)
    atom = max(0.0, 1 - 1 / gamma)
    for x in np.linspace(lo, hi, 9)[1:-1]:
        q, _ = integrate.quad(lambda y: rmt.mp_pdf(y, sigma2, gamma), lo, x,
                              limit=200)
        assert rmt.mp_cdf(x, sigma2, gamma) == pytest.approx(atom + q, abs=1e-8)
    assert rmt.mp_cdf(hi * 1.01, sigma2, gamma) == pytest.approx(1.0, abs=1e-12)
    assert rmt.mp_cdf(-1e-9, sigma2, gamma) == 0.0
    assert rmt.mp_cdf(0.0, sigma2, gamma) == pytest.approx(atom)


def test_mean_and_variance_of_the_law():
    """MP has mean σ² and variance σ⁴γ (the moment start of the fit)."""
    sigma2, gamma = 1.7, 0.4
    lo, hi = rmt.mp_edges(sigma2, gamma)
    m1, _ = integrate.quad(lambda x: x * rmt.mp_pdf(x, sigma2, gamma), lo, hi)
    m2, _ = integrate.quad(lambda x: x * x * rmt.mp_pdf(x, sigma2, gamma), lo, hi)
    assert m1 == pytest.approx(sigma2, rel=1e-7)
    assert m2 - m1 ** 2 == pytest.approx(sigma2 ** 2 * gamma, rel=1e-6)


def test_bad_parameters_are_refused():
    for s2, g in [(0.0, 1.0), (1.0, -1.0), (math.nan, 1.0), (1.0, math.inf)]:
        with pytest.raises(QwemError, match="Marchenko-Pastur"):
            rmt.mp_cdf(1.0, s2, g)


@pytest.mark.parametrize("sigma2, gamma", [(1.0, 0.3), (0.7, 1.8)])
def test_ks_distance_equals_scipy(sigma2, gamma):
    x = np.random.default_rng(1).uniform(0.01, 3.0, size=37)
    ref = stats.kstest(x, lambda y: rmt.mp_cdf(y, sigma2, gamma)).statistic
    assert rmt.ks_distance(x, sigma2, gamma) == pytest.approx(ref, abs=1e-12)


def test_ks_distance_hand_worked():
    """One eigenvalue where F = p: the distance is max(1 - p, p)."""
    sigma2, gamma = 1.0, 0.5
    x = 1.2
    p = float(rmt.mp_cdf(x, sigma2, gamma))
    assert rmt.ks_distance([x], sigma2, gamma) == pytest.approx(max(1 - p, p))


def test_ks_distance_uses_the_left_limit_at_the_atom():
    """Half the eigenvalues exactly 0 and γ = 2 (atom 1/2): no jump mismatch at 0."""
    lam = rmt.gram_spectrum(np.random.default_rng(2).standard_normal((400, 200)))
    assert (lam == 0).sum() == 200
    assert rmt.ks_distance(lam, 1.0, 2.0) < 0.05


def test_white_wishart_follows_the_law():
    N, d = 500, 1000
    lam = rmt.gram_spectrum(np.random.default_rng(3).standard_normal((N, d)) * 1.5)
    assert rmt.ks_distance(lam, 2.25, N / d) < 0.03


# ---------------------------------------------------------------- spikes and fit


def test_spike_strength_inverts_spike_location():
    sigma2, gamma = 0.8, 0.3
    ell = np.array([0.6, 1.0, 4.0, 25.0])          # all above √γ ≈ 0.548
    lam = rmt.spike_location(ell, sigma2, gamma)
    assert np.all(lam > rmt.mp_edges(sigma2, gamma)[1])
    np.testing.assert_allclose(rmt.spike_strength(lam, sigma2, gamma), ell,
                               rtol=1e-10)
    # below the threshold the top eigenvalue sticks to the edge; inside the bulk: NaN
    assert rmt.spike_location(0.3, sigma2, gamma) == pytest.approx(
        rmt.mp_edges(sigma2, gamma)[1])
    assert np.isnan(rmt.spike_strength(1.0, sigma2, gamma))


def test_spike_location_at_the_threshold_is_the_edge():
    sigma2, gamma = 1.3, 0.2
    at = rmt.spike_location(math.sqrt(gamma) * (1 + 1e-12), sigma2, gamma)
    assert at == pytest.approx(rmt.mp_edges(sigma2, gamma)[1], rel=1e-9)


def test_fit_recovers_a_spiked_wishart():
    N, d, ell = 400, 2000, 2.0
    fit = rmt.fit_mp(rmt.gram_spectrum(_spiked(N, d, ell, seed=4)))
    assert fit.sigma2 == pytest.approx(1.0, rel=0.03)
    assert fit.gamma == pytest.approx(N / d, rel=0.1)
    assert fit.d_eff == pytest.approx(d, rel=0.1)
    assert len(fit.outliers) == 1
    assert fit.outliers[0] == pytest.approx(rmt.spike_location(ell, 1.0, N / d),
                                            rel=0.05)
    assert fit.spike[0] == pytest.approx(ell, rel=0.15)
    assert fit.spike[0] > fit.bbp
    assert fit.ks < 0.03


@pytest.mark.parametrize("ell", [0.0, 0.2])
def test_no_outlier_without_a_supercritical_spike(ell):
    """ℓ = 0, and ℓ = 0.2 below the BBP threshold √γ ≈ 0.45: nothing to find."""
    found = [len(rmt.fit_mp(rmt.gram_spectrum(_spiked(40, 200, ell, seed=s)))
                 .outliers) for s in range(10)]
    assert sum(found) <= 1          # the 99% Tracy-Widom margin: rare false alarms


def test_fit_small_sample_like_a_category():
    """N = 40 task vectors (a category's size), strong spike: found, bulk fitted."""
    for seed in range(5):
        fit = rmt.fit_mp(rmt.gram_spectrum(_spiked(40, 300, 5.0, seed=seed)))
        assert len(fit.outliers) == 1
        assert fit.ks < 0.15
        assert fit.sigma2 == pytest.approx(1.0, rel=0.15)


def test_fit_with_more_vectors_than_dimensions():
    """N > d: the Gram matrix has N - d zero eigenvalues, the law an atom at 0."""
    fit = rmt.fit_mp(rmt.gram_spectrum(_spiked(80, 40, 5.0, seed=5)))
    assert fit.gamma == pytest.approx(2.0, rel=0.1)
    assert len(fit.outliers) == 1
    assert fit.ks < 0.06


def test_fit_refuses_bad_spectra():
    with pytest.raises(QwemError, match="at least 4"):
        rmt.fit_mp([1.0, 2.0, 3.0])
    with pytest.raises(QwemError, match="NaN"):
        rmt.fit_mp([1.0, 2.0, np.nan, 3.0, 1.0])
    with pytest.raises(QwemError, match="all zero"):
        rmt.fit_mp(np.zeros(6))


# ------------------------------------------------------------ SNR, localisation


def test_gram_spectrum_matches_singular_values():
    R = np.random.default_rng(6).standard_normal((7, 30))
    s = np.linalg.svd(R[:, :12], compute_uv=False)
    np.testing.assert_allclose(rmt.gram_spectrum(R, 12), s ** 2 / 12, rtol=1e-12)
    with pytest.raises(QwemError, match="1 <= d"):
        rmt.gram_spectrum(R, 31)


def test_snr_hand_worked():
    """R R^T = diag(3, 1, 0): λ_max · rank / trace = 3 · 2 / 4."""
    R = np.array([[math.sqrt(3), 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert rmt.snr(R) == pytest.approx(1.5)
    assert rmt.snr(np.ones((5, 3))) == pytest.approx(1.0)     # rank one
    assert math.isnan(rmt.snr(np.zeros((4, 3))))


def test_snr_grows_with_the_spike():
    values = [rmt.snr(_spiked(40, 400, ell, seed=7)) for ell in (0.0, 2.0, 8.0)]
    assert values[0] < values[1] < values[2]


def test_localisation_and_ipr_hand_worked():
    R = np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0]])   # mean (2, 2, 0)
    p = rmt.localisation(R)
    np.testing.assert_allclose(p, [0.5, 0.5, 0.0])
    assert rmt.ipr(p) == pytest.approx(0.5)
    np.testing.assert_allclose(rmt.localisation(R, d=1), [1.0])
    # in a rotated basis the power moves to the rotated axis
    B = np.array([[1, 1, 0], [1, -1, 0], [0, 0, math.sqrt(2)]]) / math.sqrt(2)
    np.testing.assert_allclose(rmt.localisation(R, basis=B), [1.0, 0.0, 0.0],
                               atol=1e-12)
    assert rmt.ipr(np.full(8, 1 / 8)) == pytest.approx(1 / 8)
    with pytest.raises(QwemError, match="zero"):
        rmt.localisation(np.array([[1.0, -1.0], [-1.0, 1.0]]))


def test_learned_fraction_single_mode_half_time():
    """One mode from s²(0) = s0: s² = λ/2 at t = ln((λ - s0)/s0)/λ (aligned lemma)."""
    lam, s0 = 2.0, 1e-8
    t_half = math.log((lam - s0) / s0) / lam
    f = rmt.learned_fraction([1.0], [0.0, t_half, 100.0], [lam], s0)
    np.testing.assert_allclose(f, [s0 / lam, 0.5, 1.0], rtol=1e-9, atol=1e-15)


def test_learned_fraction_weights_the_modes():
    p, lam, s0 = np.array([0.25, 0.75]), np.array([4.0, 1.0]), 1e-10
    t = math.log((4.0 - s0) / s0) / 4.0 * 2          # mode 1 learned, mode 2 not
    assert rmt.learned_fraction(p, [t], lam, s0)[0] == pytest.approx(0.25, abs=1e-3)
    with pytest.raises(QwemError, match="same length"):
        rmt.learned_fraction(p, [t], lam[:1], s0)


def _acquired_at_naive(x, y, level):
    """Reference: walk back from the end while y stays at or above the level."""
    i = len(y)
    while i > 0 and y[i - 1] >= level:
        i -= 1
    if i == len(y):
        return math.nan
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = float(x[i - 1]), float(x[i]), float(y[i - 1]), float(y[i])
    return x0 + (x1 - x0) * (level - y0) / (y1 - y0)


def test_acquired_at_hand_worked():
    """A chance success at x = 1 is not the acquisition; the last crossing is."""
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0.0, 0.6, 0.1, 0.3, 0.8])
    assert rmt.acquired_at(x, y, 0.4) == pytest.approx(3.2)      # 0.3 -> 0.8
    assert rmt.acquired_at(x, y, 0.05) == pytest.approx(1 / 12)  # 0.0 -> 0.6
    assert rmt.acquired_at(x, y, 0.0) == 0.0                     # from the start
    assert math.isnan(rmt.acquired_at(x, y, 0.9))                # never for good
    # NaN (no question answered) counts as below the level
    y_nan = np.array([0.5, np.nan, 0.2, 0.6, 0.7])
    assert rmt.acquired_at(x, y_nan, 0.4) == pytest.approx(2.5)
    # integer x (numbers of features d) give the same as float x
    d = np.array([1, 2, 4, 8, 16])
    assert rmt.acquired_at(d, y, 0.4) == pytest.approx(8 + 0.2 * 8)


def test_acquired_at_matches_a_naive_walk():
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        x = np.cumsum(rng.uniform(0.1, 2.0, n))
        y = rng.uniform(0, 1, n).round(1)
        level = float(rng.choice([0.0, 0.25, 0.5, y[-1] / 2, 1.0]))
        got, want = rmt.acquired_at(x, y, level), _acquired_at_naive(x, y, level)
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_acquired_at_refuses_mismatched_arrays():
    with pytest.raises(QwemError, match="same, nonzero length"):
        rmt.acquired_at([0.0, 1.0], [0.5], 0.2)
    with pytest.raises(QwemError, match="same, nonzero length"):
        rmt.acquired_at([], [], 0.2)


# ------------------------------------------------------------------ task vectors


def test_task_vectors_unique_in_vocabulary_pairs():
    words = ["man", "woman", "king", "queen", "boy", "girl", "big", "bigger"]
    W = np.arange(len(words) * 3, dtype=float).reshape(-1, 3) ** 1.5
    questions = {
        "family": [("man", "woman", "king", "queen"),
                   ("king", "queen", "man", "woman"),      # repeats both pairs
                   ("boy", "girl", "prince", "princess")],  # second pair unknown
        "comparative": [("big", "bigger", "good", "better")],  # one pair only
    }
    tv = rmt.task_vectors(W, words, questions)
    assert list(tv) == ["family"]                        # min_pairs = 2
    fam = tv["family"]
    assert fam.pairs == [("man", "woman"), ("king", "queen"), ("boy", "girl")]
    idx = {w: i for i, w in enumerate(words)}
    expect = np.stack([W[idx[b]] - W[idx[a]] for a, b in fam.pairs])
    np.testing.assert_allclose(fam.R, expect)
    np.testing.assert_allclose(fam.mean(2), expect[:, :2].mean(0))
    assert fam.n == 3
    assert "comparative" in rmt.task_vectors(W, words, questions, min_pairs=1)
    with pytest.raises(QwemError, match="rows but there are"):
        rmt.task_vectors(W[:-1], words, questions)


# --------------------------------------------------- principal axes, the report


def test_principal_axes_undo_a_rotation():
    rng = np.random.default_rng(8)
    U, _ = np.linalg.qr(rng.standard_normal((50, 6)))
    W = U * np.array([5.0, 4.0, 3.0, 2.0, 1.5, 1.0])      # closed-form-like
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    P = rmt.principal_axes(W @ Q)
    np.testing.assert_allclose(np.abs(P), np.abs(W), atol=1e-10)
    np.testing.assert_allclose(np.abs(rmt.principal_axes(W)), np.abs(W), atol=1e-10)


def _synthetic_category(N=30, D=64, ell=6.0, seed=9):
    """Words a_n, b_n with w_b - w_a = μ + noise: a category with a known spike."""
    R = _spiked(N, D, ell, seed)
    A = np.random.default_rng(seed + 1).standard_normal((N, D))
    words = [f"a{n}" for n in range(N)] + [f"b{n}" for n in range(N)]
    W = np.vstack([A, A + R])
    q = {"syn": [(f"a{n}", f"b{n}", f"a{n + 1}", f"b{n + 1}") for n in range(N - 1)]}
    return words, W, q, R


def test_category_report_matches_the_functions():
    words, W, q, R = _synthetic_category()
    tv = rmt.task_vectors(W, words, q)["syn"]
    np.testing.assert_allclose(tv.R, R, atol=1e-12)
    rep = rmt.category_report(tv, [8, 64, 128])
    assert rep["n_pairs"] == 30 and [r["d"] for r in rep["by_dim"]] == [8, 64]
    row = rep["by_dim"][1]
    f = rmt.fit_mp(rmt.gram_spectrum(R, 64))
    assert row["snr"] == pytest.approx(rmt.snr(R, 64))
    assert row["ipr"] == pytest.approx(rmt.ipr(rmt.localisation(R, 64)))
    assert row["fit"]["d_eff"] == pytest.approx(f.d_eff)
    assert len(row["fit"]["outliers"]) == 1 and row["fit"]["spike"][0] > 1.0


def test_category_report_zero_task_vectors_give_none():
    """Two words with the same embedding: zero task vectors, nothing to fit."""
    words = ["a", "b", "c", "d"]
    W = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 1.0], [3.0, 1.0]])
    q = {"same": [("a", "b", "c", "d")]}
    rep = rmt.category_report(rmt.task_vectors(W, words, q)["same"], [1, 2])
    assert [r["snr"] for r in rep["by_dim"]] == [None, None]
    assert [r["ipr"] for r in rep["by_dim"]] == [None, None]
    assert [r["fit"] for r in rep["by_dim"]] == [None, None]


# ------------------------------------------------------- non-finite input, strict JSON


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_are_refused(bad):
    import torch

    words, W, q, _ = _synthetic_category(N=6, D=8)
    W = W.copy()
    W[words.index("b3"), 2] = bad
    for call in (lambda: rmt.task_vectors(W, words, q),
                 lambda: rmt.task_vectors(torch.from_numpy(W).float(), words, q),
                 lambda: rmt.principal_axes(W),
                 lambda: rmt.gram_spectrum(np.where(np.isfinite(W), W, bad))):
        with pytest.raises(QwemError, match="NaN or inf") as info:
            call()
        assert "\n" not in str(info.value)
    R = np.ones((5, 4))
    R[1, 1] = bad
    tv = rmt.TaskVectors("capital-world", [(f"a{n}", f"b{n}") for n in range(5)], R)
    with pytest.raises(QwemError, match="'capital-world' has NaN or inf entries"):
        rmt.category_report(tv, [2, 4])


def test_overflowing_task_vectors_are_refused():
    """Finite but huge: R R^T overflows; refused rather than a NaN spectrum."""
    R = np.full((6, 3), 1e200)
    R[:, 1] = -1e200
    tv = rmt.TaskVectors("huge", [(f"a{n}", f"b{n}") for n in range(6)], R)
    with pytest.raises(QwemError, match="overflows float64"):
        rmt.category_report(tv, [3])


def test_category_report_is_strict_json_in_degenerate_cases():
    import json

    pairs = [(f"a{n}", f"b{n}") for n in range(8)]
    rng = np.random.default_rng(2)
    cases = {
        "zero": np.zeros((8, 5)),
        "rank one": np.outer(np.ones(8), rng.standard_normal(5)),
        "one column": rng.standard_normal((8, 1)),
        "mean zero": np.vstack([np.eye(5)[:4], -np.eye(5)[:4]]),
        "small": rng.standard_normal((8, 5)) * 1e-100,  # mean eigenvalue² underflows
        "tiny": rng.standard_normal((8, 5)) * 1e-160,  # R R^T is subnormal
        "vanishing": rng.standard_normal((8, 5)) * 1e-170,  # R R^T underflows to 0
        "two pairs": rng.standard_normal((2, 5)),
    }
    for name, R in cases.items():
        tv = rmt.TaskVectors(name, pairs[: len(R)], R)
        rep = rmt.category_report(tv, [1, 3, 5, 9])
        json.dumps(rep, allow_nan=False)  # raises on NaN or inf
        assert [r["d"] for r in rep["by_dim"]] == [d for d in (1, 3, 5)
                                                   if d <= R.shape[1]], name
    zero = rmt.category_report(rmt.TaskVectors("zero", pairs, cases["zero"]), [5])
    assert zero["by_dim"][0]["snr"] is None and zero["by_dim"][0]["fit"] is None
    balanced = rmt.category_report(rmt.TaskVectors("m", pairs, cases["mean zero"]), [5])
    assert balanced["by_dim"][0]["ipr"] is None  # the mean task vector is zero
    small = rmt.category_report(rmt.TaskVectors("s", pairs, cases["small"]), [5])
    assert small["by_dim"][0]["fit"]["gamma"] > 0  # fitted, at any scale
    tiny = rmt.category_report(rmt.TaskVectors("t", pairs, cases["tiny"]), [5])
    assert tiny["by_dim"][0]["fit"] is None and tiny["by_dim"][0]["ipr"] is not None
    gone = rmt.category_report(rmt.TaskVectors("v", pairs, cases["vanishing"]), [5])
    assert gone["by_dim"][0]["snr"] is None
    assert gone["by_dim"][0]["ipr"] == pytest.approx(
        rmt.ipr(rmt.localisation(cases["vanishing"] * 1e170, 5)))
