"""SGNS and QWEM losses, sampled and expected, and reweightings (arXiv 2502.09863)."""

import math

import numpy as np
import pytest
import torch

from qwem_lib.losses import (Reweighting, expected_grad, expected_loss, keep_probs,
                             pair_losses, quartic_minus_frobenius, qwem_neg, qwem_pos,
                             reweighting, sampled_loss, sgns_neg, sgns_pos,
                             subsample_keep_probs)
from qwem_lib.runtime.errors import QwemError
from qwem_lib.targets import m_star, pair_probs, setting31_weights

F64 = torch.float64


def _close(a, b, rtol=1e-12, atol=0.0):
    np.testing.assert_allclose(np.asarray(a.detach()), np.asarray(b.detach()),
                               rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def probs():
    rng = np.random.default_rng(1)
    A = rng.poisson(1.5, size=(9, 9)).astype(float)
    A[2, 5] = A[5, 2] = 0.0                    # a pair that never co-occurs
    P, u = pair_probs(torch.from_numpy(A + A.T))
    return P, u


def _W(V, d, seed, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(V, d, dtype=F64, generator=g)


def _all_reweightings(P, u):
    return [reweighting("setting31", P, u), reweighting("uniform", P, u, negatives=2),
            reweighting("word2vec", P, u, subsample_t=0.02, negatives=3)]


def test_qwem_is_sgns_taylor_series():
    x = torch.linspace(-3, 3, 61, dtype=F64)
    for q, sg in ((qwem_pos, sgns_pos), (qwem_neg, sgns_neg)):
        # exact relation: q(x) = 2 (sg(x) - log 2) + x^2/4 - 2 log cosh(x/2)
        rhs = 2 * (sg(x) - math.log(2)) + x**2 / 4 - 2 * torch.log(torch.cosh(x / 2))
        _close(q(x), rhs, rtol=1e-12, atol=1e-12)
        # hence q = 2 (sg - log 2) + x^4/96 + O(x^6) near 0
        xs = torch.tensor([1e-2, 3e-2, 1e-1], dtype=F64)
        resid = q(xs) - 2 * (sg(xs) - math.log(2))
        np.testing.assert_allclose(resid.numpy(), (xs**4 / 96).numpy(), rtol=1e-2)
    assert pair_losses("qwem") == (qwem_pos, qwem_neg)
    # SGNS is evaluated stably far from 0
    big = torch.tensor([-1e4, 1e4], dtype=F64)
    assert torch.isfinite(sgns_pos(big)).all() and torch.isfinite(sgns_neg(big)).all()
    np.testing.assert_allclose(sgns_pos(big).numpy(), [1e4, 0.0])


def _naive_expected(W, P, u, rw, loss):
    """Double loop over pairs straight from the paper's loss (tied weights)."""
    lp, ln = pair_losses(loss)
    x = W @ W.T
    V = len(u)
    n = rw.neg_dist
    total = 0.0
    for i in range(V):
        for j in range(V):
            if rw.inverse_g:
                q = 0.5 * (u[i] * n[j] + n[i] * u[j])
                psi_p = psi_n = 1.0 / (P[i, j] + rw.negatives * q)
            elif rw.psi_pos is None:
                psi_p = psi_n = 1.0
            else:
                psi_p = psi_n = rw.psi_pos[i] * rw.psi_pos[j]
            total += float(P[i, j] * psi_p * lp(x[i, j]))
            # negatives: centre i ~ unigram, context j ~ neg_dist, k of them
            total += float(rw.negatives * u[i] * n[j] * psi_n * ln(x[i, j]))
    return total


@pytest.mark.parametrize("loss", ["qwem", "sgns"])
def test_expected_loss_against_double_loop(probs, loss):
    P, u = probs
    W = _W(9, 3, 0)
    for rw in _all_reweightings(P, u):
        got = float(expected_loss(W, P, u, loss, reweight=rw, block_size=4))
        assert got == pytest.approx(_naive_expected(W, P, u, rw, loss), rel=1e-12)


@pytest.mark.parametrize("loss", ["qwem", "sgns"])
def test_expected_grad_matches_autograd(probs, loss):
    P, u = probs
    for rw in _all_reweightings(P, u):
        W = _W(9, 3, 1).requires_grad_()
        expected_loss(W, P, u, loss, reweight=rw).backward()
        g = expected_grad(W.detach(), P, u, loss, reweight=rw, block_size=4)
        _close(g, W.grad, rtol=1e-11, atol=1e-13)


def test_setting31_gradient_is_g_times_residual(probs):
    """Under Setting 3.1 (g = 1): ∇L = (W W^T - M*) W exactly."""
    P, u = probs
    W = _W(9, 4, 2)
    M = m_star(P, u)
    g = expected_grad(W, P, u, "qwem", reweight=reweighting("setting31", P, u))
    _close(g, (W @ W.T - M) @ W, rtol=1e-11, atol=1e-12)
    # a precomputed Ψ gives the same
    psi = setting31_weights(P, u)
    g2 = expected_grad(W, P, u, "qwem", psi_pos=psi, psi_neg=psi)
    _close(g2, g, rtol=1e-12, atol=1e-13)


def test_theorem1_loss_minus_frobenius_is_constant(probs):
    P, u = probs
    M = m_star(P, u)
    const = -0.25 * float((M * M).sum())
    s31 = reweighting("setting31", P, u)
    for seed, scale in [(0, 1e-3), (1, 0.3), (2, 1.0), (3, 3.0)]:
        W = _W(9, 4, seed, scale)
        L = float(expected_loss(W, P, u, "qwem", reweight=s31))
        frob = 0.25 * float(((W @ W.T - M) ** 2).sum())
        assert L - frob == pytest.approx(const, rel=1e-10, abs=1e-10)
        assert quartic_minus_frobenius(W, P, u) == pytest.approx(const, rel=1e-10)
    # general (weighted) form: L - ¼ Σ G (x - M*)^2 = -¼ Σ G M*^2 for word2vec too
    rw = reweighting("word2vec", P, u, subsample_t=0.02)
    vals = [quartic_minus_frobenius(_W(9, 4, s), P, u, rw) for s in range(3)]
    np.testing.assert_allclose(vals, vals[0], rtol=1e-10)
    # Ψ+ ≠ Ψ-: the target is no longer the unweighted one, M* = 2(a - b)/(a + b)
    a = torch.linspace(0.5, 2.0, 9, dtype=F64)
    rw = Reweighting("custom", a, None, u, negatives=2.0)
    aP, bQ = a[:, None] * a[None, :] * P, 2.0 * u[:, None] * u[None, :]
    _close(rw.target(P, u), 2 * (aP - bQ) / (aP + bQ), rtol=1e-12)
    vals = [quartic_minus_frobenius(_W(9, 4, s), P, u, rw) for s in range(3)]
    const = -float(((aP - bQ) ** 2 / (aP + bQ)).sum())         # -¼ Σ G M*²
    np.testing.assert_allclose(vals, const, rtol=1e-10)


def test_sampled_loss_exact_enumeration(probs):
    """Enumerating every pair with its probability as weight gives the expectation."""
    P, u = probs
    V = len(u)
    ii, jj = torch.meshgrid(torch.arange(V), torch.arange(V), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    for loss in ("qwem", "sgns"):
        for rw in _all_reweightings(P, u):
            wp, wn = rw.pair_weights(P, u, ii, jj, ii, jj)
            p_pos = P.reshape(-1)
            p_neg = (u[:, None] * rw.neg_dist[None, :]).reshape(-1)
            W = _W(V, 3, 4).requires_grad_()
            Ls = sampled_loss(W, ii, jj, ii, jj, loss, pos_weight=V * V * p_pos * wp,
                              neg_weight=V * V * p_neg * wn)
            Ls.backward()
            L = expected_loss(W.detach(), P, u, loss, reweight=rw)
            assert float(Ls.detach()) == pytest.approx(float(L), rel=1e-12)
            g = expected_grad(W.detach(), P, u, loss, reweight=rw)
            _close(W.grad, g, rtol=1e-11, atol=1e-13)


def test_sampled_gradient_monte_carlo(probs):
    """Mean gradient of minibatches drawn from P_ij and P_i n_j = expected gradient."""
    P, u = probs
    V, B, n_batches = len(u), 10_000, 20
    rw = reweighting("word2vec", P, u, subsample_t=0.02)
    g_exp = expected_grad(_W(V, 3, 5), P, u, "qwem", reweight=rw)
    gen = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(n_batches):
        pos = torch.multinomial(P.reshape(-1), B, replacement=True, generator=gen)
        pi, pj = pos // V, pos % V
        ni = torch.multinomial(u, B, replacement=True, generator=gen)
        nj = torch.multinomial(rw.neg_dist, B, replacement=True, generator=gen)
        wp, wn = rw.pair_weights(P, u, pi, pj, ni, nj)
        W = _W(V, 3, 5).requires_grad_()
        sampled_loss(W, pi, pj, ni, nj, "qwem", pos_weight=wp, neg_weight=wn).backward()
        grads.append(W.grad)
    G = torch.stack(grads)
    mean, se = G.mean(0), G.std(0) / n_batches ** 0.5
    assert float(((mean - g_exp).abs() / se).max()) < 5.0        # z-scores
    assert float((mean - g_exp).norm() / g_exp.norm()) < 0.05


def test_sampled_loss_untied_and_unweighted():
    W, C = _W(5, 2, 6), _W(5, 2, 7)
    i, j = torch.tensor([0, 1, 4]), torch.tensor([2, 2, 3])
    x = (W[i] * C[j]).sum(1)
    xn = (W[j] * C[i]).sum(1)
    got = sampled_loss(W, i, j, j, i, "sgns", W_ctx=C)
    want = torch.log1p(torch.exp(-x)).mean() + torch.log1p(torch.exp(xn)).mean()
    assert float(got) == pytest.approx(float(want), rel=1e-13)
    with pytest.raises(QwemError, match="equal length"):
        sampled_loss(W, i, j[:2], i, j)
    with pytest.raises(QwemError, match="unknown loss"):
        sampled_loss(W, i, j, i, j, "glove")


def test_reweightings_hand_worked():
    # unigram (1/17, 16/17); P = [[0, 1], [1, 15]] / 17
    C = torch.tensor([[0.0, 1.0], [1.0, 15.0]], dtype=F64)
    P, u = pair_probs(C)
    np.testing.assert_allclose(u.numpy(), [1 / 17, 16 / 17])
    s31 = reweighting("setting31", P, u)
    i, j = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1])
    wp, wn = s31.pair_weights(P, u, i, j, i, j)
    # Ψ = 1/(P_ij + P_i P_j): 1/(1/289), 1/(1/17 + 16/289), 1/(15/17 + 256/289)
    np.testing.assert_allclose(wp.numpy(), [289, 289 / 33, 289 / 511])
    np.testing.assert_allclose(wn.numpy(), wp.numpy())
    a, b = s31.weight_rows(P, u, 0, 2)
    np.testing.assert_allclose((a + b).numpy(), 1.0)                 # G = g = 1
    M = s31.target(P, u)
    np.testing.assert_allclose(M.numpy(), [[-2, 2 / 33],
                                           [2 / 33, 2 * (255 - 256) / 511]])

    # word2vec, t = 1/17: p_0 = min(1, 1 + 1) = 1, p_1 = 1/4 + 1/16 = 5/16;
    # negatives from u^{3/4} ∝ (1, 8): n = (1/9, 8/9)
    np.testing.assert_allclose(subsample_keep_probs(u, 1 / 17).numpy(), [1, 5 / 16])
    w2v = reweighting("word2vec", P, u, subsample_t=1 / 17, negatives=2)
    np.testing.assert_allclose(w2v.neg_dist.numpy(), [1 / 9, 8 / 9])
    wp, wn = w2v.pair_weights(P, u, i, j, i, j)
    np.testing.assert_allclose(wp.numpy(), [1, 5 / 16, 25 / 256])
    np.testing.assert_allclose(wn.numpy(), 2 * wp.numpy())          # k = 2 folded in
    # Q_01 = ½(u_0 n_1 + n_0 u_1) = 4/51; M*_01 = 2(P - kQ)/(P + kQ) with k = 2
    M = w2v.target(P, u)
    assert float(M[0, 1]) == pytest.approx(2 * (3 / 51 - 8 / 51) / (3 / 51 + 8 / 51))
    # the uniform reweighting has the same target as Setting 3.1 (Ψ+ = Ψ- cancels)
    _close(reweighting("uniform", P, u).target(P, u),
                               s31.target(P, u))
    with pytest.raises(QwemError, match="unknown reweighting"):
        reweighting("glove", P, u)
    with pytest.raises(QwemError, match="negatives"):
        reweighting("uniform", P, u, negatives=0)


@pytest.mark.parametrize("k", [0, -2, float("inf"), float("nan"), True])
def test_reweighting_refuses_bad_negatives(k):
    P, u = pair_probs(torch.rand(6, 6, dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(0)) + 0.1)
    with pytest.raises(QwemError, match=r"negatives \(k, --negatives\) must be a "
                                        r"finite number > 0"):
        reweighting("setting31", P, u, negatives=k)


def test_subsampling_thresholds_are_checked():
    u = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    for t in (0.0, -1e-5, float("inf"), float("nan")):
        with pytest.raises(QwemError, match="subsampling threshold t .* must be a "
                                            "finite number > 0"):
            subsample_keep_probs(u, t)
    for t in (-1e-5, float("inf"), float("nan"), "1e-3"):
        with pytest.raises(QwemError, match=r"subsample \(--subsample\) must be a "
                                            r"finite number >= 0"):
            keep_probs([5, 3, 2], t)
    ones = torch.ones(3, dtype=torch.float64)
    assert torch.equal(keep_probs([5, 3, 2], np.float64(0)), ones)
    P = torch.full((3, 3), 1 / 9, dtype=torch.float64)
    with pytest.raises(QwemError, match="neg_power"):
        reweighting("uniform", P, P.sum(1), neg_power=float("nan"))
    with pytest.raises(QwemError, match="unknown reweighting 'w2v'"):
        reweighting("w2v", P, P.sum(1))


# ----------------------------------------------------------------------------------
# the compiled block kernel (qwem_lib.kernels._pair) and stored weights
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["qwem", "sgns"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 3])
def test_compiled_block_matches_torch_formulas(loss, dtype, threads):
    """One pass of the kernel against torch's per-pair functions, far into both
    tails (|x| up to 60, where 1 - σ(x) would cancel to 0 and softplus is linear)."""
    from qwem_lib.kernels._pair import block_grad, block_loss

    gen = torch.Generator().manual_seed(3)
    x = torch.cat([torch.linspace(-60, 60, 35, dtype=F64)[None].expand(4, 35),
                   8 * torch.randn(3, 35, dtype=F64, generator=gen)]).to(dtype)
    a = torch.rand(7, 35, dtype=F64, generator=gen).to(dtype)
    b = torch.rand(7, 35, dtype=F64, generator=gen).to(dtype)
    lp, ln = pair_losses(loss)
    x64, a64, b64 = x.double(), a.double(), b.double()
    if loss == "qwem":
        d_ref = a64 * (0.5 * x64 - 1) + b64 * (0.5 * x64 + 1)
    else:
        d_ref = -a64 * torch.sigmoid(-x64) + b64 * torch.sigmoid(x64)
    # softplus without torch's linear threshold (exact in float64)
    sp = lambda v: torch.clamp(v, min=0) + torch.log1p(torch.exp(-v.abs()))
    l_ref = (a64 * (sp(-x64) if loss == "sgns" else lp(x64))
             + b64 * (sp(x64) if loss == "sgns" else ln(x64))).sum()
    got = x.numpy().copy()
    block_grad(got, a.numpy(), b.numpy(), loss, threads)
    rtol = 1e-6 if dtype == torch.float32 else 1e-14
    np.testing.assert_allclose(got, d_ref.numpy(), rtol=rtol, atol=rtol * 1e-3)
    # the tails to full relative precision: σ(-60) ≈ 9e-27, not 0
    if loss == "sgns":
        assert got[0, -1] != 0 and got[0, -1] == pytest.approx(
            float(b64[0, -1] - a64[0, -1] * math.exp(-60)), rel=rtol)
    total = block_loss(x.numpy(), a.numpy(), b.numpy(), loss, threads)
    assert total == pytest.approx(float(l_ref), rel=10 * rtol)


