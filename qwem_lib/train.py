"""Training QWEM (or SGNS) embeddings by gradient descent, with checkpoints and history.

Karkada et al., arXiv 2502.09863.  One trainer, two modes, sharing
:class:`qwem_lib.runtime.history.History` and the checkpoint format
(:mod:`qwem_lib.runtime.history`):

* **full batch** (``batch_size=None``): gradient descent on the expected loss
  ``L(W) = sum_ij Ψ+ P_ij l+(x_ij) + k sum_ij Ψ- Q_ij l-(x_ij)``
  (:func:`qwem_lib.losses.expected_grad`).  For QWEM under Setting 3.1 (``G = g = 1``)
  ``∇L = (W W^T - M*) W`` exactly, so a step of size η is an Euler step of the flow
  ``dW/dt = -½(W W^T - M*) W`` of length ``Δt = 2η`` (paper's flow,
  :func:`qwem_lib.dynamics.flow_time_per_step`).  :func:`train` uses that exact
  gradient ``(W W^T - M*) W`` there, by default in M*'s eigenbasis
  (``TrainConfig.basis``; the eigendecomposition,
  :func:`qwem_lib.spectral.eigenbasis`, is cached); every other full-batch
  configuration evaluates :func:`qwem_lib.losses.expected_grad` in row blocks.
* **minibatch SGD** (``batch_size=B``): B positive pairs ``(i, j) ~ P_ij`` and B
  negative pairs ``i ~ P_i, j ~ n_j`` (the reweighting's negative distribution) per
  step, weighted by :meth:`qwem_lib.losses.Reweighting.pair_weights`, loss
  :func:`qwem_lib.losses.sampled_loss`, plain SGD on the tied W.  The estimator is
  unbiased: ``E[sampled_loss] = expected_loss`` for every W, so its gradient has the
  full-batch gradient as its mean, and one step advances the same flow time
  ``Δt = 2 η c`` in expectation (the noise averages out over the many steps a mode
  takes to grow).

The loss scale c (``F ≈ c · ¼||W W^T - M*||^2 + const``) is 1 for QWEM and ½ for SGNS
(whose Taylor expansion is half the quartic loss, see :mod:`qwem_lib.losses`); the
flow time is exact for QWEM under Setting 3.1 and nominal for the uniform and word2vec
reweightings, whose pair weights G are not constant.

Checkpoints are taken at log-spaced steps (plus step 0); each records the expected
loss, the flow time, the singular values of W and, if ``words`` are given, the analogy
accuracy (:func:`qwem_lib.evaluate.analogy_paper`).  With ``out_dir`` the full state
(W, step, RNG state, history) is written atomically to ``out_dir/checkpoint.npz`` at
every checkpoint, and ``resume=True`` continues from it bit for bit; the checkpoint
records the configuration, the device, the caller's ``run_info`` and a SHA-256 of
P_ij and the unigram, and a resume with any of them different is refused naming
what differs (:func:`qwem_lib.runtime.history.load_checkpoint`).  A folder holding
another run's files is refused unless ``resume`` or ``overwrite``
(:func:`qwem_lib.runtime.history.prepare_run_dir`), and a run whose dense work would
not fit in memory is refused before it starts (:mod:`qwem_lib.runtime.memory`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .dynamics import (flow_time_per_step, init_projection, random_init, stable_lr,
                       timescales)
from .kernels.threads import torch_threads, torch_threads_for
from .losses import (LOSSES, REWEIGHTINGS, Reweighting, _funcs, check_subsample,
                     expected_grad, expected_loss, reweighting)
from .runtime._repr import short_repr
from .runtime.devices import default_device
from .runtime.errors import QwemError
from .runtime.history import (DTYPES, HISTORY, History, data_fingerprint,
                              diverged_error, open_run_dir, save_checkpoint)
from .runtime.memory import require_dense
from .runtime.options import check_choice, check_int, check_real, check_seed
from .spectral import eigenbasis, top_eigh

__all__ = ["TrainConfig", "Spectrum", "spectrum", "loss_scale", "resolve_lr",
           "resolve_steps", "checkpoint_steps", "sample_pairs", "PairSampler",
           "minibatch_grad", "train", "trains_in_eigenbasis"]

BASES = ("auto", "eigen", "word")


# ----------------------------------------------------------------------------------
# option checks (shared with qwem_lib.word2vec)
# ----------------------------------------------------------------------------------
def check_init_range(init_scale: float, dtype: str, usual: str) -> None:
    """Refuse an init scale whose square (the initial scale of the products w . c,
    W W^T) is not a normal number of ``dtype``, or whose loss, ~ S^4 V^2 for V up to
    1e6, overflows it; ``usual`` ends the message (the scales people use)."""
    info = torch.finfo(DTYPES.get(dtype, torch.float32))
    lo, hi = math.sqrt(info.tiny), (info.max / 1e12) ** 0.25
    if not lo <= init_scale <= hi:
        raise QwemError(
            f"init_scale (--init-scale) must be from {lo:.2g} to {hi:.2g} in {dtype}, "
            f"got {init_scale:g}: "
            + ("its square underflows to 0, and W = 0 never trains"
               if init_scale < lo else "the products W W^T and the loss overflow")
            + f"; {usual}")


# ----------------------------------------------------------------------------------
# configuration and result
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (paper's setup).

    Attributes
    ----------
    loss : {"qwem", "sgns"}
    reweight : {"setting31", "word2vec", "uniform"}
        Pair reweighting (:func:`qwem_lib.losses.reweighting`).
    embed_dim : int
        d.
    init_scale : float
        Init entries ``N(0, (init_scale/√d)^2)`` (paper: 1e-12, or 0.1 word2vec-like).
    lr : float or "auto"
        Learning rate; ``"auto"``: :func:`resolve_lr` (stable from M*'s spectrum).
    steps : int or "auto"
        Number of steps; ``"auto"``: :func:`resolve_steps` (until the d-th mode is
        learned), capped at ``max_steps``.
    batch_size : int or None
        Positive (and as many negative) pairs per step; None: full batch.
    seed : int
        Seeds the init and the pair sampler (one ``torch.Generator``).
    dtype : {"float64", "float32"}
    n_checkpoints : int
        Log-spaced checkpoints (besides step 0).
    negatives : float
        k, the weight of the negative term.
    subsample_t : float
        word2vec reweighting's subsampling threshold.
    max_steps : int
        Cap on ``steps="auto"``.
    time_factor : float
        ``steps="auto"`` runs to flow time ``time_factor · τ_d``.
    lr_safety : float
        Fraction of the stability limit used by ``lr="auto"``.
    basis : {"auto", "eigen", "word"}
        Where full-batch QWEM under Setting 3.1 takes its steps.  ``"eigen"``: in
        M*'s eigenbasis, ``W~ = U^T W`` with ``M* = U Λ U^T``, where a step is
        ``W~ -= η (W~ W~^T - Λ) W~`` at O(V d^2) instead of O(V^2 d); gradient
        descent is rotation-equivariant, so it is the same trajectory, rotated back
        wherever W is looked at (checkpoints, the result).  ``"word"``: the step
        ``W -= η (W W^T - M*) W`` itself.  ``"auto"``: the eigenbasis wherever the
        gradient is exactly that (full batch, QWEM, Setting 3.1), else the word
        basis (the other losses and reweightings have no such change of variables).

    Every field is checked when the config is made (type, finiteness, range; one
    :class:`~qwem_lib.runtime.errors.QwemError` line naming the option and its
    command-line flag); numpy numbers are accepted and stored as Python ints and
    floats, so :meth:`to_dict` is plain JSON.
    """

    loss: str = "qwem"
    reweight: str = "setting31"
    embed_dim: int = 2
    init_scale: float = 1e-8
    lr: float | str = "auto"
    steps: int | str = "auto"
    batch_size: int | None = None
    seed: int = 0
    dtype: str = "float64"
    n_checkpoints: int = 50
    negatives: float = 1.0
    subsample_t: float = 1e-5
    max_steps: int = 1_000_000
    time_factor: float = 1.5
    lr_safety: float = 0.125
    basis: str = "auto"

    def __post_init__(self):
        def choice(name, flag, allowed):
            check_choice(getattr(self, name), name, allowed, flag)

        def put(name, value):
            object.__setattr__(self, name, value)

        choice("loss", "--loss", LOSSES)
        choice("reweight", "--reweight", REWEIGHTINGS)
        choice("dtype", "--dtype", tuple(DTYPES))
        if self.basis not in BASES:
            raise QwemError(f"basis must be one of {', '.join(BASES)}, got "
                            f"{self.basis!r} (--word-basis sets 'word')")
        for name, flag in (("embed_dim", "--dim"), ("n_checkpoints", "--checkpoints"),
                           ("max_steps", "--max-steps")):
            put(name, check_int(getattr(self, name), name, flag))
        put("seed", check_seed(self.seed))
        if self.steps != "auto":
            put("steps", check_int(self.steps, "steps", "--steps", auto=True))
        if self.batch_size is not None:
            put("batch_size", check_int(self.batch_size, "batch_size", "--batch-size",
                                        none="None: full batch"))
        if self.lr != "auto":
            put("lr", check_real(self.lr, "lr", "--lr", gt=0, auto=True))
        put("init_scale", check_real(self.init_scale, "init_scale", "--init-scale",
                                     gt=0, why="W = 0 never trains"))
        check_init_range(self.init_scale, self.dtype,
                         "the paper uses 1e-8 (small init) or 0.1")
        put("negatives", check_real(self.negatives, "negatives", "--negatives", gt=0))
        put("subsample_t", check_real(self.subsample_t, "subsample_t", None, gt=0))
        check_subsample(self.subsample_t, "subsample_t")
        put("time_factor", check_real(self.time_factor, "time_factor", None, gt=0))
        put("lr_safety", check_real(self.lr_safety, "lr_safety", None, gt=0, lt=1))

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`qwem_lib.train.train`.

    Attributes
    ----------
    W : (V, d) tensor
        Final embeddings (on the training device).
    history : History
    lr : float
        The learning rate used (resolved if ``"auto"``).
    steps : int
        The number of steps run (resolved if ``"auto"``).
    dt : float
        Flow time per step.
    config : TrainConfig
    """

    __repr__ = short_repr

    W: torch.Tensor
    history: History
    lr: float
    steps: int
    dt: float
    config: TrainConfig


# ----------------------------------------------------------------------------------
# learning rate, number of steps, checkpoints
# ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Spectrum:
    """The part of M*'s spectrum the defaults need.

    Attributes
    ----------
    eigvals : (d,) float64 tensor
        Top-d eigenvalues, descending.
    lam_min : float
        Smallest (most negative) eigenvalue.
    """

    __repr__ = short_repr

    eigvals: torch.Tensor
    lam_min: float


def spectrum(M_star: torch.Tensor, d: int) -> Spectrum:
    """Top-d and smallest eigenvalues of M* (:func:`qwem_lib.spectral.top_eigh`).

    The smallest algebraic eigenvalue is the largest of ``-M*``.  Tiny matrices
    (``d + 1 >= V``) use a dense eigensolver.
    """
    V = M_star.shape[0]
    M = M_star.to(torch.float64)
    if d + 1 >= V:
        ev = torch.linalg.eigvalsh(M).flip(0)
        return Spectrum(ev[:d].cpu(), float(ev[-1]))
    top = top_eigh(M, d).eigvals.cpu()
    low = -float(top_eigh(-M, 1).eigvals[0])
    return Spectrum(top, low)


def loss_scale(loss: str) -> float:
    """c in ``F ≈ c · ¼||W W^T - M*||^2``: 1 for QWEM, ½ for SGNS (near W = 0)."""
    return 1.0 if loss == "qwem" else 0.5


def resolve_lr(config: TrainConfig, spec: Spectrum | None) -> float:
    """The configured lr, or :func:`qwem_lib.dynamics.stable_lr` for ``"auto"``.

    A finite step lags the flow: a growing mode is multiplied by ``(1 + lr c λ)^2``
    per step instead of ``e^{2 lr c λ}``, so the learning times lag the flow's by
    about ``lr c λ / 2``.  The default ``lr_safety = 1/8`` keeps ``lr c λ_1`` small
    enough that they agree to a few per cent (measured at V = 2,000, d = 20 on
    wiki2015-text8: half-learned-time ratios 1.03-1.10 for the top 10 modes, against
    1.06-1.23 at ``lr_safety = 1/2``, which takes a quarter of the steps).
    """
    if config.lr != "auto":
        return float(config.lr)
    return stable_lr(spec.eigvals, lam_min=spec.lam_min,
                     loss_scale=loss_scale(config.loss), safety=config.lr_safety)


def resolve_steps(config: TrainConfig, spec: Spectrum | None, s2_0: float,
                  dt: float) -> int:
    """The configured steps, or enough to reach ``time_factor · τ_d`` (≤ max_steps).

    ``τ_d = ln(λ_d / s_d^2(0)) / λ_d`` with the d-th mode's starting value
    ``s_d^2(0) = ||W0||_F^2 / (V d)``: the projection ``||W0||_F^2 / V`` of W0 on a
    fixed direction (:func:`~qwem_lib.dynamics.init_projection`), of which the d - 1
    modes learned before leave the fraction 1/d
    (:func:`~qwem_lib.dynamics.sequential_init_projection`; without it a large
    initial scale stops the last modes short).  If ``λ_d ≤ 0`` the d-th mode is never
    learned and ``max_steps`` is used.
    """
    if config.steps != "auto":
        return int(config.steps)
    d = spec.eigvals.numel()
    tau = float(timescales(spec.eigvals[-1:], max(s2_0 / d, 1e-300),
                           allow_nonpositive=True).tau[0])
    if not math.isfinite(tau):
        return int(config.max_steps)
    n = math.ceil(config.time_factor * max(tau, 0.0) / dt)
    return int(min(max(n, 1), config.max_steps))


def checkpoint_steps(steps: int, n: int) -> list[int]:
    """Step 0, then ``n`` log-spaced steps up to ``steps`` (deduplicated, sorted)."""
    pts = np.unique(np.round(np.logspace(0, np.log10(max(steps, 1)), n)).astype(int))
    return sorted({0, int(steps), *(int(p) for p in pts if 1 <= p <= steps)})


# ----------------------------------------------------------------------------------
# the minibatch estimator
# ----------------------------------------------------------------------------------

def _cdf(p: torch.Tensor) -> torch.Tensor:
    c = torch.cumsum(p.reshape(-1).to(torch.float64), 0)
    return c / c[-1]


def _draw(cdf: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, dtype=torch.float64, device=cdf.device, generator=generator)
    return torch.searchsorted(cdf, u, right=True).clamp_max_(cdf.numel() - 1)


def sample_pairs(pair_cdf: torch.Tensor, uni_cdf: torch.Tensor,
                 neg_cdf: torch.Tensor, batch_size: int,
                 generator: torch.Generator):
    """Draw B positive pairs ``(i, j) ~ P_ij`` and B negatives ``i ~ P_i, j ~ n_j``.

    Inverse-CDF sampling: uniform draws located in a cumulative sum with
    ``torch.searchsorted`` (``right=True`` skips zero-probability entries).

    Parameters
    ----------
    pair_cdf : (V*V,) float64
        Normalised cumulative sum of the flattened ``P_ij``.
    uni_cdf, neg_cdf : (V,) float64
        Cumulative sums of the unigram and of the negative distribution.
    batch_size : int
    generator : torch.Generator on the cdfs' device

    Returns
    -------
    pos_i, pos_j, neg_i, neg_j : (B,) int64 tensors
    """
    V = uni_cdf.numel()
    flat = _draw(pair_cdf, batch_size, generator)
    pos_i, pos_j = flat // V, flat % V
    neg_i = _draw(uni_cdf, batch_size, generator)
    neg_j = _draw(neg_cdf, batch_size, generator)
    return pos_i, pos_j, neg_i, neg_j


class PairSampler:
    """Minibatches of positive and negative pairs with their reweighting weights.

    Parameters
    ----------
    P_ij : (V, V) tensor
    unigram : (V,) tensor
    rw : Reweighting
        Gives the negative distribution and :meth:`~Reweighting.pair_weights`.
    """

    def __init__(self, P_ij, unigram, rw: Reweighting):
        self.P, self.uni, self.rw = P_ij, unigram, rw
        # Setting 3.1 (G = Ψ+ P + Ψ- kQ = 1) weights every pair equally: the loss is
        # sum_ij [a_ij q+(x_ij) + b_ij q-(x_ij)] with a = P/(P + kQ), b = kQ/(P + kQ)
        # in [0, 1].  Drawing pairs uniformly and weighting by V^2 a, V^2 b gives
        # bounded weights; drawing positives from P_ij instead needs importance
        # weights 1/(P + kQ), unbounded for rare pairs (SGD then diverges).
        self.uniform = rw.inverse_g
        if not self.uniform:
            self.pair_cdf = _cdf(P_ij)
            self.uni_cdf = _cdf(unigram)
            self.neg_cdf = (self.uni_cdf if rw.neg_dist is unigram
                            else _cdf(rw.neg_dist))

    def draw(self, batch_size: int, generator: torch.Generator):
        """``(pos_i, pos_j, neg_i, neg_j), weights at positives, at negatives``.

        Unbiased: the weighted sample means of the per-pair losses have the expected
        loss of :func:`qwem_lib.losses.expected_loss` as their sum's expectation.
        """
        if self.uniform:
            V = self.uni.numel()
            flat = torch.randint(0, V * V, (batch_size,), device=self.P.device,
                                 generator=generator)
            i, j = flat // V, flat % V
            psi, _ = self.rw.pair_weights(self.P, self.uni, i, j, i, j)
            a = self.P[i, j] * psi           # P Ψ; and b = kQ Ψ = 1 - a, as G = 1
            return (i, j, i, j), V * V * a, V * V * (1.0 - a)
        pairs = sample_pairs(self.pair_cdf, self.uni_cdf, self.neg_cdf, batch_size,
                             generator)
        wp, wn = self.rw.pair_weights(self.P, self.uni, *pairs)
        return pairs, wp, wn


def minibatch_grad(W: torch.Tensor, sampler: "PairSampler", batch_size: int, loss: str,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of :func:`qwem_lib.losses.sampled_loss` on one fresh minibatch.

    Written out by hand for tied weights (``x_b = w_i · w_j``): each pair adds
    ``c_b w_j`` to row i and ``c_b w_i`` to row j, with ``c_b`` the weighted loss
    derivative over the batch size; a pair drawn as both positive and negative
    (Setting 3.1's uniform draws) is gathered once.  Twice as fast as autograd
    through the gathers on CPU; the test suite checks it against autograd.

    Returns
    -------
    grad : (V, d) tensor
        An unbiased estimate of :func:`qwem_lib.losses.expected_grad`.
    value : scalar tensor
        The minibatch loss.
    """
    (pi, pj, ni, nj), wp, wn = sampler.draw(batch_size, generator)
    lpos, lneg, dpos, dneg = _funcs(loss)
    wp, wn = wp.to(W.dtype), wn.to(W.dtype)
    grad = torch.zeros_like(W)
    with torch.no_grad():
        Wi, Wj = W[pi], W[pj]
        x = (Wi * Wj).sum(-1)
        if pi is ni and pj is nj:
            value = (wp * lpos(x)).mean() + (wn * lneg(x)).mean()
            c = (wp * dpos(x) + wn * dneg(x)) / pi.numel()
            _scatter_pairs(grad, pi, pj, c, Wi, Wj)
        else:
            Ni, Nj = W[ni], W[nj]
            xn = (Ni * Nj).sum(-1)
            value = (wp * lpos(x)).mean() + (wn * lneg(xn)).mean()
            _scatter_pairs(grad, pi, pj, wp * dpos(x) / pi.numel(), Wi, Wj)
            _scatter_pairs(grad, ni, nj, wn * dneg(xn) / ni.numel(), Ni, Nj)
    return grad, value


