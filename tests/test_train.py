"""The trainer: convergence, timescales, unbiased minibatches, resume, divergence."""

import json
import math
import os

import numpy as np
import pytest
import torch

from qwem_lib import dynamics
from qwem_lib.errors import QwemError
from qwem_lib.history import History
from qwem_lib.losses import expected_grad, reweighting
from qwem_lib.targets import pair_probs
from qwem_lib.train import (PairSampler, TrainConfig, checkpoint_steps, minibatch_grad,
                            spectrum, train)

CPU = torch.device("cpu")


def _problem(V=12, rank=3, seed=0):
    """P_ij, unigram from symmetric counts with a low-rank part (separated spectrum)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(V, rank, generator=g, dtype=torch.float64)
    C = 5.0 * A @ A.T + torch.rand(V, V, generator=g, dtype=torch.float64)
    return pair_probs(C + C.T)


def _mstar(P, u, name="setting31"):
    return reweighting(name, P, u).target(P, u)


@pytest.fixture(scope="module")
def full_batch_run():
    """Full-batch GD from small init, small lr (close to the flow), many checkpoints."""
    P, u = _problem()
    M = _mstar(P, u)
    lam, vecs = torch.linalg.eigh(M)
    lam, vecs = lam.flip(0), vecs.flip(1)
    cfg = TrainConfig(embed_dim=3, init_scale=1e-6, lr=0.02, steps="auto",
                      n_checkpoints=200, time_factor=1.5)
    res = train(cfg, P, u, M_star=M, device=CPU, progress=False)
    return res, lam, vecs


def test_full_batch_converges_to_top_eigenspace(full_batch_run):
    res, lam, vecs = full_batch_run
    d = res.config.embed_dim
    U = torch.linalg.svd(res.W, full_matrices=False).U
    overlap = float((vecs[:, :d].T @ U).pow(2).sum()) / d
    assert overlap > 0.99
    s2 = torch.linalg.svdvals(res.W) ** 2
    assert torch.allclose(s2, lam[:d], rtol=1e-3, atol=0)
    # The loss fell, and the run reached 1.5 tau_d in flow time.
    assert res.history.loss[-1] < res.history.loss[0]
    tau_d = float(dynamics.timescales(lam[:d], _s2_0(res)).tau[-1])
    assert res.history.t[-1] >= 1.5 * tau_d - res.dt


def _s2_0(res):
    """``||W0||_F^2 / V`` from the recorded initial singular values."""
    V = res.W.shape[0]
    return sum(s * s for s in res.history.singular_values[0]) / V


def test_half_learned_times_match_theory(full_batch_run):
    res, lam, _ = full_batch_run
    d = res.config.embed_dim
    h = res.history
    assert len(h.step) == len(h.t) == len(h.loss) == len(h.singular_values)
    assert h.step[0] == 0 and h.step[-1] == res.steps
    assert np.allclose(h.t, np.asarray(h.step) * res.dt)
    measured = dynamics.crossing_times(h.t, h.s2(), lam[:d].numpy() / 2)
    predicted = dynamics.timescales(lam[:d], _s2_0(res)).t_half.numpy()
    ratio = measured / predicted
    assert np.all(np.abs(ratio - 1) < 0.15), ratio


@pytest.mark.parametrize("loss,scheme", [("qwem", "setting31"), ("sgns", "word2vec")])
def test_minibatch_gradient_is_unbiased(loss, scheme):
    P, u = _problem(V=12)
    rw = reweighting(scheme, P, u, subsample_t=0.05)
    W = 0.5 * torch.randn(12, 2, generator=torch.Generator().manual_seed(1),
                          dtype=torch.float64)
    full = expected_grad(W, P, u, loss, reweight=rw)
    sampler = PairSampler(P, u, rw)
    gen = torch.Generator().manual_seed(2)
    grads = torch.stack([minibatch_grad(W, sampler, 400, loss, gen)[0]
                         for _ in range(400)])
    mean = grads.mean(0)
    se = grads.std(0) / math.sqrt(grads.shape[0])
    z = (mean - full).abs() / (se + 1e-15)
    assert float(z.max()) < 5.0, float(z.max())
    # ... and the estimate is informative: the standard error is small.
    assert float(se.max()) < 0.1 * float(full.abs().max())


def test_setting31_samples_pairs_uniformly_with_bounded_weights():
    # G = 1: every pair weighs the same, so pairs are drawn uniformly and weighted
    # by V^2 a and V^2 b with a = P/(P + Q) in [0, 1] and b = 1 - a.
    P, u = _problem(V=6)
    rw = reweighting("setting31", P, u)
    (pi, pj, ni, nj), wp, wn = PairSampler(P, u, rw).draw(
        200_000, torch.Generator().manual_seed(0))
    assert torch.equal(pi, ni) and torch.equal(pj, nj)
    freq = torch.bincount(pi * 6 + pj, minlength=36).double() / pi.numel()
    assert torch.allclose(freq, torch.full_like(freq, 1 / 36), atol=5e-3)
    a = P / (P + u[:, None] * u[None, :])
    assert torch.allclose(wp, 36 * a[pi, pj]) and torch.allclose(wn, 36 - wp)


def test_sampled_pairs_follow_P():
    P, u = _problem(V=6)
    rw = reweighting("uniform", P, u)
    (pi, pj, ni, nj), _, _ = PairSampler(P, u, rw).draw(
        200_000, torch.Generator().manual_seed(0))
    freq = torch.zeros(36, dtype=torch.float64).index_add_(
        0, pi * 6 + pj, torch.ones(pi.numel(), dtype=torch.float64)) / pi.numel()
    assert torch.allclose(freq, P.reshape(-1), atol=5e-3)
    fi = torch.bincount(ni, minlength=6).double() / ni.numel()
    assert torch.allclose(fi, u, atol=5e-3)


@pytest.mark.parametrize("until", [14, 17])   # a checkpoint step, and not
def test_resume_matches_uninterrupted_run(tmp_path, until):
    P, u = _problem(V=10)
    cfg = TrainConfig(embed_dim=2, init_scale=0.1, lr=0.05, steps=40, batch_size=32,
                      n_checkpoints=8, seed=3)
    ref = train(cfg, P, u, device=CPU, progress=False)
    part = train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
                 until=until)
    assert not (tmp_path / "history.json").exists()      # not complete yet
    assert not torch.equal(part.W, ref.W)
    done = train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
                 resume=True)
    assert torch.equal(done.W, ref.W)
    assert done.history.to_dict() == ref.history.to_dict()
    assert History.load(tmp_path / "history.json").to_dict() == ref.history.to_dict()
    other = TrainConfig(embed_dim=2, init_scale=0.1, lr=0.06, steps=40,
                        batch_size=32, n_checkpoints=8, seed=3)
    with pytest.raises(QwemError, match="another configuration"):
        train(other, P, u, device=CPU, progress=False, out_dir=tmp_path, resume=True)


def test_divergence_names_step_and_lr(tmp_path):
    P, u = _problem(V=10)
    cfg = TrainConfig(embed_dim=2, init_scale=1.0, lr=1e4, steps=50)
    with pytest.raises(QwemError, match=r"step \d+.*learning rate 10000.*--lr"):
        train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path)
    assert not (tmp_path / "history.json").exists()
    assert not list(tmp_path.glob("*.part*"))


def test_history_json_round_trip(tmp_path):
    h = History()
    h.append(0, 0.0, 1.5, [0.3, 0.1], None)
    h.append(10, 2.5, -0.25, [1.0, 0.5], 0.125)
    path = h.save(tmp_path / "h" / "history.json")
    back = History.load(path)
    assert back == h
    assert json.loads(path.read_text())["analogy"] == [None, 0.125]
    with pytest.raises(QwemError):
        History(step=[0], t=[], loss=[], singular_values=[], analogy=[])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(QwemError, match="not a training history"):
        History.load(tmp_path / "bad.json")


def test_auto_lr_is_stable_on_random_mstar():
    V, d = 20, 4
    g = torch.Generator().manual_seed(5)
    C = torch.rand(V, V, generator=g, dtype=torch.float64) ** 4
    P, u = pair_probs(C + C.T)
    M = _mstar(P, u)
    spec = spectrum(M, d)
    full = torch.linalg.eigvalsh(M)
    assert torch.allclose(spec.eigvals, full.flip(0)[:d], atol=1e-8)
    assert abs(spec.lam_min - float(full[0])) < 1e-8
    cfg = TrainConfig(embed_dim=d, init_scale=1e-4, max_steps=3000)
    res = train(cfg, P, u, M_star=M, device=CPU, progress=True)
    assert res.lr == pytest.approx(dynamics.stable_lr(
        spec.eigvals, lam_min=spec.lam_min, safety=cfg.lr_safety))
    assert all(math.isfinite(x) for x in res.history.loss)
    assert res.history.loss[-1] < res.history.loss[0]
    s2 = torch.linalg.svdvals(res.W) ** 2
    assert float(s2[0]) == pytest.approx(float(spec.eigvals[0]), rel=1e-3)


def test_steps_auto_is_capped_and_checkpoints_are_log_spaced():
    P, u = _problem(V=10)
    cfg = TrainConfig(embed_dim=2, init_scale=1e-8, lr=1e-3, max_steps=30,
                      n_checkpoints=5)
    res = train(cfg, P, u, device=CPU, progress=False)
    assert res.steps == 30
    assert res.history.step == checkpoint_steps(30, 5) == [0, 1, 2, 5, 13, 30]


def test_float32_minibatch_and_analogy_recording():
    P, u = _problem(V=8)
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy"]
    qs = {"family": [("king", "queen", "man", "woman")],
          "capital": [("paris", "france", "rome", "italy")]}
    cfg = TrainConfig(embed_dim=2, init_scale=0.1, lr=0.05, steps=5, batch_size=16,
                      dtype="float32", n_checkpoints=2)
    res = train(cfg, P, u, device=CPU, progress=False, words=words, questions=qs)
    assert res.W.dtype == torch.float32
    assert all(a is not None and 0.0 <= a <= 1.0 for a in res.history.analogy)


def test_bad_config_is_rejected():
    with pytest.raises(QwemError, match="unknown loss"):
        TrainConfig(loss="mse")
    with pytest.raises(QwemError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(QwemError, match="steps"):
        TrainConfig(steps="many")


@pytest.mark.parametrize("scheme", ["setting31", "uniform"])
def test_full_batch_steps_follow_expected_grad(scheme):
    """train()'s full-batch steps (the exact (W W^T - M*) W fast path under Setting
    3.1, blockwise expected_grad otherwise) equal hand-made GD steps on expected_grad,
    and the callback sees every checkpoint."""
    P, u = _problem(V=15)
    cfg = TrainConfig(reweight=scheme, embed_dim=3, init_scale=0.3, lr=0.01,
                      steps=6, n_checkpoints=6)
    seen = []
    res = train(cfg, P, u, device=CPU, progress=False,
                callback=lambda step, t, W: seen.append((step, t, W.clone())))
    assert [s for s, _, _ in seen] == res.history.step
    assert [t for _, t, _ in seen] == res.history.t
    W = seen[0][2].clone()
    rw = reweighting(scheme, P, u)
    for _ in range(6):
        W -= 0.01 * expected_grad(W, P, u, "qwem", reweight=rw)
    assert torch.allclose(res.W, W, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("loss,scheme", [("qwem", "setting31"), ("sgns", "word2vec"),
                                         ("qwem", "uniform")])
def test_minibatch_grad_equals_autograd(loss, scheme):
    """The hand-written minibatch gradient is autograd's on sampled_loss, same pairs."""
    from qwem_lib.losses import sampled_loss
    P, u = _problem(V=20)
    rw = reweighting(scheme, P, u)
    sampler = PairSampler(P, u, rw)
    W = torch.randn(20, 4, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    grad, value = minibatch_grad(W, sampler, 500, loss, torch.Generator().manual_seed(7))
    (pi, pj, ni, nj), wp, wn = sampler.draw(500, torch.Generator().manual_seed(7))
    Wg = W.clone().requires_grad_(True)
    ref = sampled_loss(Wg, pi, pj, ni, nj, loss, pos_weight=wp, neg_weight=wn)
    ref.backward()
    assert torch.allclose(grad, Wg.grad, rtol=1e-12, atol=1e-14)
    assert float(value) == pytest.approx(float(ref.detach()), rel=1e-12)


# ----------------------------------------------------------------------------------
# training in M*'s eigenbasis
# ----------------------------------------------------------------------------------

def test_eigenbasis_run_is_the_word_basis_run():
    """From the same W(0), gradient descent in M*'s eigenbasis, rotated back, is the
    word-basis run to 1e-10 of ||W||, through the learning of several modes."""
    P, u = _problem(V=40, rank=6, seed=2)
    M = _mstar(P, u)
    lam = torch.linalg.eigvalsh(M).flip(0)
    runs = {}
    for basis in ("word", "eigen"):
        cfg = TrainConfig(embed_dim=5, init_scale=1e-8, lr=0.01, steps="auto",
                          n_checkpoints=40, basis=basis)
        runs[basis] = train(cfg, P, u, M_star=M, device=CPU, progress=False)
    word, eig = runs["word"], runs["eigen"]
    assert word.steps == eig.steps > 100
    rel = float((eig.W - word.W).norm() / word.W.norm())
    assert rel < 1e-10, rel
    # ... along the whole run, not only at its end
    sw, se = np.asarray(word.history.singular_values), \
        np.asarray(eig.history.singular_values)
    assert np.allclose(se, sw, rtol=1e-9, atol=1e-12 * sw.max())
    np.testing.assert_allclose(eig.history.loss, word.history.loss, rtol=1e-10)
    # the recorded loss (Theorem 1's identity after one direct evaluation) is the
    # expected loss itself
    from qwem_lib.losses import expected_loss
    direct = float(expected_loss(eig.W, P, u, "qwem", reweight=reweighting(
        "setting31", P, u)))
    assert math.isclose(eig.history.loss[-1], direct, rel_tol=1e-10)
    assert eig.history.loss[-1] < eig.history.loss[0]
    # several modes passed their half-learned times during the run
    half = dynamics.crossing_times(word.history.t, word.history.s2(),
                                   lam[:5].numpy() / 2)
    assert np.isfinite(half).sum() >= 3, half
    assert float(word.history.s2()[0].max()) < 1e-6 * float(lam[0])  # from small init


def test_eigenbasis_resume_and_errors(tmp_path):
    P, u = _problem(V=20, rank=4, seed=1)
    cfg = TrainConfig(embed_dim=3, init_scale=1e-4, lr=0.02, steps=60,
                      n_checkpoints=6, basis="eigen")
    ref = train(cfg, P, u, device=CPU, progress=False)
    train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path, until=25)
    done = train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
                 resume=True)
    assert torch.equal(done.W, ref.W)
    assert done.history.to_dict() == ref.history.to_dict()
    # the word-basis run's checkpoint is another configuration
    with pytest.raises(QwemError, match="another configuration"):
        train(TrainConfig(embed_dim=3, init_scale=1e-4, lr=0.02, steps=60,
                          n_checkpoints=6, basis="word"), P, u, device=CPU,
              progress=False, out_dir=tmp_path, resume=True)
    for bad in (dict(batch_size=16), dict(loss="sgns"), dict(reweight="uniform")):
        with pytest.raises(QwemError, match="basis='eigen' needs"):
            train(TrainConfig(embed_dim=3, steps=2, lr=0.01, basis="eigen", **bad),
                  P, u, device=CPU, progress=False)
    with pytest.raises(QwemError, match="basis must be"):
        TrainConfig(basis="fourier")


