"""Gradient-flow dynamics of the quartic loss: closed form, timescales, step↔time.

Karkada et al., arXiv 2502.09863: the gradient flow.  Flow time ``t`` is the time of

    dW/dt = -½ (W W^T - M*) W,                                            (flow)

which is gradient flow on ``L(W) = ¼||W W^T - M*||_F^2`` run at half speed (``∇L =
(W W^T - M*) W``).  If W's left singular vectors are eigenvectors ``v_k`` of M*, they
stay put and every mode obeys the logistic equation ``d(s_k^2)/dt = s_k^2 (λ_k -
s_k^2)`` with the solution of :func:`mode_trajectory`.

From a small random init the early flow is linear, ``W(t) ≈ e^{M* t/2} W(0)``, so the
component of W along ``v_k`` grows like ``e^{λ_k t/2} v_k^T W(0)``: its squared norm
is ``s_k^2(0) e^{λ_k t}`` with ``s_k^2(0) = ||v_k^T W(0)||^2``, the squared projection
of W(0) on a fixed direction.  For i.i.d. entries its expectation is ``||W(0)||_F^2 /
V`` for *every* k (:func:`init_projection`): this, not the singular values of W(0)
(which are larger, ≈ σ(√V + √d), and belong to random directions), is the initial
value to put in the aligned solution.

Step ↔ time.  If an optimiser minimises ``F(W) = c · ¼||W W^T - M*||_F^2 + const``
(``c`` is the *loss scale*), a gradient step of size η is ``ΔW = -η c (W W^T - M*) W``,
i.e. an Euler step of (flow) of length ``Δt = 2 η c`` (:func:`flow_time_per_step`).
The loss scale of common normalisations (G the pair weight of the paper's Thm. 1, constant
``g`` under Setting 3.1; ``L_min`` the divisor of a normalised loss ``1 - L/L_min``):

* ``¼||W W^T - M*||_F^2``: c = 1;
* the expected QWEM loss under Setting 3.1 (``losses.expected_loss``): c = g (= 1 for
  ``Ψ = 1/(P_ij + P_iP_j)``);
* ``1 - L/L_min`` with the true minimum ``L_min = -(g/4)||M*||_F^2``:
  ``c = 4/||M*||_F^2``;
* the paper's normalisation, Ψ scaled so that ``g = 2/V^2`` (Setting 3.1 weights
  divided by their mean, ``(1 + k)/V^2`` with k = 1) and ``L_min = -mean(M*^2)``:
  ``c = 2/(V^2 mean(M*^2))``.

The last case reproduces the paper's "one step advances t by ``4η / (V^2
mean(M*^2))``".  Note that with that normalisation the loss is ``1`` at ``W = 0`` and
would be ``½`` (not 0) at the unconstrained optimum, because the true minimum of the
``g = 2/V^2`` loss is ``-½ mean(M*^2)``.  Minibatch SGD on the sampled loss has the
same mean gradient, hence the same ``Δt`` per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .runtime._repr import short_repr
from .runtime.errors import QwemError
from .runtime.options import check_real

__all__ = ["mode_trajectory", "Timescales", "timescales", "init_projection",
           "sequential_init_projection", "init_scale_to_s2",
           "random_init", "predicted_loss", "flow_time_per_step",
           "paper_loss_scale", "steps_to_time", "time_to_steps", "stable_lr",
           "FlowSolution", "integrate_flow", "crossing_times",
           "discrete_mode_trajectory", "half_learned_times", "half_learned_ratio",
           "first_learned", "next_mode_learned", "appc_bound", "Alignment",
           "alignment"]

_F64 = torch.float64


def _t64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype=_F64, device="cpu")
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


# ----------------------------------------------------------------------------------
# closed form
# ----------------------------------------------------------------------------------

def mode_trajectory(t, lam, s2_0) -> torch.Tensor:
    """Closed-form ``s_k^2(t)`` of an aligned mode (paper's lemma).

    ``s^2(t) = s^2(0) λ e^{λt} / (λ + s^2(0)(e^{λt} - 1))``, evaluated without overflow
    as

    * ``λ ≥ 0``: ``s^2(0) / (e^{-λt} + s^2(0) φ)`` with ``φ = (1 - e^{-λt})/λ``
      (``φ = t`` at ``λ = 0``, giving ``s^2(0)/(1 + s^2(0) t)``);
    * ``λ < 0``: ``s^2(0) e^{λt} / (1 + s^2(0) (e^{λt} - 1)/λ)`` (decay).

    Every exponent is ``≤ 0`` and every denominator positive, so ``λt = 10^4`` gives
    ``λ`` and not ``nan``.

    Parameters
    ----------
    t : scalar or (T,) array, ``t ≥ 0``
    lam : scalar or (K,) array
        Eigenvalues λ_k.
    s2_0 : scalar or (K,) array, ``≥ 0``
        Initial ``s_k^2(0)``.

    Returns
    -------
    (T, K) float64 tensor (shape ``t.shape + broadcast(lam, s2_0).shape``)
    """
    t, lam, s0 = _t64(t), _t64(lam), _t64(s2_0)
    if (t < 0).any():
        raise QwemError("mode_trajectory needs times t >= 0 (the closed form can blow "
                        "up backwards in time)")
    if (s0 < 0).any():
        raise QwemError("initial squared singular values s2_0 must be >= 0")
    lam, s0 = torch.broadcast_tensors(lam, s0)
    tt = t.reshape(t.shape + (1,) * lam.ndim)
    lt = lam * tt
    pos = lam >= 0
    lam_safe = torch.where(lam == 0, torch.ones_like(lam), lam)
    lt_p = torch.where(pos, lt, torch.zeros_like(lt))
    phi = torch.where(lam == 0, tt.expand_as(lt), -torch.expm1(-lt_p) / lam_safe)
    grow = s0 / (torch.exp(-lt_p) + s0 * phi)
    lt_n = torch.where(pos, torch.zeros_like(lt), lt)
    decay = s0 * torch.exp(lt_n) / (1.0 + s0 * torch.expm1(lt_n) / lam_safe)
    return torch.where(pos, grow, decay)


@dataclass(frozen=True, eq=False)
class Timescales:
    """Per-mode timescales (flow time).

    Attributes
    ----------
    tau : (K,) float64 tensor
        ``τ_k = ln(λ_k / s_k^2(0)) / λ_k`` (paper's flow); ``inf`` where ``λ_k ≤ 0``.
    t_half : (K,) float64 tensor
        Exact time at which ``s_k^2 = λ_k / 2``: ``ln((λ_k - s_k^2(0)) / s_k^2(0)) /
        λ_k``; negative if the mode starts above half, ``nan`` if ``s_k^2(0) ≥ λ_k``,
        ``inf`` where ``λ_k ≤ 0``.  ``τ_k - t_half = ln(λ/(λ - s^2(0)))/λ ≈
        s^2(0)/λ^2``.
    """

    __repr__ = short_repr

    tau: torch.Tensor
    t_half: torch.Tensor


def timescales(lam, s2_0, *, allow_nonpositive: bool = False) -> Timescales:
    """τ_k and the half-learned time of each mode (paper's flow).

    Derivation of ``t_half``: with :func:`mode_trajectory`'s ``λ ≥ 0`` form,
    ``s^2 = λ/2  ⇔  2 s^2(0) = λ e^{-λt} + s^2(0)(1 - e^{-λt})  ⇔  e^{-λt} =
    s^2(0)/(λ - s^2(0))``.

    Parameters
    ----------
    lam : (K,) array
        Eigenvalues, all ``> 0`` unless ``allow_nonpositive``.
    s2_0 : scalar or (K,) array, finite and ``> 0``
    allow_nonpositive : bool
        Give ``τ = t_half = inf`` for eigenvalues ``<= 0`` (modes never learned)
        instead of refusing them.

    Raises
    ------
    QwemError
        If an eigenvalue is ``<= 0`` (or not finite) and not ``allow_nonpositive``,
        saying how many are positive; if an ``s2_0`` is not finite and ``> 0``.
    """
    lam, s0 = torch.broadcast_tensors(_t64(lam), _t64(s2_0))
    if not bool((torch.isfinite(s0) & (s0 > 0)).all()):
        raise QwemError("timescales need finite s2_0 > 0 (a mode that starts at 0 "
                        "never grows), e.g. init_scale_to_s2(--init-scale) with "
                        "--init-scale > 0")
    if torch.isnan(lam).any() or torch.isneginf(lam).any() or \
            (not allow_nonpositive and not bool((lam > 0).all())):
        n_pos, n = int((lam > 0).sum()), lam.numel()
        raise QwemError(f"timescales need eigenvalues > 0 (a mode with eigenvalue "
                        f"<= 0 is never learned), but {n_pos} of the {n} given are "
                        f"positive; pass only those (e.g. --dim {max(n_pos, 1)} or "
                        "less), or allow_nonpositive=True for tau = inf there")
    pos = lam > 0
    lam_safe = torch.where(pos, lam, torch.ones_like(lam))
    inf = torch.full_like(lam, float("inf"))
    tau = torch.where(pos, torch.log(lam_safe / s0) / lam_safe, inf)
    gap = lam_safe - s0
    t_half = torch.where(gap > 0, torch.log(gap.clamp_min(1e-300) / s0) / lam_safe,
                         torch.full_like(lam, float("nan")))
    return Timescales(tau, torch.where(pos, t_half, inf))


def init_projection(W0) -> float:
    """Effective initial ``s_k^2(0)`` of every mode from a random W0: ``||W0||_F^2/V``.

    The expected squared projection ``E||v^T W0||^2`` of W0 on any fixed unit vector v
    (i.i.d. entries); see the module docstring for why this is the right initial value
    for the aligned solution.

    Parameters
    ----------
    W0 : (V, d) array
    """
    W0 = _t64(W0)
    if W0.ndim != 2:
        raise QwemError(f"W0 must be (V, d), got shape {tuple(W0.shape)}")
    return float((W0 * W0).sum() / W0.shape[0])


def sequential_init_projection(W0, n_modes: int | None = None) -> torch.Tensor:
    """Refined per-mode initial values ``(||W0||_F^2/V) · (d - k + 1)/d``, k = 1..K.

    Modes are learned one at a time; once a mode j is learned it occupies one
    direction of W's d-dimensional row space, and the component of a later mode k along
    that direction stops growing (it decays at rate ``(λ_j - λ_k)/2``).  The k-th mode
    therefore starts from the part of its projection ``v_k^T W0`` orthogonal to k - 1
    independent random directions, whose expected squared norm is the fraction
    ``(d - k + 1)/d`` of :func:`init_projection`.  This matters for the last few of
    the d modes (a delay of ``ln(d)/λ_d`` for the d-th); the first ones are unchanged.

    Parameters
    ----------
    W0 : (V, d) array
    n_modes : int, optional
        K ≤ d (default d).

    Returns
    -------
    (K,) float64 tensor
    """
    W0 = _t64(W0)
    s2 = init_projection(W0)
    d = W0.shape[1]
    K = d if n_modes is None else int(n_modes)
    if not 1 <= K <= d:
        raise QwemError(f"n_modes must be between 1 and d = {d}, got {n_modes}")
    return s2 * (d - torch.arange(K, dtype=_F64)) / d


def init_scale_to_s2(scale: float, embed_dim: int | None = None,
                     vocab_size: int | None = None) -> float:
    """Expected ``||W0||_F^2 / V`` for entries ``N(0, (scale/√d)^2)`` (paper's setup).

    ``V · d · scale^2/d / V = scale^2``: independent of d and V, which are accepted
    only so that call sites can pass the full init specification.
    Raises
    ------
    QwemError
        If ``scale`` is not a finite number > 0 (W0 = 0 never trains).
    """
    scale = check_real(scale, "init_scale (--init-scale)", gt=0)
    return scale ** 2


def random_init(vocab_size: int, embed_dim: int, scale: float, *,
                dtype: torch.dtype = torch.float64,
                device: str | torch.device | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's init: entries i.i.d. ``N(0, (scale/√d)^2)`` (paper's setup).

    Returns
    -------
    W0 : (V, d) tensor, with ``E||W0||_F^2 / V = scale^2``
    """
    scale = check_real(scale, "init_scale (--init-scale)", ge=0)
    W = torch.randn(vocab_size, embed_dim, dtype=dtype, device=device,
                    generator=generator)
    return W * (scale / embed_dim ** 0.5)


def predicted_loss(t, eigvals, s2_0, M_fro2: float, *,
                   normalisation: str = "frobenius") -> torch.Tensor:
    """Loss along the aligned solution (paper's flow).

    With ``W W^T = Σ_{k≤d} s_k^2 v_k v_k^T`` and ``M* = Σ_k λ_k v_k v_k^T``,
    ``||W W^T - M*||_F^2 = Σ_{k≤d} (s_k^2 - λ_k)^2 + Σ_{k>d} λ_k^2 = ||M*||_F^2 -
    Σ_{k≤d} (2 λ_k s_k^2 - s_k^4)``.

    Parameters
    ----------
    t : (T,) array of flow times
    eigvals : (d,) array
        The top-d eigenvalues (one per embedding dimension).
    s2_0 : scalar or (d,) array
    M_fro2 : float
        ``||M*||_F^2 = Σ_all λ^2`` (all V eigenvalues, not only the top d).
    normalisation : {"frobenius", "relative", "paper"}
        ``"frobenius"``: ``¼||W W^T - M*||_F^2`` (the Setting 3.1 loss with g = 1, up
        to its constant ``-¼||M*||_F^2``); ``"relative"``: ``||W W^T - M*||^2 /
        ||M*||^2 = 1 - L/L_min`` with the true minimum ``L_min = -(g/4)||M*||^2`` (1 at
        W = 0, 0 at the unconstrained optimum); ``"paper"``: ``1 - L/L_min`` in the
        normalisation of the paper (``g = 2/V^2``, ``L_min = -mean(M*^2)``), which is
        ``½ + ½ · relative``.

    Returns
    -------
    (T,) float64 tensor
    """
    lam = _t64(eigvals)
    s2 = mode_trajectory(t, lam, s2_0)
    fro = float(M_fro2) - (2.0 * lam * s2 - s2 * s2).sum(-1)
    if normalisation == "frobenius":
        return 0.25 * fro
    if normalisation == "relative":
        return fro / float(M_fro2)
    if normalisation == "paper":
        return 0.5 + 0.5 * fro / float(M_fro2)
    raise QwemError(f"unknown normalisation {normalisation!r}; use frobenius, "
                    "relative or paper")


# ----------------------------------------------------------------------------------
# optimiser steps <-> flow time
# ----------------------------------------------------------------------------------

def flow_time_per_step(lr: float, loss_scale: float = 1.0) -> float:
    """Flow time advanced by one gradient step of size ``lr``: ``2 · lr · loss_scale``.

    ``loss_scale`` is c in ``F = c · ¼||W W^T - M*||_F^2 + const`` (module docstring).
    """
    lr = check_real(lr, "lr (--lr)", gt=0)
    loss_scale = check_real(loss_scale, "loss_scale", gt=0)
    return 2.0 * lr * loss_scale


def paper_loss_scale(vocab_size: int, mstar_sq_mean: float) -> float:
    """Loss scale of the paper's normalised loss: ``2 / (V^2 mean(M*^2))``."""
    mstar_sq_mean = check_real(mstar_sq_mean, "mean(M*^2), mstar_sq_mean", gt=0)
    vocab_size = check_real(vocab_size, "vocab_size", gt=0)
    return 2.0 / (vocab_size ** 2 * mstar_sq_mean)


def _scale(vocab_size, mstar_sq_mean, loss_scale) -> float:
    if loss_scale is not None:
        if vocab_size is not None or mstar_sq_mean is not None:
            raise QwemError("give either loss_scale or (vocab_size, mstar_sq_mean)")
        return float(loss_scale)
    if vocab_size is None or mstar_sq_mean is None:
        raise QwemError("give loss_scale, or vocab_size and mstar_sq_mean for the "
                        "paper's normalisation")
    return paper_loss_scale(vocab_size, mstar_sq_mean)


def steps_to_time(steps, lr: float, vocab_size: int | None = None,
                  mstar_sq_mean: float | None = None, *,
                  loss_scale: float | None = None):
    """Flow time after ``steps`` gradient steps at a constant learning rate.

    With ``vocab_size`` and ``mstar_sq_mean``: the paper's ``t = steps · 4 lr / (V^2
    mean(M*^2))``.  With ``loss_scale=c``: ``t = steps · 2 lr c`` (e.g. c = 1 for
    gradient descent on ``¼||W W^T - M*||^2``, c = g for ``losses.expected_loss`` under
    Setting 3.1).  For a piecewise-constant schedule add the pieces.

    Returns
    -------
    float or array like ``steps``
    """
    dt = flow_time_per_step(lr, _scale(vocab_size, mstar_sq_mean, loss_scale))
    return np.asarray(steps, dtype=np.float64) * dt if np.ndim(steps) else \
        float(steps) * dt


def time_to_steps(t, lr: float, vocab_size: int | None = None,
                  mstar_sq_mean: float | None = None, *,
                  loss_scale: float | None = None):
    """Inverse of :func:`steps_to_time` (real-valued; round up for a step count)."""
    dt = flow_time_per_step(lr, _scale(vocab_size, mstar_sq_mean, loss_scale))
    return np.asarray(t, dtype=np.float64) / dt if np.ndim(t) else float(t) / dt


def stable_lr(eigvals, *, lam_min: float | None = None, loss_scale: float = 1.0,
              safety: float = 0.5) -> float:
    """A learning rate for which gradient descent on the quartic loss is stable.

    For ``F = c · ¼||W W^T - M*||^2`` the Hessian quadratic form is ``c (½||W Δ^T + Δ
    W^T||_F^2 + <W W^T - M*, Δ Δ^T>)``.  Its largest value over unit Δ, along the
    whole trajectory from small init to the rank-d optimum, is ``c κ`` with
    ``κ = max(2 λ_1, λ_1 - λ_min)``: 2λ_1 along a learned mode (``Δ = v_1 u_1^T``),
    ``λ_1 - λ_j`` when rotating a learned mode into an unlearned direction with
    eigenvalue λ_j (largest for the most negative λ; M* usually has a large negative
    eigenvalue, chapter 3), and ``-λ_min`` at W ≈ 0.  GD is stable iff ``lr <
    2/(c κ)``; this returns ``safety · 2/(c κ)``.  With ``safety ≤ ½``, ``lr · c · λ_1 ≤
    ½`` and a mode's logistic map ``u ← u(1 + a(1 - u))^2`` (``u = s^2/λ``, ``a = lr c
    λ``) never overshoots ``u = 1``.  The bound holds for losses of the form
    ``c · ¼||W W^T - M*||^2`` (Setting 3.1, any normalisation); with non-constant pair
    weights G (uniform or word2vec reweighting) it is only indicative.

    Parameters
    ----------
    eigvals : (K,) array
        Eigenvalues of M* (at least the largest).
    lam_min : float, optional
        The most negative eigenvalue of M*; default ``min(eigvals)`` (pass it when
        ``eigvals`` holds only the top of the spectrum).
    loss_scale : float
        c (see the module docstring).
    safety : float in (0, 1)

    Returns
    -------
    float
    """
    lam = _t64(eigvals)
    if lam.numel() == 0:
        raise QwemError("stable_lr needs at least one eigenvalue")
    if not 0 < safety < 1:
        raise QwemError(f"safety must be in (0, 1), got {safety}")
    loss_scale = check_real(loss_scale, "loss_scale", gt=0)
    l1 = float(lam.max())
    lmin = float(lam.min()) if lam_min is None else float(lam_min)
    kappa = max(2.0 * l1, l1 - lmin, -lmin)
    if not kappa > 0:
        raise QwemError("M* has no non-zero eigenvalue: nothing to learn")
    return safety * 2.0 / (float(loss_scale) * kappa)


# ----------------------------------------------------------------------------------
# numerical reference
# ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FlowSolution:
    """Numerically integrated flow.

    Attributes
    ----------
    t : (T,) float64 array
    singular_values : (T, d) float64 array, descending
    W : (T, V, d) float64 array or None
    n_evals : int
        Number of right-hand-side evaluations.
    """

    __repr__ = short_repr

    t: np.ndarray
    singular_values: np.ndarray
    W: np.ndarray | None
    n_evals: int


def integrate_flow(M, W0, t_eval, *, method: str = "DOP853", rtol: float = 1e-10,
                   atol: float | None = None, return_W: bool = True) -> FlowSolution:
    """Reference solution of ``dW/dt = -½(W W^T - M) W`` for any W0 (paper's flow).

    Adaptive Runge–Kutta (``scipy.integrate.solve_ivp``) in float64.  From a small
    init the dynamics span many decades (exponential growth ``e^{λt/2}`` from
    ``||W0|| ~ 10^-6``, plateaus between modes); the adaptive step follows the
    relative change of W, so plateaus cost about as much as the transitions.  The
    absolute tolerance defaults to ``1e-3 · rtol · rms(W0)`` so that tiny unlearned
    components are still resolved relative to their own size.  For an M* with a large
    negative eigenvalue the problem is mildly stiff; ``method="LSODA"`` may be faster.

    Parameters
    ----------
    M : (V, V) array, symmetric
    W0 : (V, d) array
    t_eval : (T,) array, increasing, ``≥ 0``
    method : str
        Any ``solve_ivp`` method.
    rtol, atol : float
    return_W : bool
        Keep W at every time (``T·V·d`` floats).

    Returns
    -------
    FlowSolution
    """
    from scipy.integrate import solve_ivp

    M = _t64(M).numpy()
    W0 = _t64(W0).numpy()
    t_eval = _t64(t_eval).numpy().reshape(-1)
    V, d = W0.shape
    if M.shape != (V, V):
        raise QwemError(f"M must be ({V}, {V}) to match W0, got {M.shape}")
    if t_eval.size == 0 or t_eval[0] < 0 or np.any(np.diff(t_eval) < 0):
        raise QwemError("t_eval must be a non-empty increasing array of times >= 0")
    if atol is None:
        rms = float(np.sqrt(np.mean(W0 * W0))) or 1.0
        atol = 1e-3 * rtol * rms

    def rhs(_t, y):
        W = y.reshape(V, d)
        return (-0.5 * (W @ (W.T @ W) - M @ W)).reshape(-1)

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), W0.reshape(-1), method=method,
                    t_eval=t_eval, rtol=rtol, atol=atol)
    if sol.status != 0:
        raise QwemError(f"flow integration failed: {sol.message}; try another method "
                        "or a looser rtol")
    Ws = sol.y.T.reshape(-1, V, d)
    sv = np.linalg.svd(Ws, compute_uv=False)
    return FlowSolution(sol.t, sv, Ws if return_W else None, int(sol.nfev))


def crossing_times(t, s2, level) -> np.ndarray:
    """First time each column of ``s2`` reaches ``level`` (e.g. λ_k/2).

    Interpolates ``log s2`` linearly in t between the bracketing samples (modes grow
    exponentially before they saturate).

    Parameters
    ----------
    t : (T,) array, increasing
    s2 : (T, K) array
    level : scalar or (K,) array, ``> 0``

    Returns
    -------
    (K,) float64 array; ``nan`` where the level is never reached, ``t[0]`` where it is
    reached at the start.
    """
    t = np.asarray(t, dtype=np.float64)
    s2 = np.asarray(s2, dtype=np.float64)
    if s2.ndim == 1:
        s2 = s2[:, None]
    level = np.broadcast_to(np.asarray(level, dtype=np.float64), (s2.shape[1],))
    out = np.full(s2.shape[1], np.nan)
    for k in range(s2.shape[1]):
        above = np.nonzero(s2[:, k] >= level[k])[0]
        if above.size == 0:
            continue
        i = above[0]
        if i == 0:
            out[k] = t[0]
            continue
        y0, y1 = np.log(max(s2[i - 1, k], 1e-300)), np.log(s2[i, k])
        f = (np.log(level[k]) - y0) / (y1 - y0) if y1 > y0 else 1.0
        out[k] = t[i - 1] + f * (t[i] - t[i - 1])
    return out


# ----------------------------------------------------------------------------------
# finite steps
# ----------------------------------------------------------------------------------

def discrete_mode_trajectory(steps, lam, s2_0, lr: float, *,
                             loss_scale: float = 1.0) -> torch.Tensor:
    """``s_k^2`` of an aligned mode after ``n`` gradient-descent steps of size ``lr``.

    A gradient step on ``F = c · ¼||W W^T - M*||_F^2`` is ``W ← W - lr c (W W^T - M*)
    W``.  If ``W = Σ_k s_k v_k u_k^T`` with eigenvectors ``v_k`` of M* it stays of
    that form with ``s_k ← s_k (1 + lr c (λ_k - s_k^2))``, i.e.

        s^2 ← s^2 (1 + lr c (λ - s^2))^2,   or   u ← u (1 + a(1 - u))^2

    with ``u = s^2/λ`` and ``a = lr c λ``: the discrete counterpart of
    :func:`mode_trajectory` at flow time ``t = 2 lr c n`` (:func:`steps_to_time`).
    Early on (``u ≪ 1``) a step multiplies ``u`` by ``(1 + a)^2`` where the flow
    multiplies it by ``e^{2a}``, so finite steps lag the flow by the factor
    ``a / ln(1 + a)``.

    Parameters
    ----------
    steps : int or (T,) array of ints, ``≥ 0``
        Step counts at which to report.
    lam : scalar or (K,) array
    s2_0 : scalar or (K,) array, ``≥ 0``
    lr : float
    loss_scale : float
        c (see the module docstring).

    Returns
    -------
    (T, K) float64 tensor (shape ``steps.shape + broadcast(lam, s2_0).shape``)
    """
    n = np.asarray(steps)
    if n.size and (not np.issubdtype(n.dtype, np.integer) or (n < 0).any()):
        raise QwemError("steps must be integers >= 0")
    lr = check_real(lr, "lr (--lr)", gt=0)
    loss_scale = check_real(loss_scale, "loss_scale", gt=0)
    lam, s2 = torch.broadcast_tensors(_t64(lam), _t64(s2_0))
    if (s2 < 0).any():
        raise QwemError("initial squared singular values s2_0 must be >= 0")
    eta = float(lr) * float(loss_scale)
    flat = n.reshape(-1)
    out = torch.empty((flat.size,) + tuple(lam.shape), dtype=_F64)
    order = np.argsort(flat, kind="stable")
    s2, done = s2.clone(), 0
    for i in order:
        while done < flat[i]:
            s2 = s2 * (1.0 + eta * (lam - s2)) ** 2
            done += 1
        out[i] = s2
    return out.reshape(n.shape + tuple(lam.shape))


# ----------------------------------------------------------------------------------
# what a run has learned, and when
# ----------------------------------------------------------------------------------

def half_learned_times(t, s2, eigvals) -> np.ndarray:
    """First time each mode is half learned, ``s_k^2 = λ_k/2``, from checkpoints.

    Between two checkpoints the logit ``ln(s_k^2/(λ_k - s_k^2))`` is interpolated
    linearly in t.  Along the sigmoid of :func:`mode_trajectory` the logit is exactly
    linear in t (the logistic equation, chapter 2), so the time found does not
    depend on where log-spaced checkpoints fall; :func:`crossing_times` interpolates
    ``ln s^2``, exact only while a mode grows exponentially.

    Parameters
    ----------
    t : (T,) array, increasing
        Flow times of the checkpoints.
    s2 : (T, K) array
        Squared singular values ``s_k^2`` of W at each checkpoint.
    eigvals : (K,) array, ``> 0``
        λ_k, the value mode k converges to.

    Returns
    -------
    (K,) float64 array; ``nan`` where a mode never reaches half.
    """
    lam = _positive(eigvals, "half_learned_times")
    u = np.clip(np.asarray(s2) / lam, 1e-300, 1 - 1e-12)    # learned fraction
    return crossing_times(t, u / (1 - u), 1.0)


def half_learned_ratio(t, s2, eigvals, s2_0) -> np.ndarray:
    """Measured over predicted half-learned time of each mode (1: as the theory says).

    Measured by :func:`half_learned_times` from checkpoints; predicted by the sigmoid
    started at ``s2_0`` (:func:`timescales`, ``t_half``).

    Parameters
    ----------
    t : (T,) array, increasing
    s2 : (T, K) array
    eigvals : (K,) array, ``> 0``
    s2_0 : scalar or (K,) array, ``> 0``
        The theory's initial values ``s_k^2(0)``.

    Returns
    -------
    (K,) float64 array
    """
    t_meas = half_learned_times(t, s2, eigvals)
    t_pred = timescales(np.asarray(eigvals, dtype=np.float64), s2_0).t_half.numpy()
    return t_meas / t_pred


def first_learned(projections, eigvals) -> np.ndarray:
    """The first checkpoint at which each mode is half learned (the learning order).

    Mode k counts as half learned once W's squared projection on the k-th eigenvector,
    ``||v_k^T W||^2``, reaches ``λ_k/2``.  Modes learned largest first give a
    non-decreasing result.

    Parameters
    ----------
    projections : (T, K) array
        ``||v_k^T W||^2`` at each checkpoint (:attr:`Alignment.projections`).
    eigvals : (K,) array

    Returns
    -------
    (K,) int array of checkpoint indices; ``-1`` where a mode is never half learned.
    """
    proj = np.asarray(projections, dtype=np.float64)
    lam = np.asarray(eigvals, dtype=np.float64)
    reached = proj >= lam / 2
    return np.where(reached.any(axis=0), reached.argmax(axis=0), -1)


def next_mode_learned(t, s2, eigvals, half) -> np.ndarray:
    """How far mode k + 1 is learned when mode k is half learned.

    ``u_{k+1} = s_{k+1}^2/λ_{k+1}`` at ``t = half[k]``, interpolated linearly between
    samples: near 0 when the modes are learned one at a time, large when they are
    learned together (chapter 2, App. C of the paper).

    Parameters
    ----------
    t : (T,) array, increasing
    s2 : (T, K) array
        ``s_k^2(t)``, modes in the order of ``eigvals``.
    eigvals : (K,) array
    half : (K,) array
        Half-learned time of each mode (:func:`crossing_times` at ``λ_k/2``).

    Returns
    -------
    (K - 1,) float64 array
    """
    s2, lam = np.asarray(s2), np.asarray(eigvals)
    return np.array([np.interp(half[k], t, s2[:, k + 1]) / lam[k + 1]
                     for k in range(len(lam) - 1)])


def appc_bound(eigvals) -> np.ndarray:
    """The paper's App. C bound ``B_k`` for each pair of consecutive modes k, k + 1.

    ``B_k = -λ_k λ_{k+1}/(λ_k - λ_{k+1}) · ln(λ_{k+1}/(λ_k - λ_{k+1}))``.  Sequential
    learning, each mode learned before the next has grown, is guaranteed when
    ``ln σ^2`` lies well below every ``B_k`` (a sufficient condition, not a
    necessary one).

    Parameters
    ----------
    eigvals : (K,) array, ``K ≥ 2``, positive and strictly decreasing

    Returns
    -------
    (K - 1,) float64 array
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2 or not (np.all(lam > 0)
                                             and np.all(np.diff(lam) < 0)):
        raise QwemError("appc_bound needs two or more positive, strictly decreasing "
                        f"eigenvalues, got {lam}")
    a, b = lam[:-1], lam[1:]
    return -a * b / (a - b) * np.log(b / (a - b))


@dataclass(frozen=True, eq=False)
class Alignment:
    """How far W has turned onto M*'s top eigenvectors, at one moment of training.

    Attributes
    ----------
    overlap : float
        Mean squared cosine of the principal angles between span(W) and the top-d
        eigenvectors (1: the same subspace; about d/V for a random one).
    learned : float
        The same for W's top-r left singular vectors and the top-r eigenvectors,
        ``r = rank``; ``nan`` while ``rank`` is 0.
    rank : int
        Modes past half their eigenvalue: how many ``s_k^2 > λ_k/2``.
    cloud : (V, c) float32 array
        Every word on W's top ``c`` singular directions, ``u_k s_k``, each sign
        matched to the eigenvector's (the paper's Figure 1).
    projections : (d,) float64 array
        ``||v_k^T W||^2``, W's squared projection on each top eigenvector.
    """

    __repr__ = short_repr

    overlap: float
    learned: float
    rank: int
    cloud: np.ndarray
    projections: np.ndarray


def alignment(W, eigvals, eigvecs, *, cloud_dims: int = 3) -> Alignment:
    """Measure what W has learned of M*'s top eigenpairs (paper, Figures 1 and 2).

    Parameters
    ----------
    W : (V, d) tensor or array
        The embeddings at one checkpoint.
    eigvals : (d,) array
        M*'s top-d eigenvalues, descending.
    eigvecs : (V, d) tensor or array
        The matching orthonormal eigenvectors, in eigenvalue order.
    cloud_dims : int
        Singular directions kept in :attr:`Alignment.cloud`.

    Returns
    -------
    Alignment
    """
    from .evaluate import subspace_overlap

    W = torch.as_tensor(W).detach().to("cpu", _F64)
    U_top = torch.as_tensor(eigvecs).to("cpu", _F64)
    lam = np.asarray(eigvals, dtype=np.float64)
    if W.ndim != 2 or U_top.shape != W.shape or lam.shape != (W.shape[1],):
        raise QwemError(f"alignment needs W and eigvecs of one shape (V, d) and d "
                        f"eigenvalues, got {tuple(W.shape)}, {tuple(U_top.shape)} "
                        f"and {lam.shape}")
    U, s, _ = torch.linalg.svd(W, full_matrices=False)
    rank = int(((s * s).numpy() > 0.5 * lam).sum())
    full = subspace_overlap(U, U_top, a_basis=True, b_basis=True)
    learned = (subspace_overlap(U[:, :rank], U_top[:, :rank],
                                a_basis=True, b_basis=True).mean_cos2
               if rank else np.nan)
    c = cloud_dims
    sign = torch.sign((U[:, :c] * U_top[:, :c]).sum(0))      # match M*'s axes
    cloud = (U[:, :c] * s[:c] * sign).numpy().astype(np.float32)
    proj = ((U_top.T @ W) ** 2).sum(1).numpy()
    return Alignment(full.mean_cos2, learned, rank, cloud, proj)


def _positive(eigvals, who: str) -> np.ndarray:
    """``eigvals`` as a float64 array, refused unless every one is ``> 0``."""
    lam = np.asarray(eigvals, dtype=np.float64)
    if not np.all(lam > 0):
        raise QwemError(f"{who} needs eigenvalues > 0 (a mode with eigenvalue <= 0 "
                        f"is never learned), got {lam}")
    return lam