def _scatter_pairs(grad, i, j, c, Wi, Wj) -> None:
    """``grad[i] += c w_j`` and ``grad[j] += c w_i`` for every pair (repeats add)."""
    grad.index_add_(0, i, Wj * c[:, None])
    grad.index_add_(0, j, Wi * c[:, None])


# ----------------------------------------------------------------------------------
# checkpoints on disk
# ----------------------------------------------------------------------------------

_CK_ARRAYS = ("step", "steps", "lr", "rng_state", "history")


def check_run_info(run_info) -> dict:
    """``run_info`` as plain JSON (a dict), or a one-line error."""
    if run_info is None:
        return {}
    if not isinstance(run_info, dict):
        raise QwemError(f"run_info must be a dict of JSON values, got "
                        f"{type(run_info).__name__}")
    try:
        return json.loads(json.dumps(run_info, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise QwemError(f"run_info must be a dict of JSON values: {e}") from None


def _meta(config: TrainConfig, dev: torch.device, P_ij, unigram, run_info: dict
          ) -> dict:
    """What a checkpoint must have been written with to be resumed: every setting
    that changes the trajectory, and a fingerprint of the data."""
    return {"config": config.to_dict(), "device": dev.type,
            "vocab_size": int(P_ij.shape[0]),
            "data": data_fingerprint(P_ij, unigram), "run": run_info}


def _save_checkpoint(path: Path, meta: dict, X, step, steps, lr, generator, history,
                     basis: str = "word"):
    """The trained variable: ``W`` in the word basis, ``X = U^T W`` in M*'s
    eigenbasis (``basis``)."""
    save_checkpoint(path, meta, **{"W" if basis == "word" else "X":
                                   X.detach().cpu().numpy()},
                    step=np.int64(step), steps=np.int64(steps), lr=np.float64(lr),
                    rng_state=generator.get_state().cpu().numpy().astype(np.uint8),
                    history=np.array(history.to_json()))


def _restore(ck: dict, path: Path, basis: str, V: int, d: int,
             gen: torch.Generator):
    """``(W or X, step, steps, lr, history)`` from a loaded checkpoint; the RNG
    ``gen`` is set to its state.  An array of the wrong kind is a damaged file."""
    name = "W" if basis == "word" else "X"

    def damaged(why):
        return QwemError(f"cannot read the checkpoint {path}: {why} (damaged); "
                         "delete it to start afresh (overwrite=True, --overwrite)")

    if name not in ck:
        raise damaged(f"the array {name} is missing")
    state = ck[name]
    if state.shape != (V, d) or not np.issubdtype(state.dtype, np.floating):
        raise damaged(f"{name} is {state.dtype} {state.shape}, not float ({V}, {d})")
    rng = ck["rng_state"]
    if rng.dtype != np.uint8 or rng.shape != tuple(gen.get_state().shape):
        raise damaged("its random-number state does not fit this generator")
    try:
        step, steps, lr = int(ck["step"]), int(ck["steps"]), float(ck["lr"])
        history = History.from_dict(json.loads(str(ck["history"])))
    except (TypeError, ValueError, QwemError) as e:
        raise damaged(f"its step, lr or history is unreadable ({e})") from None
    if not (0 <= step <= steps and math.isfinite(lr) and lr > 0
            and (not history.step or history.step[-1] <= step)):
        raise damaged(f"step {step}, steps {steps} and lr {lr} do not fit together")
    gen.set_state(torch.from_numpy(rng.copy()))
    return torch.from_numpy(np.array(state)), step, steps, lr, history


# Peak memory of train() beyond its inputs (P_ij, the unigram and a given M*), in
# bytes per V x V entry, from a measurement: peak RSS (ru_maxrss) minus the RSS with
# the inputs loaded, in a fresh process per path, on the bundled sample, d = 20,
# float64, CPU, at V = 3,000, 6,000 and 8,000, per entry at the three sizes, and the
# slope between the two largest (what the V^2 term costs):
#   eigenbasis, M* given                     37.8, 25.0, 24.6 -> 24.1 (scipy's eigh:
#                                            a copy of M* and its 2 V^2 workspace)
#   eigenbasis, M* built                     40.4, 33.1, 32.6 -> 32.1 (+ M*)
#   word basis, M* given, lr/steps auto      36.5, 11.5,  9.8 ->  7.5 (spectrum's -M*)
#   word basis, M* built                     43.7, 19.6, 17.9 -> 15.8
#   minibatch, word2vec reweighting          48.2, 18.3, 16.2 -> 13.5 (P_ij's CDF)
#   minibatch, Setting 3.1                    -  ,  -  ,  7.6    (no V^2 buffer)
#   full batch SGNS, uniform, lr auto        50.1, 19.9, 17.1 -> 13.5 (M* + spectrum)
# The rest, 250-330 MB at every size, is the libraries' working memory plus, off the
# exact path, the row blocks of expected_loss/expected_grad (1024 rows x V x 8 bytes,
# a few of them).  With those, the model below lies above every measured peak, by
# 0.04 to 0.6 GB.
_TRAIN_BYTES = {"eigen": 24.0, "word": 0.0, "minibatch": 0.0, "expected": 0.0}
_CDF_BYTES = 13.5      # minibatch pair sampling from P_ij (not Setting 3.1's)
_MSTAR_BYTES = 8.5     # M* built by train (targets.m_star into a new buffer)
_SPECTRUM_BYTES = 8.0  # lr/steps "auto" off the eigenbasis: top_eigh of M* and -M*
_TRAIN_OVERHEAD = 300e6
_ROW_BLOCK_BYTES = 5 * 8 * 1024  # per word of V, off the exact path
# Off the exact path, a full-batch run up to this V stores its pair weights a and b
# (Reweighting.materialised: 2 V^2 entries, 268 MB in float64 at the largest) instead
# of recomputing them at every step and checkpoint; with the compiled block kernel
# (qwem_lib.kernels._pair) this is what made chapter 7's runs cheaper (bench/README.md).
_DENSE_WEIGHTS_MAX_V = 4096


def _dense_weights(config: TrainConfig, V: int) -> bool:
    """Whether a full-batch run off the exact path stores its pair weights."""
    return config.batch_size is None and V <= _DENSE_WEIGHTS_MAX_V


def _exact_setting(config: TrainConfig, unigram: torch.Tensor) -> bool:
    """Full-batch QWEM under Setting 3.1 with every word seen (as
    :func:`_exact_quartic`, from the config before the reweighting is built)."""
    return (config.batch_size is None and config.loss == "qwem"
            and config.reweight == "setting31" and bool((unigram > 0).all()))


def _require_memory(config: TrainConfig, P_ij, M_star, dev, need_spec: bool,
                    exact: bool):
    """Refuse up front a run whose dense work would not fit
    (:func:`qwem_lib.runtime.memory.require_dense`, with the measured costs above)."""
    if config.batch_size is not None:
        path, what = "minibatch", "minibatch training"
    elif exact and config.basis != "word":
        path, what = "eigen", "full-batch training in M*'s eigenbasis"
    else:
        path, what = ("word" if exact else "expected"), "full-batch training"
    per_entry = _TRAIN_BYTES[path]
    if path == "expected" and _dense_weights(config, P_ij.shape[0]):
        per_entry += 2 * config.torch_dtype.itemsize
    if path == "minibatch" and config.reweight != "setting31":
        per_entry += _CDF_BYTES
    if M_star is None and (exact or need_spec):
        per_entry += _MSTAR_BYTES
    if need_spec and path != "eigen":
        per_entry += _SPECTRUM_BYTES
    if P_ij.device != dev or P_ij.dtype != config.torch_dtype:
        per_entry += config.torch_dtype.itemsize  # P_ij copied to dev/dtype
    V = P_ij.shape[0]
    overhead = _TRAIN_OVERHEAD + (0 if exact else _ROW_BLOCK_BYTES * V)
    require_dense(V, per_entry, dev, what=f"{what} on dense V x V matrices",
                  overhead=overhead)


# ----------------------------------------------------------------------------------
# the trainer
# ----------------------------------------------------------------------------------

def _rank(s2: torch.Tensor, eigvals: torch.Tensor | None) -> int:
    """Learned modes: ``s_k^2 > λ_k/2`` if λ is known, else ``s_k^2 > s_1^2/100``."""
    s2 = s2.cpu()
    if eigvals is not None:
        lam = eigvals[: s2.numel()].to(s2.dtype)
        return int(((s2 > 0.5 * lam) & (lam > 0)).sum())
    return int((s2 > 1e-2 * s2[0]).sum()) if float(s2[0]) > 0 else 0


def _exact_quartic(config: TrainConfig, rw: Reweighting,
                   unigram: torch.Tensor) -> bool:
    """QWEM under Setting 3.1 with every word seen: pair weights G = 1 exactly."""
    return (config.loss == "qwem" and rw.inverse_g and rw.neg_power is not None
            and bool((unigram > 0).all()))


def trains_in_eigenbasis(config: TrainConfig, unigram: torch.Tensor) -> bool:
    """Whether :func:`train` takes this run's steps in M*'s eigenbasis (full-batch
    QWEM under Setting 3.1, every word seen, ``basis`` not ``"word"``), for which it
    decomposes M* in full."""
    return _exact_setting(config, unigram) and config.basis != "word"


def _given_basis(eigendecomposition, V: int, dev) -> tuple[torch.Tensor,
                                                            torch.Tensor]:
    """A caller's ``(eigvals, eigvecs)`` of M*, checked, on ``dev`` in float64."""
    try:
        lam, U = eigendecomposition
        lam = torch.as_tensor(lam, dtype=torch.float64)
        U = torch.as_tensor(U, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise QwemError("eigendecomposition must be a pair (eigvals, eigvecs), as "
                        "qwem_lib.spectral.eigenbasis returns") from None
    if tuple(lam.shape) != (V,) or tuple(U.shape) != (V, V):
        raise QwemError(f"eigendecomposition must hold all {V} eigenpairs of M* "
                        f"(eigvals ({V},), eigvecs ({V}, {V})), got "
                        f"{tuple(lam.shape)} and {tuple(U.shape)}")
    if V > 1 and bool((lam[1:] > lam[:-1]).any()):
        raise QwemError("eigendecomposition's eigenvalues must be in descending "
                        "order, as qwem_lib.spectral.eigenbasis returns them")
    return lam.to(dev), U.to(dev)


def _basis(config: TrainConfig, exact: bool) -> str:
    if config.basis == "eigen" and not exact:
        raise QwemError("basis='eigen' needs full-batch QWEM under Setting 3.1 with "
                        "every word seen (the gradient (W W^T - M*) W); other runs "
                        "train in the word basis")
    if config.basis == "auto":
        return "eigen" if exact else "word"
    return config.basis


def _step_work(config: TrainConfig, basis: str, exact: bool, V: int, d: int,
               record: bool = False) -> int:
    """Elements one training step (``record``: one checkpoint's loss) touches, to
    choose torch's thread count."""
    if basis == "eigen":  # X^T X and X A: O(V d^2)
        return 2 * V * d * d
    if config.batch_size is not None and not record:  # B rows gathered, W's V rows
        return (V + 3 * config.batch_size) * d
    return 2 * V * V * d  # (W W^T - M*) W, expected_grad or _loss: O(V^2 d)


def _check_data(P_ij, unigram, M_star, d: int) -> None:
    """Refuse P_ij, a unigram or an M* whose shapes do not fit, or ``d >= V``."""
    if not isinstance(P_ij, torch.Tensor) or P_ij.ndim != 2 \
            or P_ij.shape[0] != P_ij.shape[1]:
        raise QwemError(f"P_ij must be a (V, V) tensor, got "
                        f"{tuple(getattr(P_ij, 'shape', ()))}")
    V = P_ij.shape[0]
    if not isinstance(unigram, torch.Tensor) or tuple(unigram.shape) != (V,):
        raise QwemError(f"unigram must be a ({V},) tensor to match P_ij, got "
                        f"{tuple(getattr(unigram, 'shape', ()))}")
    if M_star is not None and tuple(M_star.shape) != (V, V):
        raise QwemError(f"M_star must be ({V}, {V}) to match P_ij, got "
                        f"{tuple(M_star.shape)}")
    if d >= V:
        raise QwemError(f"embed_dim d = {d} must be smaller than the vocabulary "
                        f"size V = {V}")


def _checked_inputs(config, P_ij, unigram, M_star, device, out_dir, resume: bool,
                    until, run_info) -> tuple[torch.device, int | None, dict]:
    """Every refusal :func:`train` can make before it touches ``out_dir``: bad
    arguments, a basis that does not apply, a run that would not fit in memory.

    Returns
    -------
    dev : torch.device
    until : int or None
    run_info : dict
        As plain JSON (:func:`check_run_info`).
    """
    if not isinstance(config, TrainConfig):
        raise QwemError(f"config must be a TrainConfig, got {type(config).__name__}")
    dev = default_device(device)
    _check_data(P_ij, unigram, M_star, config.embed_dim)
    if resume and out_dir is None:
        raise QwemError("resume=True needs out_dir (where the checkpoint is)")
    if until is not None:
        until = check_int(until, "until", lo=0)
    run_info = check_run_info(run_info)
    need_spec = config.lr == "auto" or config.steps == "auto"
    exact = _exact_setting(config, unigram)
    _basis(config, exact)  # basis="eigen" is refused where it does not apply
    _require_memory(config, P_ij, M_star, dev, need_spec, exact)
    return dev, until, run_info


class _Session:
    """One call of :func:`train`: the problem on the device, the trained variable X
    (W itself, or ``W~ = U^T W`` in M*'s eigenbasis), its steps and its checkpoints.

    Made in three stages: the problem (``__init__``), the starting point
    (:meth:`setup`: a checkpoint or a seeded init, the lr and the steps), then the
    run (:meth:`train`) and its result (:meth:`finish`).
    """

    def __init__(self, config: TrainConfig, P_ij, unigram, dev, eigvals, *, ck_path,
                 meta, words, questions, callback):
        """P_ij, the unigram and their reweighting on ``dev``, the seeded generator,
        and the basis the steps are taken in."""
        self.config, self.dev, self.dtype = config, dev, config.torch_dtype
        self.P_ij, self.unigram = P_ij, unigram  # as given: M* is built from these
        self.ck_path, self.meta = ck_path, meta
        self.words, self.questions, self.callback = words, questions, callback
        self.P = P_ij.to(device=dev, dtype=self.dtype)
        self.uni = unigram.to(device=dev, dtype=self.dtype)
        self.rw = reweighting(config.reweight, self.P, self.uni,
                              negatives=config.negatives,
                              subsample_t=config.subsample_t)
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(config.seed)
        if eigvals is not None:
            eigvals = torch.as_tensor(np.asarray(eigvals, dtype=np.float64))
        self.eigvals = eigvals  # for the progress bar's rank
        self.exact = config.batch_size is None and _exact_quartic(config, self.rw,
                                                                  self.uni)
        self.basis = _basis(config, self.exact)
        # every step of a full-batch run off the exact path weighs every pair: compute
        # the weights once where they fit in a few hundred MB
        self.rw_steps = (self.rw.materialised(self.P, self.uni)
                         if _dense_weights(config, self.P.shape[0]) and not self.exact
                         else self.rw)

    # ------------------------------------------------------------------------------
    # the starting point
    # ------------------------------------------------------------------------------

    def setup(self, ck, M_star, eigendecomposition, until, *, cache: bool,
              progress: bool) -> None:
        """Continue from the checkpoint ``ck``, or start afresh (None); then the
        number of steps, the checkpoint steps and where this call stops."""
        config, V, d = self.config, self.P.shape[0], self.config.embed_dim
        need_spec = config.lr == "auto" or config.steps == "auto"
        if ck is not None:
            saved = _restore(ck, self.ck_path, self.basis, V, d, self.gen)
        if (self.exact or (need_spec and ck is None)) and M_star is None:
            M_star = self.rw.target(self.P_ij.to(torch.float64).cpu(),
                                    self.unigram.to(torch.float64).cpu())
        lam_all, U = self._eigenbasis(M_star, eigendecomposition, cache, progress)
        state = spec = None
        if ck is not None:
            state, self.first, self.steps, self.lr, self.history = saved
            W = (None if self.basis == "eigen"
                 else state.to(device=self.dev, dtype=self.dtype))
        else:
            W, spec = self._fresh(M_star, lam_all, need_spec)
        self.dt = flow_time_per_step(self.lr, loss_scale(config.loss))
        if ck is None:
            self.steps = resolve_steps(config, spec, init_projection(W), self.dt)
        self.marks = set(checkpoint_steps(self.steps, config.n_checkpoints))
        self.stop = self.steps if until is None else min(int(until), self.steps)
        self.sampler = (None if config.batch_size is None
                        else PairSampler(self.P, self.uni, self.rw))
        self._variable(W, state, U, lam_all, M_star)

    def _eigenbasis(self, M_star, eigendecomposition, cache: bool, progress: bool):
        """M*'s every eigenpair ``(eigvals, eigvecs)`` on the device for a run in its
        eigenbasis, the caller's or :func:`qwem_lib.spectral.eigenbasis`'s (cached
        unless ``cache`` is False); ``(None, None)`` in the word basis."""
        if self.basis != "eigen":
            return None, None
        if eigendecomposition is not None:
            return _given_basis(eigendecomposition, self.P.shape[0], self.dev)
        lam_all, U = eigenbasis(M_star.to(device=self.dev), progress=progress,
                                cache=None if cache else False)
        if self.eigvals is None:
            self.eigvals = lam_all[:self.config.embed_dim].cpu()
        return lam_all, U

    def _fresh(self, M_star, lam_all, need_spec: bool):
        """A new run: W drawn from the seeded generator, an empty history, and the
        learning rate (from M*'s spectrum where it is ``"auto"``); returns W and the
        spectrum (None where not needed)."""
        config, V, d = self.config, self.P.shape[0], self.config.embed_dim
        W = random_init(V, d, config.init_scale, dtype=self.dtype, device=self.dev,
                        generator=self.gen)
        self.first, self.history, spec = 0, History(), None
        if need_spec:
            spec = (spectrum(M_star, d) if lam_all is None else
                    Spectrum(lam_all[:d].cpu(), float(lam_all[-1])))
            if self.eigvals is None:
                self.eigvals = spec.eigvals
        self.lr = resolve_lr(config, spec)
        return W, spec

    def _variable(self, W, state, U, lam_all, M_star) -> None:
        """X, the variable the steps update: W, or ``W~ = U^T W`` in M*'s eigenbasis
        (``state``: X from a checkpoint); on the exact path, what the loss is
        computed from."""
        dev, dtype = self.dev, self.dtype
        if self.basis == "eigen":
            self.U, self.lam = U.to(dtype), lam_all.to(device=dev, dtype=dtype)[:, None]
            self.X = (state.to(device=dev, dtype=dtype) if state is not None
                      else self.U.T @ W)
        else:
            self.X = W
        if self.exact and self.basis == "word":
            # G = 1 for every pair: the gradient is (W W^T - M*) W exactly.
            self.target = M_star.to(device=dev, dtype=dtype)
        if self.exact:
            self.m_star2 = float((self.lam * self.lam).sum() if self.basis == "eigen"
                                 else (self.target * self.target).sum())
            # Theorem 1: loss = offset + ¼||W W^T - M*||^2; the offset at W = 0,
            # where the residual is ||M*||^2 (the same value in a resumed run)
            self.loss_offset = float(expected_loss(
                torch.zeros_like(self.X), self.P, self.uni, self.config.loss,
                reweight=self.rw)) - 0.25 * self.m_star2

    # ------------------------------------------------------------------------------
    # a step, the loss, a checkpoint
    # ------------------------------------------------------------------------------

    def step(self) -> bool:
        """One step on X; False if it is no longer finite."""
        X, lr, config = self.X, self.lr, self.config
        if self.basis == "eigen":  # X - η (X X^T - Λ) X = (1 + ηΛ) X - η X (X^T X)
            A = X.T @ X  # (d, d): NaN/inf in X shows here, at d^2 cost
            self.X = torch.addmm(X * (1 + lr * self.lam), X, A, alpha=-lr)
            return bool(torch.isfinite(A).all())
        if self.exact:  # (W W^T - M*) W, O(V^2 d)
            grad = X @ (X.T @ X) - self.target @ X
        elif self.sampler is None:
            grad = expected_grad(X, self.P, self.uni, config.loss,
                                 reweight=self.rw_steps)
        else:
            grad = minibatch_grad(X, self.sampler, config.batch_size, config.loss,
                                  self.gen)[0]
        X.sub_(grad.to(self.dtype), alpha=lr)
        return bool(torch.isfinite(X).all())

    def _residual2(self) -> float:
        """``||W W^T - M*||_F^2`` from X: O(V d^2) in the eigenbasis."""
        X = self.X
        A = X.T @ X
        cross = ((self.lam * X * X).sum() if self.basis == "eigen"
                 else (X * (self.target @ X)).sum())
        return float((A * A).sum() - 2.0 * cross) + self.m_star2

    def _loss(self) -> float:
        """The expected loss at W: O(V d^2) on the exact path in the eigenbasis,
        where :func:`~qwem_lib.losses.expected_loss` is O(V^2 d)."""
        if self.exact:
            return self.loss_offset + 0.25 * self._residual2()
        return float(expected_loss(self.X, self.P, self.uni, self.config.loss,
                                   reweight=self.rw_steps))

    def words_view(self) -> torch.Tensor:
        """W in the word basis (``U X`` in the eigenbasis: O(V^2 d))."""
        return self.U @ self.X if self.basis == "eigen" else self.X

    def record(self, step: int):
        """Loss, singular values and accuracy at ``step``; returns the loss, the
        singular values and W in the word basis when the accuracy or the callback
        needs it (rotated once per checkpoint: O(V^2 d) in the eigenbasis)."""
        needs_W = self.words is not None or self.callback is not None
        Wv = self.words_view() if needs_W else None
        with torch_threads(self.record_threads), torch.no_grad():
            value = self._loss()
            sv = torch.linalg.svdvals(self.X.to(torch.float64))  # U X has X's
        acc = None
        if self.words is not None:
            from .evaluate import analogy_paper
            acc = analogy_paper(Wv, self.words, self.questions,
                                device=self.dev).accuracy
        self.history.append(step, step * self.dt, value, sv.cpu().tolist(), acc)
        return value, sv, Wv

    def save(self, step: int) -> None:
        """The checkpoint at ``step``.  In the eigenbasis the state is X (W = U X
        needs the cached U: no V^2 d rotation at every checkpoint)."""
        _save_checkpoint(self.ck_path, self.meta, self.X, step, self.steps, self.lr,
                         self.gen, self.history, basis=self.basis)

    def diverged(self, step: int, what: str):
        """Raise the divergence error at ``step`` (``what`` became NaN/inf)."""
        raise diverged_error(step, what, self.lr, "use a smaller --lr (or --lr auto)")

    def record_start(self) -> None:
        """Step 0 of a new run: recorded and called back (not saved)."""
        value, sv, Wv = self.record(0)
        if not math.isfinite(value):
            self.diverged(0, "the loss")
        if self.callback is not None:
            self.callback(0, 0.0, Wv)

    def checkpoint(self, step: int, threads: int, bar) -> None:
        """Record ``step``, save it (with ``out_dir``) and call back, on ``threads``
        of torch's; then show its loss and rank on the bar."""
        with torch_threads(threads):
            value, sv, Wv = self.record(step)
            if not math.isfinite(value):
                self.diverged(step, "the loss")
            if self.ck_path is not None:
                self.save(step)
            if self.callback is not None:
                self.callback(step, self.history.t[-1], Wv)
        bar.set_postfix(loss=f"{value:.4g}", rank=_rank(sv * sv, self.eigvals),
                        refresh=False)

    # ------------------------------------------------------------------------------
    # the run
    # ------------------------------------------------------------------------------

    def _threads(self) -> tuple[int, int]:
        """torch's threads while stepping, and the caller's count (restored while
        recording): one for small steps (several spin at barriers and, on a busy
        machine, wait a time slice per operation for a descheduled peer), else the
        caller's count capped at this process's CPUs."""
        config, basis, exact = self.config, self.basis, self.exact
        V, d = self.P.shape[0], config.embed_dim
        caller = torch.get_num_threads()
        self.record_threads = torch_threads_for(
            _step_work(config, basis, exact, V, d, True), current=caller)
        return torch_threads_for(_step_work(config, basis, exact, V, d)), caller

    def train(self, progress: bool) -> None:
        """Record step 0 (a new run), then step up to ``stop``, through every
        checkpoint step (record, save, call back); a run stopped early
        (``until``) saves a checkpoint where it stops."""
        from .runtime.progress import bar as progress_bar

        step_threads, caller_threads = self._threads()
        history, stop = self.history, self.stop
        if self.first == 0 and not history.step:
            self.record_start()
        refresh = max(1, self.steps // 1000)
        bar = progress_bar(progress, total=self.steps, initial=self.first, unit="step")
        try:
            with torch_threads(step_threads):
                for step in range(self.first + 1, stop + 1):
                    if not self.step():
                        self.diverged(step, "W")
                    if step in self.marks and (not history.step
                                               or history.step[-1] < step):
                        self.checkpoint(step, caller_threads, bar)
                    if step % refresh == 0 or step == stop:
                        bar.update(step - bar.n)
            if self.ck_path is not None and stop < self.steps and \
                    (not history.step or history.step[-1] != stop):
                self.save(stop)
        finally:
            bar.close()

    def finish(self, out_dir) -> TrainResult:
        """Write ``history.json`` if the run is complete; the result, W in the word
        basis."""
        if out_dir is not None and self.stop == self.steps:
            self.history.save(Path(out_dir) / HISTORY)
        return TrainResult(self.words_view(), self.history, self.lr, self.steps,
                           self.dt, self.config)


def train(config: TrainConfig, P_ij: torch.Tensor, unigram: torch.Tensor, *,
          M_star: torch.Tensor | None = None, eigvals=None,
          words=None, questions=None, device=None, out_dir=None,
          resume: bool = False, overwrite: bool = False, until: int | None = None,
          progress: bool = True, callback=None, cache: bool = True,
          run_info: dict | None = None, eigendecomposition=None) -> TrainResult:
    """Train tied embeddings W on the reweighted QWEM or SGNS loss (the paper).

    Parameters
    ----------
    config : TrainConfig
    P_ij : (V, V) tensor
        Pair distribution (sums to 1), e.g. from :func:`qwem_lib.targets.pair_probs`.
    unigram : (V,) tensor
    M_star : (V, V) tensor, optional
        The reweighting's target; built when the spectrum is needed
        (``lr``/``steps="auto"``) and not given.
    eigvals : (>= d,) array, optional
        Top eigenvalues of M*, descending: used for the progress bar's rank (modes
        with ``s_k^2 > λ_k/2``); computed when the spectrum is needed anyway.
    words : sequence of str, optional
        The vocabulary: record analogy accuracy at each checkpoint (slow).
    questions : optional
        Analogy questions for :func:`qwem_lib.evaluate.analogy_paper`.
    device : str or torch.device, optional
        Default CUDA if available, else CPU.
    out_dir : path, optional
        Write ``checkpoint.npz`` at every checkpoint and ``history.json`` at the end.
        A folder that holds another run's files is refused
        (:func:`qwem_lib.runtime.history.prepare_run_dir`) unless ``resume`` or
        ``overwrite``.
    resume : bool
        Continue from ``out_dir/checkpoint.npz`` if present.  The checkpoint must belong
        to this run: the same config, device, ``run_info`` and data (a SHA-256 of P_ij
        and the unigram); a difference is refused naming each setting with both values.
    overwrite : bool
        Delete the files of an earlier run in ``out_dir`` (only
        :data:`qwem_lib.runtime.history.RUN_FILES`) and start afresh.
    until : int, optional
        Stop after this step (saving a checkpoint there if ``out_dir`` is given)
        instead of at the end; for interrupting a run on purpose.
    progress : bool
        Show a tqdm bar (step, loss, rank).
    callback : callable, optional
        ``callback(step, t, W)`` at every checkpoint, after it is recorded (e.g. to
        keep snapshots of W or measure subspace overlaps); it must not modify W.
    cache : bool
        Read and store M*'s eigendecomposition in the cache
        (:func:`qwem_lib.spectral.eigenbasis`); False computes it afresh.
    run_info : dict, optional
        JSON-able facts about the run from the caller (the command line passes the
        corpus's content hash, the scheme, the window, the vocabulary size), kept in
        the checkpoint and compared on resume.
    eigendecomposition : (eigvals, eigvecs), optional
        M*'s every eigenpair, as :func:`qwem_lib.spectral.eigenbasis` returns them
        (descending), for a run in the eigenbasis (:func:`trains_in_eigenbasis`):
        used instead of decomposing M* again.  Ignored by the other runs.

    Returns
    -------
    TrainResult

    Raises
    ------
    QwemError
        On bad input; if the dense work would not fit in the memory available
        (:func:`qwem_lib.runtime.memory.require_dense`, checked before any work); if
        ``out_dir`` holds another run, or its checkpoint belongs to another run or is
        damaged; if the loss or W becomes NaN/inf (names the step and the lr).
    """
    dev, until, run_info = _checked_inputs(config, P_ij, unigram, M_star, device,
                                           out_dir, resume, until, run_info)
    ck_path, meta, ck = open_run_dir(
        out_dir, resume=resume, overwrite=overwrite, required=_CK_ARRAYS,
        meta=lambda: _meta(config, dev, P_ij, unigram, run_info))
    run = _Session(config, P_ij, unigram, dev, eigvals, ck_path=ck_path, meta=meta,
                   words=words, questions=questions, callback=callback)
    run.setup(ck, M_star, eigendecomposition, until, cache=cache, progress=progress)
    run.train(progress)
    return run.finish(out_dir)
