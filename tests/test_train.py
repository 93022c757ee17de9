"""The trainer: convergence, timescales, unbiased minibatches, resume, divergence."""

import json
import math
import os

import numpy as np
import pytest
import torch

from qwem_lib import dynamics
from qwem_lib.losses import expected_grad, reweighting
from qwem_lib.runtime.errors import QwemError
from qwem_lib.runtime.history import History
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
    with pytest.raises(QwemError, match="belongs to another run: lr is 0.05 there "
                                        "and 0.06 here; resume with the same"):
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
    grad, value = minibatch_grad(W, sampler, 500, loss,
                                 torch.Generator().manual_seed(7))
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
    with pytest.raises(QwemError, match="another run: basis is 'eigen' there and "
                                        "'word' here"):
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
    from qwem_lib.runtime.cache import CacheWarning
    with pytest.warns(CacheWarning, match="damaged cache entry"):
        lam3, _ = eigenbasis(M, cache=True)
    assert torch.allclose(lam3, lam, rtol=0, atol=1e-12)


def test_eigenbasis_reports_the_seconds_of_the_run_that_computed_it(isolated_cache,
                                                                    monkeypatch):
    """timings: the decomposition's own seconds, and on a read-back those stored
    with the entry (the cost where it was paid), not the seconds of the read."""
    import qwem_lib.spectral as spectral
    P, u = _problem(V=30)
    M = _mstar(P, u)
    clock = iter([100.0, 107.5])   # the decomposition "takes" 7.5 s

    class FakeTime:
        @staticmethod
        def perf_counter():
            return next(clock)
    monkeypatch.setattr(spectral, "time", FakeTime)
    first = {}
    spectral.eigenbasis(M, cache=True, timings=first)
    assert first == {"eigenbasis": 7.5, "eigenbasis cached": False}
    again = {}                     # read back: the clock is not consulted
    spectral.eigenbasis(M, cache=True, timings=again)
    assert again == {"eigenbasis": 7.5, "eigenbasis cached": True}


def test_train_uses_a_given_eigendecomposition(monkeypatch):
    """eigendecomposition=: the same run as train's own decomposition, without
    decomposing M* again; a pair that is not M*'s whole basis is refused."""
    import scipy.linalg

    from qwem_lib.spectral import eigenbasis
    from qwem_lib.train import trains_in_eigenbasis
    P, u = _problem(V=30)
    M = _mstar(P, u)
    cfg = TrainConfig(embed_dim=3, init_scale=1e-4, lr=0.02, steps=50,
                      n_checkpoints=5)
    assert trains_in_eigenbasis(cfg, u)
    assert not trains_in_eigenbasis(TrainConfig(embed_dim=3, basis="word"), u)
    assert not trains_in_eigenbasis(TrainConfig(embed_dim=3, batch_size=8), u)
    assert not trains_in_eigenbasis(TrainConfig(embed_dim=3, loss="sgns"), u)
    own = train(cfg, P, u, M_star=M, device=CPU, progress=False, cache=False)
    basis = eigenbasis(M, cache=False)
    calls = []
    real = scipy.linalg.eigh
    monkeypatch.setattr(scipy.linalg, "eigh",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    given = train(cfg, P, u, M_star=M, device=CPU, progress=False, cache=False,
                  eigendecomposition=basis)
    assert not calls
    torch.testing.assert_close(given.W, own.W, rtol=0, atol=0)
    lam, U = basis
    for bad, why in (((lam[:-1], U[:, :-1]), "all 30 eigenpairs"),
                     ((lam.flip(0), U.flip(1)), "descending"),
                     ((lam,), "a pair")):
        with pytest.raises(QwemError, match=why):
            train(cfg, P, u, M_star=M, device=CPU, progress=False,
                  eigendecomposition=bad)


# ----------------------------------------------------------------------------------
# resume continues the same run, or is refused naming what differs
# ----------------------------------------------------------------------------------

_RUN = dict(window=3, scheme="text8", vocab_size=10, corpus="sha256:" + "ab" * 32)


def _interrupted(tmp_path, **kw):
    """A minibatch run on _problem(V=10) stopped at step 17, with run_info."""
    P, u = _problem(V=10)
    cfg = TrainConfig(embed_dim=2, init_scale=0.1, lr=0.05, steps=40, batch_size=32,
                      n_checkpoints=8, seed=3)
    train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path, until=17,
          run_info=_RUN, **kw)
    return cfg, P, u


def test_resume_with_run_info_is_bitwise(tmp_path):
    cfg, P, u = _interrupted(tmp_path)
    ref = train(cfg, P, u, device=CPU, progress=False)
    done = train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path, resume=True,
                 run_info=dict(_RUN))
    assert torch.equal(done.W, ref.W)
    assert done.history.to_dict() == ref.history.to_dict()


