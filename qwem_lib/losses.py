"""The word2vec (SGNS) loss, its quartic approximation QWEM, and pair reweightings.

Karkada et al., arXiv 2502.09863: the losses and Thm. 1.  With ``x = w_i^T w_j``
(tied weights), the per-pair losses are

* SGNS: ``l+(x) = log(1 + e^{-x})`` on positive pairs, ``l-(x) = log(1 + e^{x})`` on
  negative pairs;
* QWEM: ``q+(x) = -x + x^2/4`` and ``q-(x) = x + x^2/4``.

Relation between them (exact): ``log(1 + e^{∓x}) = log 2 ∓ x/2 + log cosh(x/2)`` and
``log cosh(x/2) = x^2/8 - x^4/192 + O(x^6)``, so

    q±(x) = 2 (l±(x) - log 2) + [x^2/4 - 2 log cosh(x/2)]
          = 2 (l±(x) - log 2) + x^4/96 + O(x^6),

i.e. QWEM is the Taylor series of SGNS to second order with the constant ``log 2``
dropped and the whole multiplied by 2 (the paper says "a factor ½ dropped": the
quadratic coefficient goes from 1/8 to 1/4).  The bracket is ``>= 0`` for every x.

The loss being minimised is an expectation over pairs (paper's loss),

    L(W) = sum_ij Ψ+_ij P_ij l+(x_ij) + k sum_ij Ψ-_ij Q_ij l-(x_ij),

with ``Q_ij = P_i n_j`` (symmetrised, see below) the negative-pair distribution, ``n``
the distribution negatives are drawn from (the unigram, or word2vec's ``P^{3/4}``) and
``k`` the number of negatives.  :func:`sampled_loss` is its minibatch estimator,
:func:`expected_loss` evaluates it exactly (in row blocks) and :func:`expected_grad`
gives its gradient without autograd.

Completing the square per pair, with ``a = Ψ+ P``, ``b = k Ψ- Q``, ``G = a + b``:

    a q+(x) + b q-(x) = (G/4) (x - M*)^2 - G M*^2 / 4,   M* = 2 (a - b) / G,

so ``L_QWEM = ¼ sum_ij G_ij (x_ij - M*_ij)^2 - ¼ sum_ij G_ij M*_ij^2`` and, when
``G = g`` is constant (Setting 3.1), ``L = (g/4)||W W^T - M*||_F^2 + const``
(the paper's Theorem 1).  Its gradient is ``∇L = (G ∘ (W W^T - M*)) W``, which under
Setting 3.1 is ``g (W W^T - M*) W``.

Tied weights make the loss depend on ``x_ij = x_ji`` only, so the negative distribution
``i ~ P_i, j ~ n_j`` acts through its symmetrisation ``Q_ij = ½(P_i n_j + n_i P_j)``
(as in :func:`qwem_lib.targets.m_star`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .corpus.subsampling import (MIN_SUBSAMPLE, check_subsample, keep_probs,
                                 subsample_keep_probs)
from .runtime._repr import short_repr
from .runtime.errors import QwemError
from .runtime.options import LOSSES, REWEIGHTINGS, check_real
from .targets import m_star, negative_probs

__all__ = ["sgns_pos", "sgns_neg", "qwem_pos", "qwem_neg", "pair_losses",
           "sampled_loss", "Reweighting", "reweighting", "subsample_keep_probs",
           "keep_probs", "check_subsample", "MIN_SUBSAMPLE", "expected_loss",
           "expected_grad", "quartic_minus_frobenius",
           "REWEIGHTINGS", "LOSSES"]

_BLOCK = 1024


# ----------------------------------------------------------------------------------
# per-pair losses
# ----------------------------------------------------------------------------------

def sgns_pos(x: torch.Tensor) -> torch.Tensor:
    """SGNS loss of a positive pair, ``log(1 + e^{-x}) = softplus(-x)`` (stable)."""
    return F.softplus(-x)


def sgns_neg(x: torch.Tensor) -> torch.Tensor:
    """SGNS loss of a negative pair, ``log(1 + e^{x}) = softplus(x)`` (stable)."""
    return F.softplus(x)


def qwem_pos(x: torch.Tensor) -> torch.Tensor:
    """QWEM loss of a positive pair, ``-x + x^2/4`` (paper's loss)."""
    return x * (0.25 * x - 1.0)


def qwem_neg(x: torch.Tensor) -> torch.Tensor:
    """QWEM loss of a negative pair, ``x + x^2/4`` (paper's loss)."""
    return x * (0.25 * x + 1.0)


def _dqwem_pos(x):
    return 0.5 * x - 1.0


def _dqwem_neg(x):
    return 0.5 * x + 1.0


def _dsgns_pos(x):
    return -torch.sigmoid(-x)


def _dsgns_neg(x):
    return torch.sigmoid(x)


_FUNCS = {"qwem": (qwem_pos, qwem_neg, _dqwem_pos, _dqwem_neg),
          "sgns": (sgns_pos, sgns_neg, _dsgns_pos, _dsgns_neg)}


def _funcs(loss: str):
    try:
        return _FUNCS[loss]
    except KeyError:
        raise QwemError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}") \
            from None


