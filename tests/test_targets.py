"""P_ij, M*, PMI and PPMI against their definitions (arXiv 2502.09863, Thm. 1)."""

import numpy as np
import pytest
import torch

from qwem_lib.runtime.errors import QwemError
from qwem_lib.targets import (artanh_pmi, m_star, pair_probs, pmi, ppmi,
                              setting31_weights, target)


@pytest.fixture
def counts():
    rng = np.random.default_rng(0)
    A = rng.poisson(0.7, size=(30, 30)).astype(float)   # many zeros
    A[3] = 0.0                                          # a row that never co-occurs...
    A[:, 3] = 0.0
    A[3, 7] = A[7, 3] = 2.0                             # ...except once
    return torch.from_numpy(A + A.T)


def test_pair_probs(counts):
    P, u = pair_probs(counts.clone())
    assert float(P.sum()) == pytest.approx(1.0)
    np.testing.assert_allclose(u.numpy(), counts.sum(1).numpy() / counts.sum().item())
    # in place
    C = counts.clone()
    P2, _ = pair_probs(C, out=C)
    assert P2.data_ptr() == C.data_ptr()
    np.testing.assert_allclose(P2.numpy(), P.numpy())


def test_pair_probs_empty():
    with pytest.raises(QwemError, match="empty"):
        pair_probs(torch.zeros(4, 4, dtype=torch.float64))


def _naive_mstar(P, u, k=1.0):
    V = len(u)
    M = np.zeros((V, V))
    for i in range(V):
        for j in range(V):
            q = k * u[i] * u[j]
            M[i, j] = (P[i, j] - q) / (0.5 * (P[i, j] + q))
    return M


def test_mstar_definition(counts):
    P, u = pair_probs(counts)
    for k in (1.0, 5.0):
        M = m_star(P, u, negatives=k).numpy()
        np.testing.assert_allclose(M, _naive_mstar(P.numpy(), u.numpy(), k),
                                   rtol=1e-12, atol=1e-12)
    M = m_star(P, u).numpy()
    assert np.allclose(M, M.T)
    assert M.min() >= -2 and M.max() <= 2
    np.testing.assert_array_equal(M[P.numpy() == 0], -2.0)


def test_mstar_general_psi_equals_setting31(counts):
    # With Psi+ = Psi- the ratio is independent of Psi; with Setting 3.1's weights
    # G = Psi (P + PiPj) = 1.
    P, u = pair_probs(counts)
    psi = setting31_weights(P, u)
    G = psi * (P + u[:, None] * u[None, :])
    np.testing.assert_allclose(G.numpy(), 1.0)
    M1 = m_star(P, u)
    M2 = m_star(P, u, psi_pos=psi, psi_neg=psi)
    np.testing.assert_allclose(M1.numpy(), M2.numpy(), rtol=1e-12, atol=1e-12)
    # Asymmetric weights change the target: Psi- = 0 gives +2 wherever P > 0.
    M3 = m_star(P, u, psi_neg=torch.zeros_like(P)).numpy()
    np.testing.assert_array_equal(M3[P.numpy() > 0], 2.0)


def test_mstar_in_place(counts):
    P, u = pair_probs(counts.clone())
    ref = m_star(P, u)
    M = m_star(P, u, out=P)
    assert M.data_ptr() == P.data_ptr()
    np.testing.assert_allclose(M.numpy(), ref.numpy())


def test_pmi_ppmi(counts):
    P, u = pair_probs(counts)
    Pn, un = P.numpy(), u.numpy()
    with np.errstate(divide="ignore"):
        ref = np.log(Pn / np.outer(un, un))
    ref[Pn == 0] = 0.0
    np.testing.assert_allclose(pmi(P, u).numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ppmi(P, u).numpy(), np.maximum(ref, 0), atol=1e-12)
    shifted = np.where(Pn > 0, ref - np.log(5.0), 0.0)
    np.testing.assert_allclose(pmi(P, u, negatives=5.0).numpy(), shifted, atol=1e-12)
    np.testing.assert_allclose(target("ppmi", P, u).numpy(), np.maximum(ref, 0),
                               atol=1e-12)


def test_mstar_is_pmi_to_third_order(counts):
    # PMI = 2 artanh(M*/2) exactly where P > 0 (paper, Thm. 1).
    P, u = pair_probs(counts)
    M = m_star(P, u)
    mask = P > 0
    np.testing.assert_allclose(artanh_pmi(M)[mask].numpy(), pmi(P, u)[mask].numpy(),
                               rtol=1e-10, atol=1e-10)
    x = torch.linspace(-0.5, 0.5, 11, dtype=torch.float64)
    series = x + x**3 / 12 + x**5 / 80          # next term x^7/448 <= 1.8e-5 here
    np.testing.assert_allclose(artanh_pmi(x).numpy(), series.numpy(), atol=2e-5)


def test_neg_power_smoothing(counts):
    P, u = pair_probs(counts)
    q = u.numpy() ** 0.75
    q /= q.sum()
    Q = 0.5 * (np.outer(u.numpy(), q) + np.outer(q, u.numpy()))
    Pn = P.numpy()
    ref = 2 * (Pn - Q) / (Pn + Q)
    np.testing.assert_allclose(m_star(P, u, neg_power=0.75).numpy(), ref, atol=1e-12)


def test_unknown_method(counts):
    P, u = pair_probs(counts)
    with pytest.raises(QwemError, match="unknown method"):
        target("glove", P, u)


def test_word_without_pairs_gives_zero_row():
    C = torch.tensor([[0.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 0.0]],
                     dtype=torch.float64)
    P, u = pair_probs(C)
    for M in (m_star(P, u), pmi(P, u), ppmi(P, u)):
        assert torch.isfinite(M).all()
        np.testing.assert_array_equal(M[2].numpy(), 0.0)
        np.testing.assert_array_equal(M[:, 2].numpy(), 0.0)


@pytest.mark.parametrize("k", [0, -1.0, float("inf"), float("nan"), "5", True])
def test_negatives_must_be_finite_and_positive(counts, k):
    P, u = pair_probs(counts)
    for f in (lambda: m_star(P, u, negatives=k), lambda: pmi(P, u, negatives=k),
              lambda: ppmi(P, u, negatives=k),
              lambda: setting31_weights(P, u, negatives=k)):
        with pytest.raises(QwemError, match=r"negatives \(k, --negatives\) must be a "
                                            r"finite number > 0"):
            f()


@pytest.mark.parametrize("power", [float("inf"), float("nan"), None, "0.75"])
def test_neg_power_must_be_finite(counts, power):
    P, u = pair_probs(counts)
    with pytest.raises(QwemError, match=r"neg_power \(--neg-power\) must be a finite "
                                        r"number"):
        m_star(P, u, neg_power=power)


def test_numpy_numbers_are_accepted(counts):
    P, u = pair_probs(counts)
    assert torch.equal(m_star(P, u, negatives=np.int64(2), neg_power=np.float32(1.0)),
                       m_star(P, u, negatives=2.0))
    assert torch.equal(pmi(P, u, negatives=np.float64(0.5)), pmi(P, u, negatives=0.5))