@pytest.mark.parametrize("change,expected", [
    (dict(window=16), "window is 3 there and 16 here"),
    (dict(corpus="sha256:" + "cd" * 32), "the corpus differs"),
    (dict(scheme="auto", window=5),
     "window is 3 there and 5 here, scheme is 'text8' there and 'auto' here"),
])
def test_resume_with_other_run_info_is_refused(tmp_path, change, expected):
    cfg, P, u = _interrupted(tmp_path)
    with pytest.raises(QwemError) as e:
        train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path, resume=True,
              run_info={**_RUN, **change})
    assert str(e.value) == (
        f"the checkpoint {tmp_path / 'checkpoint.npz'} belongs to another run: "
        f"{expected}; resume with the same settings, or start afresh with "
        "overwrite=True (--overwrite) instead of resuming")


@pytest.mark.parametrize("change,expected", [
    (dict(lr=0.06), "lr is 0.05 there and 0.06 here"),
    (dict(seed=4, n_checkpoints=9), "seed is 3 there and 4 here, n_checkpoints is 8 "
                                    "there and 9 here"),
    (dict(dtype="float32"), "dtype is 'float64' there and 'float32' here"),
])
def test_resume_with_another_config_names_the_setting(tmp_path, change, expected):
    cfg, P, u = _interrupted(tmp_path)
    other = TrainConfig(**{**cfg.to_dict(), **change})
    with pytest.raises(QwemError, match=f"another run: {expected};"):
        train(other, P, u, device=CPU, progress=False, out_dir=tmp_path, resume=True,
              run_info=_RUN)


def test_resume_on_other_data_is_refused(tmp_path):
    cfg, P, u = _interrupted(tmp_path)
    Q = P.clone()
    Q[0, 1] += 1e-12  # the same shape and nearly the same numbers
    with pytest.raises(QwemError, match=r"another run: the data \(corpus statistics\) "
                                        r"differ; resume with the same settings"):
        train(cfg, Q, u, device=CPU, progress=False, out_dir=tmp_path, resume=True,
              run_info=_RUN)


def test_resume_with_another_vocabulary_is_refused_before_shapes(tmp_path):
    cfg, _, _ = _interrupted(tmp_path)
    P, u = _problem(V=12)
    with pytest.raises(QwemError, match=r"another run: vocab_size is 10 there and 12 "
                                        r"here, the data \(corpus statistics\) "
                                        r"differ;"):
        train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path, resume=True,
              run_info=_RUN)


@pytest.mark.parametrize("cut", [0, 1, 100, 1000, -300, -22, -1])
def test_resume_from_a_truncated_checkpoint_is_one_line(tmp_path, cut):
    cfg, P, u = _interrupted(tmp_path)
    ck = tmp_path / "checkpoint.npz"
    ck.write_bytes(ck.read_bytes()[:cut])
    with pytest.raises(QwemError, match=r"cannot read the checkpoint .*checkpoint\.npz"
                                        r": .*; delete it to start afresh "
                                        r"\(overwrite=True, --overwrite\)") as e:
        train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path, resume=True,
              run_info=_RUN)
    assert "\n" not in str(e.value)


def test_resume_from_a_checkpoint_with_wrong_arrays_is_one_line(tmp_path):
    """The right meta but a W of another shape, or an unreadable history: damaged."""
    from qwem_lib.runtime.history import save_checkpoint
    cfg, P, u = _interrupted(tmp_path)
    ck = tmp_path / "checkpoint.npz"
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    for bad, match in ((dict(W=np.zeros((10, 3))), r"W is float64 \(10, 3\)"),
                       (dict(history=np.array("[1, 2")), "history is unreadable"),
                       (dict(step=np.int64(99)), "do not fit together"),
                       (dict(rng_state=np.zeros(3, np.uint8)), "random-number state")):
        save_checkpoint(ck, meta, **{**arrays, **bad})
        with pytest.raises(QwemError, match=f"cannot read the checkpoint .*{match}"):
            train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
                  resume=True, run_info=_RUN)


def test_a_new_run_does_not_mix_with_another(tmp_path):
    cfg, P, u = _interrupted(tmp_path)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(QwemError, match=r"already holds a run \(checkpoint\.npz\); "
                                        r"use resume=True \(--resume\)"):
        train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    (tmp_path / "notes.txt").write_text("keep me")
    ref = train(cfg, P, u, device=CPU, progress=False)
    res = train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
                overwrite=True)
    assert torch.equal(res.W, ref.W)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert History.load(tmp_path / "history.json").to_dict() == ref.history.to_dict()


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    P, u = _problem(V=10)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(QwemError, match="is a file; give a folder"):
        train(TrainConfig(embed_dim=2, steps=2, lr=0.01), P, u, device=CPU,
              progress=False, out_dir=f)


def test_bad_run_info_and_until_are_refused(tmp_path):
    P, u = _problem(V=10)
    cfg = TrainConfig(embed_dim=2, steps=2, lr=0.01)
    with pytest.raises(QwemError, match="run_info must be a dict of JSON values"):
        train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
              run_info={"x": object()})
    with pytest.raises(QwemError, match="run_info must be a dict"):
        train(cfg, P, u, device=CPU, progress=False, run_info=["window", 3])
    with pytest.raises(QwemError, match="until must be an integer >= 0, got -1"):
        train(cfg, P, u, device=CPU, progress=False, until=-1)
    with pytest.raises(QwemError, match=r"unigram must be a \(10,\) tensor"):
        train(cfg, P, u[:9], device=CPU, progress=False)