def test_eigenbasis_is_cached_by_content(isolated_cache, monkeypatch):
    from qwem_lib.spectral import eigenbasis
    P, u = _problem(V=30)
    M = _mstar(P, u)
    lam, U = eigenbasis(M, cache=True)
    assert torch.all(lam[:-1] >= lam[1:])
    assert torch.allclose(U @ torch.diag(lam) @ U.T, M, atol=1e-12)
    folder = os.path.join(os.environ["QWEM_CACHE"], "eigenbasis")
    files = os.listdir(folder)
    assert len(files) == 1
    import scipy.linalg
    calls = []
    real = scipy.linalg.eigh
    monkeypatch.setattr(scipy.linalg, "eigh",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    lam2, U2 = eigenbasis(M, cache=True)  # read back, not recomputed
    assert not calls and torch.equal(lam2, lam) and torch.equal(U2, U)
    M2 = M.clone()
    M2[0, 1] = M2[1, 0] = M[0, 1] + 1e-9  # another matrix: another entry
    eigenbasis(M2, cache=True)
    assert calls and len(os.listdir(folder)) == 2
    path = os.path.join(folder, files[0])
    with open(path, "r+b") as f:  # a truncated entry is recomputed, not fatal
        f.truncate(100)
    lam3, _ = eigenbasis(M, cache=True)
    assert torch.allclose(lam3, lam, rtol=0, atol=1e-12)