@pytest.mark.parametrize("loss", ["qwem", "sgns"])
def test_stored_weights_give_the_same_loss_and_gradient(probs, loss):
    """Reweighting.materialised: the weights of every pair stored once give what
    the per-block weights give, for every reweighting."""
    P, u = probs
    W = _W(9, 3, 4)
    for rw in _all_reweightings(P, u):
        dense = rw.materialised(P, u)
        assert dense.dense is not None and rw.dense is None
        a, b = dense.dense
        assert a.shape == b.shape == (9, 9)
        _close(a + b, rw.weight_rows(P, u, 0, 9)[0] + rw.weight_rows(P, u, 0, 9)[1])
        for block in (2, 4, 9):
            _close(expected_grad(W, P, u, loss, reweight=dense, block_size=block),
                   expected_grad(W, P, u, loss, reweight=rw), rtol=1e-13, atol=1e-15)
            assert float(expected_loss(W, P, u, loss, reweight=dense,
                                       block_size=block)) == pytest.approx(
                _naive_expected(W, P, u, rw, loss), rel=1e-12)


@pytest.mark.parametrize("loss", ["qwem", "sgns"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_setting31_weights_formed_in_the_kernels_pass(loss, dtype, monkeypatch):
    """Setting 3.1's weights formed inside the compiled pass give the loss that the
    stored weights give, with P^0.75 negatives, k = 5 and a word never seen (its
    pairs have G = 0: weight 1 kept, as weight_rows does), at any block size."""
    import qwem_lib.kernels._pair as kernel
    rng = np.random.default_rng(7)
    A = rng.poisson(1.0, size=(11, 11)).astype(float)
    A[3, :] = A[:, 3] = 0.0                     # word 3 never seen: G = 0 there
    P, u = pair_probs(torch.from_numpy(A + A.T))
    rw = reweighting("setting31", P, u, negatives=5.0, neg_power=0.75)
    assert rw.neg_dist is not u and float(u[3]) == 0.0
    W = _W(11, 4, 5, scale=2.0)                 # |x| large enough for both tails
    # the weights as weight_rows forms them in torch, stored (the naive double loop
    # divides by G = 0 at word 3)
    stored = rw.materialised(P, u)
    a, b = stored.dense
    assert float((a[3] + b[3]).abs().sum()) == 0.0
    lp, ln = pair_losses(loss)
    x = W @ W.T
    reference = float((a * lp(x) + b * ln(x)).sum())
    calls = []
    real = kernel.block_loss_unit_g
    monkeypatch.setattr(kernel, "block_loss_unit_g",
                        lambda *a: calls.append(a[5]) or real(*a))
    cast = dict(P_ij=P.to(dtype), unigram=u.to(dtype))
    rw_cast = reweighting("setting31", cast["P_ij"], cast["unigram"], negatives=5.0,
                          neg_power=0.75)
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for block in (1, 4, 11):
        calls.clear()
        got = float(expected_loss(W.to(dtype), cast["P_ij"], cast["unigram"], loss,
                                  reweight=rw_cast, block_size=block))
        assert calls == list(range(0, 11, block))      # the fused pass, every block
        assert got == pytest.approx(reference, rel=rtol)
    calls.clear()                                        # not fused: weights stored
    assert float(expected_loss(W, P, u, loss, reweight=stored)) == pytest.approx(
        reference, rel=1e-12) and not calls
