"""Closed-form gradient flow (arXiv 2502.09863) against numerical integration."""

import numpy as np
import pytest
import torch

from qwem_lib import dynamics as dy
from qwem_lib.losses import expected_grad, expected_loss, reweighting
from qwem_lib.runtime.errors import QwemError
from qwem_lib.targets import m_star, pair_probs

F64 = torch.float64
V, D = 50, 8
TOP = 8.0 * 1.5 ** -np.arange(D)                       # well separated top-d spectrum


def _synthetic(seed, top=TOP, lam_min=-10.0):
    """Random symmetric M* = Q diag(λ) Q^T; eigenvalues beyond d include negatives."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((V, V)))
    rest = np.concatenate([rng.uniform(-3.0, 0.3, V - len(top) - 1), [lam_min]])
    lam = np.concatenate([top, rest])
    M = (Q * lam) @ Q.T
    return (M + M.T) / 2, lam, Q


def test_aligned_flow_matches_closed_form():
    M, lam, Q = _synthetic(0)
    # columns on 7 top eigenvectors and on the most negative one (a decaying mode);
    # initial values from tiny to above λ (a mode that shrinks onto λ from above)
    cols = [0, 1, 2, 3, 4, 5, 6, V - 1]
    s0 = np.array([1e-8, 1e-3, 1e-6, 0.5, 9.0, 1e-4, 1e-2, 0.7])
    W0 = Q[:, cols] * np.sqrt(s0)
    t = np.concatenate([[0.0], np.geomspace(1e-3, 12.0, 40)])
    sol = dy.integrate_flow(M, W0, t)
    closed = dy.mode_trajectory(t, lam[cols], s0).numpy()
    got = sol.W.transpose(0, 2, 1) @ Q[:, cols]        # (T, d, d): diagonal if aligned
    proj = np.einsum("tkk->tk", got) ** 2
    np.testing.assert_allclose(proj, closed, rtol=1e-6, atol=1e-24)
    off = got - np.einsum("tkk->tk", got)[:, :, None] * np.eye(D)
    assert np.abs(off).max() < 1e-6 * np.sqrt(closed.max())
    np.testing.assert_allclose(np.sort(sol.singular_values**2, axis=1),
                               np.sort(closed, axis=1), rtol=1e-6, atol=1e-24)


@pytest.mark.parametrize("seed", [0, 4])
def test_random_init_half_learned_times(seed):
    """σ² = 1e-12: each top mode is half learned when the aligned solution says."""
    M, _, _ = _synthetic(seed)
    W0 = dy.random_init(V, D, 1e-6, generator=torch.Generator().manual_seed(seed))
    s2 = dy.init_projection(W0)
    assert s2 == pytest.approx(1e-12, rel=0.25)
    pred = dy.timescales(TOP, s2).t_half.numpy()
    t = np.linspace(0.0, 1.4 * pred[-1], 1500)
    sol = dy.integrate_flow(M, W0, t, rtol=1e-8, return_W=False)
    meas = dy.crossing_times(t, sol.singular_values**2, TOP / 2)
    ratio = meas / pred
    assert np.all(np.abs(ratio[:6] - 1) < 0.15), ratio
    # the later modes start from the part of their projection orthogonal to the
    # directions already learned: (d - k + 1)/d of ||W0||²/V
    pred_seq = dy.timescales(TOP, dy.sequential_init_projection(W0)).t_half.numpy()
    assert np.all(np.abs(meas / pred_seq - 1) < 0.15), meas / pred_seq
    # the largest singular values of W0 are the wrong initial values: too early
    sv2 = np.linalg.svd(W0.numpy(), compute_uv=False) ** 2
    assert np.all(dy.timescales(TOP, sv2).t_half.numpy() < meas)


def test_closed_form_stable_and_solves_the_ode():
    lam = torch.tensor([5.0, 1.0, 1e-14, 0.0, -1e-14, -2.0, -300.0], dtype=F64)
    s0 = 1e-3
    t = torch.tensor([0.0, 0.1, 1.0, 7.0, 2e3], dtype=F64)
    s2 = dy.mode_trajectory(t, lam, s0)
    assert s2.shape == (5, 7) and torch.isfinite(s2).all()
    np.testing.assert_allclose(s2[0].numpy(), s0)
    np.testing.assert_allclose(s2[-1, :2].numpy(), [5.0, 1.0], rtol=1e-14)  # λt = 1e4
    # λ = 0 limit s²/(1 + s² t), continuous from both sides
    want0 = s0 / (1 + s0 * t)
    for k in (2, 3, 4):
        np.testing.assert_allclose(s2[:, k].numpy(), want0.numpy(), rtol=1e-10)
    assert float(s2[-1, -1]) == 0.0 and float(s2[-1, -2]) < 1e-300
    # the paper's formula where it does not overflow
    tt, ll = t[:4, None], lam[[0, 1, 5, 6]]
    direct = s0 * ll * torch.exp(ll * tt) / (ll + s0 * torch.expm1(ll * tt))
    np.testing.assert_allclose(s2[:4][:, [0, 1, 5, 6]].numpy(), direct.numpy(),
                               rtol=1e-12)
    # d(s²)/dt = s²(λ - s²) by central differences
    tc, h = torch.tensor([0.3, 1.1], dtype=F64), 1e-5
    lam6 = lam[:6]
    traj = dy.mode_trajectory
    deriv = traj(tc + h, lam6, 0.2) - traj(tc - h, lam6, 0.2)
    mid = dy.mode_trajectory(tc, lam6, 0.2)
    np.testing.assert_allclose((deriv / (2 * h)).numpy(),
                               (mid * (lam6 - mid)).numpy(), rtol=1e-7, atol=1e-9)
    # a huge λ with a tiny init: a clean logistic step, no overflow
    big = dy.mode_trajectory(torch.tensor([0.0, 0.05, 1.0]), 1e4, 1e-30)
    assert torch.isfinite(big).all() and float(big[-1]) == pytest.approx(1e4)
    with pytest.raises(QwemError, match="t >= 0"):
        dy.mode_trajectory([-1.0], 1.0, 0.1)


def test_half_time_and_tau():
    lam = torch.tensor([4.0, 1.0, 0.3], dtype=F64)
    s0 = torch.tensor([1e-9, 1e-3, 0.1], dtype=F64)
    ts = dy.timescales(lam, s0)
    at_half = torch.diagonal(dy.mode_trajectory(ts.t_half, lam, s0))
    np.testing.assert_allclose(at_half.numpy(), (lam / 2).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ts.tau.numpy(), (torch.log(lam / s0) / lam).numpy())
    # τ - t_half = ln(λ/(λ - s²(0)))/λ ≈ s²(0)/λ²
    np.testing.assert_allclose((ts.tau - ts.t_half).numpy(),
                               (torch.log(lam / (lam - s0)) / lam).numpy(), rtol=1e-6,
                               atol=1e-14)
    assert float(ts.tau[0] - ts.t_half[0]) == pytest.approx(1e-9 / 16, rel=1e-4)
    # a mode starting above λ never crosses λ/2 from below; λ ≤ 0 never learns
    odd = dy.timescales([1.0, 1.0, 0.0, -1.0], [0.7, 2.0, 0.1, 0.1],
                        allow_nonpositive=True)
    assert float(odd.t_half[0]) < 0 and np.isnan(float(odd.t_half[1]))
    assert np.isinf(odd.tau[2:].numpy()).all()
    assert np.isinf(odd.t_half[2:].numpy()).all()


def test_init_projection_and_scale():
    W0 = dy.random_init(400, 20, 0.3, generator=torch.Generator().manual_seed(0))
    assert dy.init_scale_to_s2(0.3, 20, 400) == pytest.approx(0.09)
    assert dy.init_projection(W0) == pytest.approx(0.09, rel=0.05)
    # = the mean squared projection on fixed unit directions
    v = torch.linalg.qr(torch.randn(400, 50, dtype=F64,
                                    generator=torch.Generator().manual_seed(1))).Q
    proj = ((v.T @ W0) ** 2).sum(1).mean()
    assert float(proj) == pytest.approx(dy.init_projection(W0), rel=0.1)
    seq = dy.sequential_init_projection(W0, 3)
    np.testing.assert_allclose(seq.numpy(), dy.init_projection(W0) * np.array(
        [20, 19, 18]) / 20)


def test_predicted_loss_along_aligned_solution():
    M, lam, Q = _synthetic(1)
    fro2 = float((M * M).sum())
    s0 = np.full(D, 1e-4)
    t = np.array([0.0, 1.0, 3.0, 30.0, 300.0])
    s2 = dy.mode_trajectory(t, lam[:D], s0).numpy()
    for k, tk in enumerate(t):
        W = Q[:, :D] * np.sqrt(s2[k])
        direct = 0.25 * ((W @ W.T - M) ** 2).sum()
        got = dy.predicted_loss([tk], lam[:D], s0, fro2)
        assert float(got[0]) == pytest.approx(direct, rel=1e-10)
    rel = dy.predicted_loss(t, lam[:D], s0, fro2, normalisation="relative").numpy()
    paper = dy.predicted_loss(t, lam[:D], s0, fro2, normalisation="paper").numpy()
    assert rel[0] == pytest.approx(1.0, abs=1e-3) and paper[0] == pytest.approx(1.0,
                                                                               abs=1e-3)
    np.testing.assert_allclose(paper, 0.5 + 0.5 * rel)
    # at convergence the relative loss is the Eckart–Young residual
    tail = float((lam[D:] ** 2).sum() / fro2)
    assert rel[-1] == pytest.approx(tail, rel=1e-8)
    assert np.all(np.diff(rel) < 0)


def test_steps_time_round_trip_and_paper_normalisation():
    t = dy.steps_to_time(1000, 5.0, 10_000, 3.0)
    assert t == pytest.approx(1000 * 4 * 5.0 / (1e8 * 3.0))       # paper's flow
    assert dy.time_to_steps(t, 5.0, 10_000, 3.0) == pytest.approx(1000)
    steps = np.array([0, 10, 1e6])
    np.testing.assert_allclose(
        dy.time_to_steps(dy.steps_to_time(steps, 0.2, loss_scale=3.0), 0.2,
                         loss_scale=3.0), steps)
    assert dy.steps_to_time(7, 0.1, loss_scale=1.0) == pytest.approx(1.4)
    with pytest.raises(QwemError):
        dy.steps_to_time(7, 0.1)
    # the paper's loss (Setting 3.1 weights scaled to g = 2/V², divided by
    # |L_min| = mean(M*²)) has gradient c (W W^T - M*) W with c = paper_loss_scale
    rng = np.random.default_rng(3)
    A = rng.poisson(2.0, size=(8, 8)).astype(float)
    P, u = pair_probs(torch.from_numpy(A + A.T))
    M = m_star(P, u)
    n = P.shape[0]
    psi = (2.0 / n**2) / (P + u[:, None] * u[None, :])
    W = torch.randn(n, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    W.requires_grad_()
    mean_m2 = float((M * M).mean())
    F = 1 - expected_loss(W, P, u, psi_pos=psi, psi_neg=psi) / (-mean_m2)
    F.backward()
    c = dy.paper_loss_scale(n, mean_m2)
    np.testing.assert_allclose(W.grad.numpy(), (c * (W @ W.T - M) @ W).detach().numpy(),
                               rtol=1e-10, atol=1e-14)
    assert dy.flow_time_per_step(0.5, c) == pytest.approx(dy.steps_to_time(1, 0.5, n,
                                                                            mean_m2))


def test_gradient_descent_tracks_flow():
    """Full-batch GD on the Setting 3.1 loss, at the mapped time, follows the flow.

    GD is the Euler scheme of the flow in the time ``t = 2 η g`` per step, so its
    deviation from the flow is first order in η: halving η halves it.
    """
    rng = np.random.default_rng(2)
    A = rng.poisson(3.0, size=(12, 12)).astype(float)
    P, u = pair_probs(torch.from_numpy(A + A.T))
    M = m_star(P, u)
    lam = torch.linalg.eigvalsh(M)
    rw = reweighting("setting31", P, u)
    W0 = dy.random_init(12, 3, 1e-2, generator=torch.Generator().manual_seed(0))
    t_end = 2.5 * float(torch.log(lam[-3] / 1e-4)) / float(lam[-3])   # ≈ 2.5 τ_3
    errs = []
    for frac in (0.1, 0.05):
        lr = frac * dy.stable_lr(lam)
        n_steps = int(dy.time_to_steps(t_end, lr, loss_scale=1.0))
        checks = np.linspace(0, n_steps, 6).astype(int)
        W, svs = W0.clone(), []
        for step in range(n_steps + 1):
            if step in checks:
                svs.append(torch.linalg.svdvals(W).numpy())
            W = W - lr * expected_grad(W, P, u, "qwem", reweight=rw)
        t = dy.steps_to_time(checks, lr, loss_scale=1.0)
        sol = dy.integrate_flow(M, W0, t, return_W=False)
        errs.append(np.abs(np.array(svs) / sol.singular_values - 1).max())
    assert sol.singular_values[-1, -1] ** 2 > 0.99 * float(lam[-3])   # 3 modes learned
    assert errs[1] < 0.05
    assert 1.6 < errs[0] / errs[1] < 2.4, errs                      # first order in η


def _gd(M, lr, steps, W):
    for _ in range(steps):
        W = W - lr * (W @ W.T - M) @ W
        if not torch.isfinite(W).all() or float(W.abs().max()) > 1e6:
            return None
    return W


def test_stable_lr():
    M, lam, _ = _synthetic(3, lam_min=-20.0)
    M = torch.from_numpy(M)
    lr = dy.stable_lr(lam)
    assert lr == pytest.approx(0.5 * 2 / max(2 * lam.max(), lam.max() - lam.min()))
    W0 = dy.random_init(V, D, 1e-3, generator=torch.Generator().manual_seed(0))
    W = _gd(M, lr, 3000, W0)
    assert W is not None
    best = float((np.sort(lam)[:-D] ** 2).sum())                     # Eckart–Young
    assert float(((W @ W.T - M) ** 2).sum()) == pytest.approx(best, rel=1e-6)
    assert _gd(M, 10 * lr, 3000, W0) is None
    # the same bound with only the top of the spectrum plus λ_min
    assert dy.stable_lr(lam[:D], lam_min=lam.min()) == pytest.approx(lr)
    assert dy.stable_lr(lam, loss_scale=4.0) == pytest.approx(lr / 4)


def test_discrete_mode_trajectory_is_gradient_descent():
    """The per-mode map against full-matrix GD from an aligned init, and its limits."""
    M, lam, Q = _synthetic(5)
    rng = np.random.default_rng(5)
    U, _ = np.linalg.qr(rng.standard_normal((D, D)))
    s0 = np.array([1e-10, 1e-6, 1e-3, 0.2, 1.0, 3.0, 9.0, 0.5])   # one above λ
    W = torch.from_numpy(Q[:, :D] * np.sqrt(s0) @ U.T)
    M = torch.from_numpy(M)
    c, lr = 2.0, 0.02                                 # a = lr c λ_1 = 0.32
    steps = np.array([0, 1, 7, 40, 300, 120])         # unsorted on purpose
    got = dy.discrete_mode_trajectory(steps, TOP, s0, lr, loss_scale=c)
    assert got.shape == (6, D)
    want, n = {}, 0
    for target in sorted(steps):
        while n < target:
            W = W - lr * c * (W @ W.T - M) @ W
            n += 1
        want[target] = np.sort(torch.linalg.svdvals(W).numpy() ** 2)
    for row, n in zip(got.numpy(), steps):
        np.testing.assert_allclose(np.sort(row), want[n], rtol=1e-10, atol=1e-25)
    # u ← u(1 + a(1 - u))² in the variable u = s²/λ
    u0, a = 1e-4, 0.3
    u = u0
    for _ in range(5):
        u = u * (1 + a * (1 - u)) ** 2
    assert float(dy.discrete_mode_trajectory(5, 2.0, 2.0 * u0, a / 2.0)) == \
        pytest.approx(2.0 * u, rel=1e-14)
    # small steps converge to the flow at t = 2 lr c n, with an error O(lr)
    t = np.array([2.0, 5.0, 9.0])
    errs = []
    for lr in (1e-3, 5e-4):
        n = np.round(dy.time_to_steps(t, lr, loss_scale=1.0)).astype(int)
        disc = dy.discrete_mode_trajectory(n, TOP[:3], 1e-4, lr).numpy()
        flow = dy.mode_trajectory(t, TOP[:3], 1e-4).numpy()
        errs.append(np.abs(disc / flow - 1).max())
    assert errs[1] < 0.02 and 1.7 < errs[0] / errs[1] < 2.3, errs
    # early growth per step (1 + a)² against the flow's e^{2a}: a lag of a/ln(1 + a)
    a = 0.4
    n = np.arange(0, 60)
    ratio = dy.discrete_mode_trajectory(n, 1.0, 1e-30, a).numpy() / 1e-30
    np.testing.assert_allclose(ratio, (1 + a) ** (2 * n), rtol=1e-12)
    with pytest.raises(QwemError):
        dy.discrete_mode_trajectory([1.5], 1.0, 0.1, 0.1)


# ----------------------------------------------------------------------------------
# numbers from users: checked, one line naming them
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0, 0.0, -0.1, float("nan"), float("inf"), "1e-3",
                                   True])
def test_init_scale_to_s2_refuses_non_positive(scale):
    with pytest.raises(QwemError, match=r"init_scale \(--init-scale\) must be a "
                                        r"finite number > 0"):
        dy.init_scale_to_s2(scale)


def test_init_scale_to_s2_accepts_numpy():
    assert dy.init_scale_to_s2(np.float32(0.5)) == 0.25
    assert type(dy.init_scale_to_s2(np.float64(0.5))) is float


def test_timescales_refuse_non_positive_eigenvalues_counting_the_positive():
    with pytest.raises(QwemError, match=r"timescales need eigenvalues > 0 .* but 2 of "
                                        r"the 4 given are positive; pass only those "
                                        r"\(e\.g\. --dim 2 or less\)"):
        dy.timescales([3.0, 1.0, 0.0, -1.0], 1e-6)
    with pytest.raises(QwemError, match="0 of the 1 given are positive"):
        dy.timescales([-0.5], 1e-6)
    with pytest.raises(QwemError, match="1 of the 2 given are positive"):
        dy.timescales([1.0, float("nan")], 1e-6, allow_nonpositive=True)
    with pytest.raises(QwemError, match="finite s2_0 > 0"):
        dy.timescales([1.0], float("inf"))
    ts = dy.timescales([3.0, 1.0], np.float64(1e-6))
    assert torch.isfinite(ts.tau).all()


@pytest.mark.parametrize("lr", [0.0, -1.0, float("inf"), float("nan")])
def test_step_time_conversions_refuse_bad_lr(lr):
    with pytest.raises(QwemError, match=r"lr \(--lr\) must be a finite number > 0"):
        dy.flow_time_per_step(lr)
    with pytest.raises(QwemError, match=r"lr \(--lr\)"):
        dy.steps_to_time(10, lr, loss_scale=1.0)
    with pytest.raises(QwemError, match=r"lr \(--lr\)"):
        dy.discrete_mode_trajectory([1], 1.0, 0.1, lr)


def test_loss_scales_and_init_are_checked():
    with pytest.raises(QwemError, match="loss_scale must be a finite number > 0"):
        dy.flow_time_per_step(0.1, float("inf"))
    with pytest.raises(QwemError, match="loss_scale must be a finite number > 0"):
        dy.stable_lr([1.0], loss_scale=0.0)
    with pytest.raises(QwemError, match="mstar_sq_mean must be a finite number > 0"):
        dy.paper_loss_scale(100, float("nan"))
    with pytest.raises(QwemError, match=r"init_scale \(--init-scale\) must be a "
                                        r"finite number >= 0"):
        dy.random_init(4, 2, float("inf"))
    assert dy.random_init(4, 2, 0.0).abs().max() == 0  # W = 0 is allowed here


def test_half_learned_times_exact_between_coarse_checkpoints():
    """Along the sigmoid the logit is linear in t: coarse checkpoints give t_half."""
    lam = np.array([4.0, 1.5, 0.5])
    s0 = np.array([1e-10, 1e-6, 1e-3])
    t_half = dy.timescales(lam, s0).t_half.numpy()
    t = np.concatenate([[0.0], np.geomspace(0.1, 2 * t_half.max(), 12)])
    s2 = dy.mode_trajectory(t, lam, s0).numpy()
    np.testing.assert_allclose(dy.half_learned_times(t, s2, lam), t_half, rtol=1e-10)
    np.testing.assert_allclose(dy.half_learned_ratio(t, s2, lam, s0), 1.0, rtol=1e-10)
    # ln s^2, what crossing_times interpolates, bends near half: it is off there
    assert np.abs(dy.crossing_times(t, s2, lam / 2) / t_half - 1).max() > 1e-3
    # a mode that never gets to half: nan
    never = dy.half_learned_times(t[:3], s2[:3], lam)
    assert np.isnan(never).all()
    with pytest.raises(QwemError, match="eigenvalues > 0"):
        dy.half_learned_times(t, s2, [1.0, 0.0, 1.0])


def test_first_learned_hand_case():
    lam = np.array([4.0, 2.0, 1.0])
    proj = np.array([[0.0, 0.0, 0.0],
                     [2.0, 0.5, 0.1],       # mode 1 reaches λ/2 = 2 exactly here
                     [4.0, 1.0, 0.2],       # mode 2 reaches 1
                     [4.0, 2.0, 0.4]])      # mode 3 never reaches 0.5
    np.testing.assert_array_equal(dy.first_learned(proj, lam), [1, 2, -1])
    np.testing.assert_array_equal(dy.first_learned(proj[:, :2], lam[:2]), [1, 2])


def test_next_mode_learned_hand_case():
    t = np.array([0.0, 1.0, 2.0])
    s2 = np.array([[0.0, 0.0, 0.0],
                   [2.0, 0.2, 0.0],
                   [4.0, 1.0, 0.5]])
    lam = np.array([4.0, 2.0, 1.0])
    half = np.array([1.0, 2.0, np.nan])       # mode 1 half at t = 1, mode 2 at t = 2
    # u_2(1) = 0.2 / 2; u_3(2) = 0.5 / 1
    np.testing.assert_allclose(dy.next_mode_learned(t, s2, lam, half), [0.1, 0.5])
    # between samples: linear interpolation, u_2(0.5) = 0.1 / 2
    np.testing.assert_allclose(dy.next_mode_learned(t, s2, lam, [0.5, 2.0, 0.0]),
                               [0.05, 0.5])


def test_appc_bound_hand_cases():
    # λ = (4, 2): ln(2 / 2) = 0; λ = (3, 1): -(3/2) ln(1/2) = 1.5 ln 2
    np.testing.assert_allclose(dy.appc_bound([4.0, 2.0]), [0.0], atol=1e-15)
    np.testing.assert_allclose(dy.appc_bound([3.0, 1.0]), [1.5 * np.log(2)])
    lam = 8.0 * 1.5 ** -np.arange(5)
    B = dy.appc_bound(lam)
    assert B.shape == (4,)
    # scale covariant like the flow: M* -> c M* multiplies every B_k by c
    np.testing.assert_allclose(dy.appc_bound(3.0 * lam), 3.0 * B, rtol=1e-14)
    for bad in ([1.0], [1.0, 1.0], [1.0, 2.0], [2.0, -1.0]):
        with pytest.raises(QwemError, match="strictly decreasing"):
            dy.appc_bound(bad)


def test_alignment_of_an_aligned_and_a_random_W():
    from scipy.linalg import subspace_angles

    rng = np.random.default_rng(0)
    n, d = 40, 5
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam, U_top = np.array([5.0, 4.0, 3.0, 2.0, 1.0]), Q[:, :d]
    s2 = lam * np.array([0.9, 0.8, 0.6, 0.1, 0.01])      # three modes past half
    R, _ = np.linalg.qr(rng.standard_normal((d, d)))
    al = dy.alignment(torch.from_numpy((U_top * np.sqrt(s2)) @ R), lam, U_top)
    assert al.rank == 3
    assert al.overlap == pytest.approx(1.0, abs=1e-12)
    assert al.learned == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(al.projections, s2, rtol=1e-12)
    assert al.cloud.dtype == np.float32 and al.cloud.shape == (n, 3)
    np.testing.assert_allclose(al.cloud, U_top[:, :3] * np.sqrt(s2[:3]), atol=1e-6)
    # a random W: the overlap is the mean squared cosine of the principal angles
    W = 1e-3 * rng.standard_normal((n, d))
    al = dy.alignment(W, lam, torch.from_numpy(U_top))
    want = np.mean(np.cos(subspace_angles(W, U_top)) ** 2)
    assert al.rank == 0 and np.isnan(al.learned)
    assert al.overlap == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(al.projections, ((U_top.T @ W) ** 2).sum(1))
    with pytest.raises(QwemError, match="one shape"):
        dy.alignment(W, lam, U_top[:, :3])