def pair_losses(loss: str = "qwem"):
    """The pair ``(l+, l-)`` of per-pair loss functions for ``"qwem"`` or ``"sgns"``."""
    pos, neg, _, _ = _funcs(loss)
    return pos, neg


# ----------------------------------------------------------------------------------
# minibatch estimator
# ----------------------------------------------------------------------------------

def _check_pairs(i, j, what: str) -> None:
    if i.shape != j.shape or i.ndim != 1:
        raise QwemError(f"{what} index arrays must be 1-D and of equal length, got "
                        f"{tuple(i.shape)} and {tuple(j.shape)}")
    if i.numel() == 0:
        raise QwemError(f"no {what} pairs in the batch; use a positive batch size")


def sampled_loss(W: torch.Tensor, pos_i: torch.Tensor, pos_j: torch.Tensor,
                 neg_i: torch.Tensor, neg_j: torch.Tensor, loss: str = "qwem", *,
                 pos_weight: torch.Tensor | None = None,
                 neg_weight: torch.Tensor | None = None,
                 W_ctx: torch.Tensor | None = None) -> torch.Tensor:
    """Minibatch estimate of the reweighted loss (paper's loss).

    ``mean_b Ψ+_b l+(x_b)`` over the positive pairs plus ``mean_b w-_b l-(x_b)``
    over the negative pairs.  If positives are drawn from ``P_ij`` and negatives from
    ``P_i n_j``, with ``pos_weight = Ψ+`` and ``neg_weight = k Ψ-`` at the sampled
    pairs (:meth:`Reweighting.pair_weights`), its expectation is
    :func:`expected_loss` and so is the expectation of its gradient.

    Parameters
    ----------
    W : (V, d) tensor
        Word embeddings (requires grad to train).
    pos_i, pos_j : (B+,) int64 tensors
        Positive (centre, context) pairs.
    neg_i, neg_j : (B-,) int64 tensors
        Negative pairs.
    loss : {"qwem", "sgns"}
    pos_weight : (B+,) tensor, optional
        Ψ+ at each positive pair; 1 if omitted.
    neg_weight : (B-,) tensor, optional
        ``k Ψ-`` at each negative pair (the number of negatives is folded in); 1 if
        omitted.
    W_ctx : (V, d) tensor, optional
        Context embeddings for untied weights (``x = w_i^T c_j``); tied if omitted.

    Returns
    -------
    scalar tensor
    """
    _check_pairs(pos_i, pos_j, "positive")
    _check_pairs(neg_i, neg_j, "negative")
    lpos, lneg, _, _ = _funcs(loss)
    C = W if W_ctx is None else W_ctx
    x_pos = (W[pos_i] * C[pos_j]).sum(-1)
    x_neg = (W[neg_i] * C[neg_j]).sum(-1)
    t_pos = lpos(x_pos)
    t_neg = lneg(x_neg)
    if pos_weight is not None:
        t_pos = t_pos * pos_weight
    if neg_weight is not None:
        t_neg = t_neg * neg_weight
    return t_pos.mean() + t_neg.mean()