# ----------------------------------------------------------------------------------
# options: type, finiteness and range, one line naming the option and its flag
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(init_scale=0.0), "init_scale (--init-scale) must be a finite number > 0, "
                           "got 0.0"),
    (dict(init_scale=-1e-3), "init_scale (--init-scale) must be a finite number > 0"),
    (dict(init_scale=float("nan")), "init_scale (--init-scale) must be a finite"),
    (dict(lr=float("inf")), "lr (--lr) must be a finite number > 0 or 'auto', got inf"),
    (dict(lr=0), "lr (--lr) must be a finite number > 0 or 'auto', got 0"),
    (dict(lr="fast"), "lr (--lr) must be a finite number > 0 or 'auto', got 'fast'"),
    (dict(negatives=float("inf")), "negatives (--negatives) must be a finite number "
                                   "> 0, got inf"),
    (dict(negatives=0.0), "negatives (--negatives) must be a finite number > 0"),
    (dict(subsample_t=-1e-5), "subsample_t must be a finite number > 0"),
    (dict(steps=0), "steps (--steps) must be an integer >= 1 or 'auto', got 0"),
    (dict(steps=10.0), "steps (--steps) must be an integer >= 1 or 'auto', got 10.0"),
    (dict(steps=True), "steps (--steps) must be an integer >= 1 or 'auto', got True"),
    (dict(batch_size=0), "batch_size (--batch-size) must be an integer >= 1 or None "
                         "(None: full batch), got 0"),
    (dict(embed_dim=np.float64(2.0)), "embed_dim (--dim) must be an integer >= 1, "
                                      "got 2.0"),
    (dict(n_checkpoints=0), "n_checkpoints (--checkpoints) must be an integer >= 1"),
    (dict(max_steps=-5), "max_steps (--max-steps) must be an integer >= 1, got -5"),
    (dict(seed=10**23), "seed (--seed) must be an integer from 0 to "
                        "9,223,372,036,854,775,807, got 100000000000000000000000"),
    (dict(seed=-1), "seed (--seed) must be an integer from 0 to"),
    (dict(seed=1.5), "seed (--seed) must be an integer from 0 to"),
    (dict(dtype="float16"), "unknown dtype (--dtype) 'float16'; use one of float64, "
                            "float32"),
    (dict(loss="mse"), "unknown loss (--loss) 'mse'; use one of qwem, sgns"),
    (dict(time_factor=float("inf")), "time_factor must be a finite number > 0"),
    (dict(lr_safety=1.0), "lr_safety must be a finite number > 0 and < 1, got 1.0"),
])
def test_train_config_options_are_checked(kwargs, message):
    with pytest.raises(QwemError) as e:
        TrainConfig(**kwargs)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_train_config_accepts_numpy_numbers_as_python_ones():
    cfg = TrainConfig(embed_dim=np.int64(3), init_scale=np.float32(0.5),
                      lr=np.float64(0.1), steps=np.int32(7), batch_size=np.uint16(8),
                      seed=np.int64(2**63 - 1), n_checkpoints=np.int8(4),
                      negatives=np.int64(2), max_steps=np.int64(10))
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON
    for name in ("embed_dim", "steps", "batch_size", "seed", "n_checkpoints",
                 "max_steps"):
        assert type(d[name]) is int, name
    for name in ("init_scale", "lr", "negatives"):
        assert type(d[name]) is float, name
    assert d["seed"] == 2**63 - 1 and d["init_scale"] == 0.5
    P, u = _problem(V=10)
    res = train(TrainConfig(embed_dim=np.int64(2), steps=np.int64(3), lr=0.01,
                            seed=np.int64(2**63 - 1)), P, u, device=CPU,
                progress=False)
    assert torch.isfinite(res.W).all()


def test_huge_negatives_do_not_give_nan_embeddings():
    with pytest.raises(QwemError, match="negatives"):
        TrainConfig(negatives=float("inf"))
    P, u = _problem(V=10)
    with pytest.raises(QwemError, match="negatives"):
        reweighting("setting31", P, u, negatives=float("inf"))


def test_refusals_come_before_out_dir_is_touched(tmp_path):
    """A run refused for its settings leaves another run's files as they were, even
    with overwrite=True."""
    _interrupted(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    P, u = _problem(V=10)
    for cfg in (TrainConfig(embed_dim=2, steps=2, lr=0.01, batch_size=8,
                            basis="eigen"),
                TrainConfig(embed_dim=10, steps=2, lr=0.01)):
        with pytest.raises(QwemError):
            train(cfg, P, u, device=CPU, progress=False, out_dir=tmp_path,
                  overwrite=True)
    with pytest.raises(QwemError, match="--device"):
        train(TrainConfig(embed_dim=2, steps=2, lr=0.01), P, u, device="gpu",
              progress=False, out_dir=tmp_path, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