# ----------------------------------------------------------------------------------
# reweightings
# ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Reweighting:
    """Pair reweighting ``(Ψ+, Ψ-)``, negative distribution and number of negatives.

    Each Ψ is stored compactly: ``None`` means 1, a ``(V,)`` vector ``a`` means the
    rank-one ``Ψ_ij = a_i a_j`` and a ``(V, V)`` tensor is taken as is.  With
    ``inverse_g=True`` both Ψ's are Setting 3.1's ``1 / (P_ij + k Q_ij)``, computed
    from ``P_ij`` on the fly (never stored, which matters at V = 10^4).

    Attributes
    ----------
    name : str
    psi_pos, psi_neg : None, (V,) or (V, V) tensor
    neg_dist : (V,) tensor
        Distribution ``n`` the context of a negative pair is drawn from (the centre is
        drawn from the unigram).
    negatives : float
        k, the weight of the negative term.
    neg_power : float or None
        ``neg_dist = P^neg_power`` renormalised (1: the paper's, 0.75: word2vec's);
        None for any other ``neg_dist`` (then :meth:`target` is unavailable).
    inverse_g : bool
        Setting 3.1: ``Ψ+ = Ψ- = 1/(P_ij + k Q_ij)`` so that ``G = 1``.
    dense : (a, b) of (V, V) tensors, or None
        The weights of every pair, computed once (:meth:`materialised`) for a trainer
        that evaluates them at every step; None: computed per row block.
    """

    __repr__ = short_repr

    name: str
    psi_pos: torch.Tensor | None
    psi_neg: torch.Tensor | None
    neg_dist: torch.Tensor
    negatives: float = 1.0
    neg_power: float | None = 1.0
    inverse_g: bool = False
    dense: tuple | None = None

    def materialised(self, P_ij: torch.Tensor, unigram: torch.Tensor) -> "Reweighting":
        """This reweighting with ``a`` and ``b`` of every pair stored (2 V² entries in
        P_ij's dtype), so that :meth:`weight_rows` slices them instead of computing
        them; valid for this ``P_ij`` and ``unigram`` only."""
        a, b = self.weight_rows(P_ij, unigram, 0, P_ij.shape[0])
        return replace(self, dense=(a.contiguous(), b.contiguous()))

    def neg_pair_rows(self, unigram: torch.Tensor, i0: int, i1: int) -> torch.Tensor:
        """Rows ``i0:i1`` of ``Q_ij = ½(P_i n_j + n_i P_j)`` (without the k)."""
        n = self.neg_dist
        if n is unigram:
            return unigram[i0:i1, None] * unigram[None, :]
        return 0.5 * (unigram[i0:i1, None] * n[None, :] + n[i0:i1, None] * unigram)

    def weight_rows(self, P_ij: torch.Tensor, unigram: torch.Tensor, i0: int,
                    i1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of ``a = Ψ+ ∘ P`` and ``b = k Ψ- ∘ Q``; their sum is G (Thm. 1).

        Returns
        -------
        a, b : (i1 - i0, V) tensors
        """
        if self.dense is not None:
            return self.dense[0][i0:i1], self.dense[1][i0:i1]
        a = P_ij[i0:i1]
        b = self.negatives * self.neg_pair_rows(unigram, i0, i1)
        if self.inverse_g:
            g = a + b
            g = torch.where(g > 0, g, torch.ones((), dtype=g.dtype, device=g.device))
            return a / g, b / g
        return (a * _psi_rows(self.psi_pos, i0, i1),
                b * _psi_rows(self.psi_neg, i0, i1))

    def pair_weights(self, P_ij: torch.Tensor, unigram: torch.Tensor,
                     pos_i: torch.Tensor, pos_j: torch.Tensor, neg_i: torch.Tensor,
                     neg_j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Ψ+ at positives, k Ψ- at negatives)`` for :func:`sampled_loss`.

        Sample positives from ``P_ij`` and negatives as ``i ~ unigram, j ~ neg_dist``.
        """
        if self.inverse_g:
            def psi(i, j):
                q = self.negatives * 0.5 * (unigram[i] * self.neg_dist[j]
                                            + self.neg_dist[i] * unigram[j])
                return 1.0 / (P_ij[i, j] + q)
            return psi(pos_i, pos_j), self.negatives * psi(neg_i, neg_j)
        wp = _psi_at(self.psi_pos, pos_i, pos_j, P_ij)
        wn = self.negatives * _psi_at(self.psi_neg, neg_i, neg_j, P_ij)
        return wp, wn

    def target(self, P_ij: torch.Tensor, unigram: torch.Tensor, *,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """The target ``M* = 2(a - b)/G`` of this reweighting (paper, Thm. 1).

        Whenever ``Ψ+ = Ψ-`` (all three named schemes) Ψ cancels and M* is the
        unweighted ``2(P - kQ)/(P + kQ)``: reweighting changes the weights G of the
        least-squares problem, not its target.
        """
        power = self.neg_power
        if power is None:
            raise QwemError("this reweighting's negative distribution is not a power "
                            "of the unigram; build M* with qwem_lib.targets.m_star")
        if self.inverse_g or self.psi_pos is self.psi_neg:
            return m_star(P_ij, unigram, negatives=self.negatives, neg_power=power,
                          out=out)
        V = P_ij.shape[0]
        return m_star(P_ij, unigram, negatives=self.negatives, neg_power=power,
                      psi_pos=_psi_full(self.psi_pos, V, P_ij),
                      psi_neg=_psi_full(self.psi_neg, V, P_ij), out=out)


def _psi_rows(psi, i0, i1):
    if psi is None:
        return 1.0
    if psi.ndim == 1:
        return psi[i0:i1, None] * psi[None, :]
    return psi[i0:i1]


def _psi_at(psi, i, j, like):
    if psi is None:
        return torch.ones(i.shape, dtype=like.dtype, device=like.device)
    if psi.ndim == 1:
        return psi[i] * psi[j]
    return psi[i, j]


def _psi_full(psi, V, like):
    if psi is None:
        return torch.ones((V, V), dtype=like.dtype, device=like.device)
    if psi.ndim == 1:
        return psi[:, None] * psi[None, :]
    return psi


def reweighting(name: str, P_ij: torch.Tensor, unigram: torch.Tensor, *,
                negatives: float = 1.0, subsample_t: float = 1e-5,
                neg_power: float | None = None) -> Reweighting:
    """Build one of the paper's reweightings (paper, Thm. 1).

    * ``"setting31"``: ``Ψ+ = Ψ- = 1/(P_ij + k Q_ij)`` so ``G = 1``; negatives from the
      unigram unless ``neg_power`` says otherwise.
    * ``"uniform"``: ``Ψ = 1`` (plain SGNS/QWEM with k unigram negatives).
    * ``"word2vec"``: subsampling with keep probability ``p_i = min(1, √(t/P_i) +
      t/P_i)`` as the pair weight ``p_i p_j`` on both terms, and k negatives from
      ``P^{3/4}`` (``neg_power=0.75``).  word2vec's dynamic window (window size drawn
      uniformly in 1..L, so separation s survives with probability ∝ L + 1 - s) is not
      a Ψ here: it is the ``"linear"`` window weighting already in ``P_ij`` (see
      ``cooccurrence.window_weights``).  Real word2vec subsamples the text, so the
      context of a negative pair is drawn from the unsubsampled ``P^{3/4}``; the
      symmetric ``p_i p_j`` on negatives is the simplification the paper describes.

    Weights are not normalised: ``G`` then sets the loss scale (see
    :func:`qwem_lib.dynamics.flow_time_per_step`).

    Parameters
    ----------
    name : {"setting31", "uniform", "word2vec"}
    P_ij : (V, V) float64
    unigram : (V,) float64
    negatives : float
        k.
    subsample_t : float
        word2vec's subsampling threshold t.
    neg_power : float, optional
        Exponent of the negative distribution (default 0.75 for word2vec, else 1).

    Returns
    -------
    Reweighting
    """
    if name not in REWEIGHTINGS:
        raise QwemError(f"unknown reweighting {name!r}; use one of "
                        f"{', '.join(REWEIGHTINGS)}")
    negatives = check_real(negatives, "negatives (k, --negatives)", gt=0)
    if neg_power is None:
        neg_power = 0.75 if name == "word2vec" else 1.0
    neg_power = check_real(neg_power, "neg_power (--neg-power)")
    neg = negative_probs(unigram, neg_power)
    if name == "setting31":
        return Reweighting(name, None, None, neg, negatives, neg_power, inverse_g=True)
    if name == "uniform":
        return Reweighting(name, None, None, neg, negatives, neg_power)
    p = subsample_keep_probs(unigram, subsample_t)  # "word2vec"
    return Reweighting(name, p, p, neg, negatives, neg_power)


def _resolve(unigram, reweight, psi_pos, psi_neg, negatives, neg_dist) -> Reweighting:
    if reweight is not None:
        if psi_pos is not None or psi_neg is not None or neg_dist is not None:
            raise QwemError("pass either reweight= or psi_pos/psi_neg/neg_dist, "
                            "not both")
        return reweight
    return Reweighting("custom", psi_pos, psi_neg,
                       unigram if neg_dist is None else neg_dist, negatives,
                       1.0 if neg_dist is None else None)


# ----------------------------------------------------------------------------------
# expected (matrix-form) loss and its gradient
# ----------------------------------------------------------------------------------

def _plain_cpu(x: torch.Tensor, *others) -> bool:
    """Whether ``x`` and ``others`` are CPU tensors of one float dtype (x's), outside
    autograd: what the compiled kernels (:mod:`qwem_lib.kernels._pair`) take."""
    return (x.device.type == "cpu" and not x.requires_grad
            and x.dtype in (torch.float32, torch.float64)
            and all(isinstance(t, torch.Tensor) and t.device.type == "cpu"
                    and t.dtype == x.dtype and not t.requires_grad for t in others))


def _compiled(x: torch.Tensor, a, b) -> bool:
    """Whether a block goes to the compiled kernel (:mod:`qwem_lib.kernels._pair`):
    :func:`_plain_cpu` tensors of one shape; else torch evaluates it."""
    return _plain_cpu(x, a, b) and a.shape == b.shape == x.shape


def _fused_unit_g(Wc: torch.Tensor, P_ij, unigram, rw: Reweighting) -> bool:
    """Whether :func:`expected_loss` forms Setting 3.1's weights inside the compiled
    pass (:func:`qwem_lib.kernels._pair.block_loss_unit_g`): :func:`_plain_cpu`
    contiguous inputs, weights not stored."""
    inputs = (P_ij, unigram, rw.neg_dist)
    return (rw.inverse_g and rw.dense is None and _plain_cpu(Wc, *inputs)
            and all(t.is_contiguous() for t in inputs))


def _check_shapes(W, P_ij, unigram):
    if P_ij.ndim != 2 or P_ij.shape[0] != P_ij.shape[1]:
        raise QwemError(f"P_ij must be a square (V, V) matrix, got {tuple(P_ij.shape)}")
    V = P_ij.shape[0]
    if W.ndim != 2 or W.shape[0] != V:
        raise QwemError(f"W must be (V, d) with V = {V} rows, got {tuple(W.shape)}")
    if unigram.shape != (V,):
        raise QwemError(f"unigram must have shape ({V},), got {tuple(unigram.shape)}")


def expected_loss(W: torch.Tensor, P_ij: torch.Tensor, unigram: torch.Tensor,
                  loss: str = "qwem", *, reweight: Reweighting | None = None,
                  psi_pos: torch.Tensor | None = None,
                  psi_neg: torch.Tensor | None = None, negatives: float = 1.0,
                  neg_dist: torch.Tensor | None = None,
                  block_size: int = _BLOCK) -> torch.Tensor:
    """``sum_ij Ψ+ P_ij l+(x_ij) + k sum_ij Ψ- Q_ij l-(x_ij)``, ``x = W W^T``.

    Computed in row blocks, so memory is O(V · block_size) (plus autograd's graph if W
    requires grad).

    Parameters
    ----------
    W : (V, d) tensor
    P_ij : (V, V) tensor
        Pair distribution (sums to 1).
    unigram : (V,) tensor
    loss : {"qwem", "sgns"}
    reweight : Reweighting, optional
        From :func:`reweighting`; alternatively give ``psi_pos``, ``psi_neg`` (None,
        ``(V,)`` for a rank-one product or ``(V, V)``), ``negatives`` and
        ``neg_dist`` (default: the unigram).  Default: Ψ = 1, k = 1.
    block_size : int

    Returns
    -------
    scalar tensor (dtype promoted from W and P_ij)
    """
    _check_shapes(W, P_ij, unigram)
    rw = _resolve(unigram, reweight, psi_pos, psi_neg, negatives, neg_dist)
    lpos, lneg, _, _ = _funcs(loss)
    V = P_ij.shape[0]
    Wc = W.to(torch.promote_types(W.dtype, P_ij.dtype))
    total = torch.zeros((), dtype=Wc.dtype, device=W.device)
    fused = _fused_unit_g(Wc, P_ij, unigram, rw)
    for i0 in range(0, V, block_size):
        i1 = min(i0 + block_size, V)
        x = Wc[i0:i1] @ Wc.T
        if fused:  # Setting 3.1: weights formed in the kernel's pass
            from .kernels._pair import block_loss_unit_g

            total = total + block_loss_unit_g(
                x.numpy(), P_ij[i0:i1].numpy(), unigram.numpy(),
                rw.neg_dist.numpy(), float(rw.negatives), i0, loss,
                torch.get_num_threads())
            continue
        a, b = rw.weight_rows(P_ij, unigram, i0, i1)
        if _compiled(x, a, b):
            from .kernels._pair import block_loss

            total = total + block_loss(x.numpy(), a.numpy(), b.numpy(), loss,
                                       torch.get_num_threads())
        else:
            total = total + (a * lpos(x)).sum() + (b * lneg(x)).sum()
    return total


def expected_grad(W: torch.Tensor, P_ij: torch.Tensor, unigram: torch.Tensor,
                  loss: str = "qwem", *, reweight: Reweighting | None = None,
                  psi_pos: torch.Tensor | None = None,
                  psi_neg: torch.Tensor | None = None, negatives: float = 1.0,
                  neg_dist: torch.Tensor | None = None,
                  block_size: int = _BLOCK) -> torch.Tensor:
    """Gradient of :func:`expected_loss` with respect to W, without autograd.

    ``∇L = (D + D^T) W`` with ``D_ij = a_ij l+'(x_ij) + b_ij l-'(x_ij)``.  For QWEM,
    ``D = (G/2) ∘ (W W^T - M*)`` and, since D is symmetric,
    ``∇L = (G ∘ (W W^T - M*)) W``; under Setting 3.1 (G = g) this is
    ``g (W W^T - M*) W``: a gradient-descent step η moves along the flow
    ``dW/dt = -½(W W^T - M*) W`` (paper's flow) by ``t = 2 g η``.

    Same parameters as :func:`expected_loss`; returns a ``(V, d)`` tensor.
    """
    _check_shapes(W, P_ij, unigram)
    rw = _resolve(unigram, reweight, psi_pos, psi_neg, negatives, neg_dist)
    _, _, dpos, dneg = _funcs(loss)
    V = P_ij.shape[0]
    with torch.no_grad():
        Wc = W.to(torch.promote_types(W.dtype, P_ij.dtype))
        grad = torch.zeros_like(Wc)
        for i0 in range(0, V, block_size):
            i1 = min(i0 + block_size, V)
            a, b = rw.weight_rows(P_ij, unigram, i0, i1)
            x = Wc[i0:i1] @ Wc.T
            if _compiled(x, a, b):
                from .kernels._pair import block_grad

                block_grad(x.numpy(), a.numpy(), b.numpy(), loss,
                           torch.get_num_threads())
                D = x                                   # overwritten in place
            else:
                D = a * dpos(x) + b * dneg(x)
            grad[i0:i1] += D @ Wc
            grad += D.T @ Wc[i0:i1]
    return grad


def quartic_minus_frobenius(W: torch.Tensor, P_ij: torch.Tensor, unigram: torch.Tensor,
                            reweight: Reweighting | None = None) -> float:
    """``L_QWEM(W) - ¼ sum_ij G_ij ((W W^T)_ij - M*_ij)^2`` (the paper's Theorem 1).

    Under Setting 3.1 (the default; G = g = 1) this is ``L - (g/4)||W W^T - M*||_F^2``.
    By completing the square it equals ``-¼ sum_ij G_ij M*_ij^2`` for every W; the
    function evaluates both parts independently (``expected_loss`` and
    ``Reweighting.target``), so it checks them against each other.

    Parameters
    ----------
    W : (V, d) tensor
    P_ij : (V, V) float64
    unigram : (V,) float64
    reweight : Reweighting, optional
        Default ``reweighting("setting31", P_ij, unigram)``.

    Returns
    -------
    float
    """
    rw = reweight if reweight is not None else reweighting("setting31", P_ij, unigram)
    with torch.no_grad():
        L = float(expected_loss(W, P_ij, unigram, "qwem", reweight=rw))
        M = rw.target(P_ij, unigram)
        Wc = W.to(M.dtype)
        V = P_ij.shape[0]
        sq = 0.0
        for i0 in range(0, V, _BLOCK):
            i1 = min(i0 + _BLOCK, V)
            a, b = rw.weight_rows(P_ij, unigram, i0, i1)
            E = Wc[i0:i1] @ Wc.T - M[i0:i1]
            sq += float(((a + b) * E * E).sum())
    return L - 0.25 * sq
