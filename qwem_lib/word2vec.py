"""Our own word2vec: skip-gram with negative sampling, streamed over the token array.

PAPER.md §1 and §4-5.  :mod:`qwem_lib.train` trains on the pair statistics ``P_ij``;
this module trains the way word2vec does, by sliding over the corpus, so that its
embeddings can be compared with QWEM's, with the closed form and with gensim.  It is
written from the description of the algorithm (Mikolov et al. 2013), in plain torch,
on CPU or CUDA.

What one epoch does, in word2vec's order:

1. **Subsampling.**  Every token of word w is kept with probability
   ``p_w = min(1, (sqrt(f_w/t) + 1) t/f_w) = min(1, sqrt(t/f_w) + t/f_w)``,
   ``f_w = count_w / N`` (:func:`qwem_lib.losses.keep_probs`).  Discarded tokens are
   removed before windowing, so windows reach further in the kept stream.
2. **Dynamic window.**  Every kept position p draws ``b_p`` uniformly in ``1..L``;
   its contexts are the kept tokens at offsets ``1 <= |s| <= b_p``
   (:func:`draw_windows`, :func:`window_pairs`).  Offset s is therefore used with
   probability ``(L - s + 1)/L``, the paper's linear window weighting.
3. **Negative sampling.**  Each positive pair (context o, centre c) is pushed up,
   ``l+(x) = log(1 + e^{-x})`` with ``x = w_o · c_c``, and k words n drawn from
   ``count^{3/4}`` (:class:`NegativeSampler`) are pushed down, ``l-(x_on)``.  As in
   word2vec, the context's row of W is the input vector, the centre and the
   negatives use the output matrix C (C = W when ``tied``), and a negative equal to
   the centre word is skipped.
4. **Learning rate.**  ``lr_t = lr · max(1e-4, 1 - words/(epochs · N))``, where
   ``words`` counts the tokens read so far (discarded ones included), as word2vec does.

**Minibatches instead of Hogwild.**  word2vec.c applies every pair's gradient at
once, from several threads without locks (Hogwild).  A Python loop per pair would be
hopelessly slow, so one step here takes ``batch_size`` consecutive kept centres,
scores all their pairs against the parameters as they were at the start of the step
and adds the summed gradients row by row (:func:`sgns_update`).  Each pair has its
full step ``lr · ∇l`` (a sum, not a mean), so a word seen once in a step moves
exactly as in word2vec; what differs is staleness: a row that m pairs touch in one
step gets m updates computed at the same point, where word2vec lets each see the
previous ones.  Along a row, m sequential steps contract like ``(1 - lr h)^m`` (h ≈
σ'(x)|v|^2 per pair), a summed step like ``1 - m lr h``, which overshoots once
``m lr h > 2``.  The hot rows are the output vectors of frequent words drawn as
negatives (at V = 10^4 the top word is 2.2% of the draws; each draw serves a whole
window of ~11 pairs, so m ≈ 1.2 · batch_size), and h grows with the vectors.

Plain summed SGD (``step_cap=False``) therefore needs small batches: on
``wiki2015-text8`` (15.3M tokens, V = 10^4, d = 200, L = 10, k = 5, t = 1e-4,
lr = 0.025, untied, paper's analogy protocol), one epoch at batch 32 or 64 gives
0.295 / 0.298 (gensim 4.4, same settings: 0.298), batch 128 and 256 blow up (loss
per pair 93 and 204), and with 5 epochs, where lr stays high while the vectors grow,
even batch 64 blows up (at 0.8 epochs).  The default ``step_cap=True`` moves each
row by at most the minimum of the batch loss along its own step (a Newton step,
:func:`sgns_update`): rows touched by few pairs keep word2vec's step exactly, hot
rows stop where word2vec's sequential updates would have gone instead of beyond.
With it one epoch gives 0.302 at batch 64 (loss per pair 2.448) and 0.279 at batch
256 (stable, loss 2.450), and the 5-epoch run at batch 64 goes on past 1.2 epochs
(loss 2.62) where plain SGD had blown up; the cap costs about 2.5x the CPU time of
a plain step once it is active.  Tied weights stay small and trained without it at
batch 64 (0.270) and 256 (0.262).  A run whose loss per pair doubles is stopped
with a :class:`~qwem_lib.errors.QwemError`.

To use matrix products rather than per-pair gathers, the k negatives are drawn once
per centre *position* and shared by all the pairs of that centre's window (as in Ji
et al. 2016, "Parallelizing word2vec in shared and distributed memory"): each pair
still has k negatives of weight 1, so the expected gradient is word2vec's; only the
noise is correlated within a window.  The inputs of a batch are then a banded,
overlapping view of the gathered rows of the kept stream, with no per-pair gather.

**Blocks.**  The stream is processed in blocks of ``block_tokens`` raw tokens
(word2vec's "sentences"); windows do not cross block boundaries.  Each block's
subsampling and window draws come from a generator seeded by ``(seed, epoch,
block)``, the negatives from one generator whose state is checkpointed, so on CPU a
resumed run repeats an uninterrupted one bit for bit.  (On CUDA, ``scatter_add_``
accumulates with atomic adds in no fixed order: runs agree up to rounding.)

**History.**  Checkpoints are log-spaced in words read (plus step 0); each records
the step, a nominal flow time ``t``, the loss on a fixed evaluation sample of pairs,
the singular values of W and, if ``words`` are given, the analogy accuracy, in the
:class:`qwem_lib.history.History` format.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .devices import default_device
from .errors import QwemError
from .history import (History, TrainResult, diverged_error, load_checkpoint,
                      save_checkpoint)
from .losses import keep_probs

__all__ = ["Word2VecConfig", "Word2VecResult", "draw_windows", "window_pairs",
           "NegativeSampler", "sgns_update", "train_word2vec"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}
CHECKPOINT = "checkpoint.npz"
HISTORY = "history.json"
MIN_LR_RATIO = 1e-4  # word2vec's floor: lr never decays below lr · 1e-4
_EVAL_SEGMENTS = 16  # the fixed loss-evaluation sample: 16 random stretches ...
_EVAL_SEGMENT_TOKENS = 1024  # ... of 1024 raw tokens each, ...
_EVAL_PAIRS = 8192  # ... at most this many of their pairs (a random subset)


# ----------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Word2VecConfig:
    """Everything that determines a word2vec (SGNS) run, besides the corpus.

    Attributes
    ----------
    embed_dim : int
        d.
    window : int
        L, the largest context offset; each centre draws its window in ``1..L``.
    negatives : int
        k, negatives per positive pair.
    subsample : float
        t, the subsampling threshold (gensim's ``sample``, word2vec's ``-sample``);
        0 disables subsampling.  The paper uses 1e-5, gensim's default is 1e-3.
    neg_power : float
        Negatives are drawn from ``count^neg_power`` (word2vec: 0.75; 1 is the
        unigram, as in the paper's Setting 3.1 runs).
    epochs : int
    lr : float
        Starting learning rate, decayed linearly to ``lr · 1e-4`` over all epochs.
    batch_size : int
        Kept centre positions per step (each brings up to 2L pairs).  Larger is
        faster on CPU up to a few hundred (and much faster on GPU), but the summed
        steps of frequent words overshoot (module docstring) unless ``step_cap``.
    tied : bool
        True: one matrix, ``x = w_o · w_c`` (the paper's word2vec).  False: input W
        and output C, C initialised to zeros (word2vec's); the embeddings are W.
        Tied, ``W W^T`` is positive semi-definite, so the negative pairs cannot all
        get ``x < 0``: the loss per pair stays near ``(k+1) log 2`` (the paper uses
        k = 1) while the directions, and the analogies, are learned.
    init_scale : float or None
        Entries of W ~ ``N(0, (init_scale/√d)^2)`` (the paper's convention, PAPER.md
        §4).  None: 0.1 when tied (the paper's "word2vec-style init"), word2vec's
        ``uniform(-0.5/d, 0.5/d)`` when untied.
    seed : int
    dtype : {"float32", "float64"}
    block_tokens : int
        Raw tokens per block; windows do not cross block boundaries.
    step_cap : bool
        Cap each row's step at the minimum of the batch loss along it
        (:func:`sgns_update`), so frequent words cannot overshoot; False: plain
        summed SGD, which needs a small ``batch_size`` (module docstring).
    """

    embed_dim: int = 200
    window: int = 10
    negatives: int = 5
    subsample: float = 1e-4
    neg_power: float = 0.75
    epochs: int = 1
    lr: float = 0.025
    batch_size: int = 64
    tied: bool = True
    init_scale: float | None = None
    seed: int = 0
    dtype: str = "float32"
    block_tokens: int = 1 << 20
    step_cap: bool = True

    def __post_init__(self):
        def positive_int(name, lo=1):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise QwemError(f"{name} must be an integer >= {lo}, got {v!r}")
        for name in ("embed_dim", "window", "negatives", "epochs", "batch_size",
                     "block_tokens"):
            positive_int(name)
        positive_int("seed", 0)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                and self.lr > 0):
            raise QwemError(f"lr must be a finite number > 0, got {self.lr!r} "
                            "(word2vec's default is 0.025)")
        if not (isinstance(self.subsample, (int, float)) and self.subsample >= 0):
            raise QwemError(f"subsample must be >= 0 (0 disables it), got "
                            f"{self.subsample!r}")
        if not (isinstance(self.neg_power, (int, float)) and self.neg_power >= 0):
            raise QwemError(f"neg_power must be >= 0, got {self.neg_power!r}")
        if self.init_scale is not None and not (
                isinstance(self.init_scale, (int, float)) and self.init_scale > 0):
            raise QwemError(f"init_scale must be > 0 or None (the default of the "
                            f"tied or untied model), got {self.init_scale!r}; "
                            "W = 0 is a stationary point and never trains")
        if self.dtype not in _DTYPES:
            raise QwemError(f"dtype must be float32 or float64, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Word2VecResult(TrainResult):
    """A :class:`qwem_lib.history.TrainResult` plus what only word2vec has.

    Attributes
    ----------
    W : (V, d) tensor
        The embeddings (input vectors), on the training device.
    history : History
        ``t`` is the nominal flow time ``Σ lr_step · n_pairs_step`` (see
        :func:`train_word2vec`); ``loss`` the evaluation-sample loss per pair.
    lr : float
        The starting learning rate.
    steps : int
        Steps run in all.
    dt : float
        Mean flow time per step, ``t_final / steps`` (lr and pairs vary per step).
    config : Word2VecConfig
    C : (V, d) tensor or None
        The output (context) vectors when untied; None when tied.
    checkpoint_words : list of int
        Raw tokens read at each history entry (aligned with ``history.step``).
    """

    C: torch.Tensor | None = None
    checkpoint_words: list = field(default_factory=list)


# ----------------------------------------------------------------------------------
# the ingredients: subsampling, windows, negatives
# ----------------------------------------------------------------------------------

def draw_windows(n: int, window: int, generator: torch.Generator) -> torch.Tensor:
    """Dynamic window sizes ``b_p`` uniform in ``1..window``, ``(n,)`` int64."""
    return torch.randint(1, window + 1, (n,), generator=generator,
                         device=generator.device)


def _band(windows: torch.Tensor, start: int, stop: int, window: int) -> torch.Tensor:
    """Which of the ``2L+1`` offsets ``-L..L`` of centres ``start..stop-1`` are pairs.

    Returns ``(stop - start, 2L + 1)`` bool: offset ``s = j - L`` of centre p is a
    pair iff ``1 <= |s| <= b_p`` and ``p + s`` lies in ``0..n-1``.
    """
    n = windows.numel()
    dev = windows.device
    off = torch.arange(-window, window + 1, device=dev)
    pos = torch.arange(start, stop, device=dev)
    ctx = pos[:, None] + off[None, :]
    return ((off.abs()[None, :] <= windows[start:stop, None]) & (off[None, :] != 0)
            & (ctx >= 0) & (ctx < n))


def window_pairs(windows: torch.Tensor, window: int, start: int = 0,
                 stop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (centre, context) position pairs of centres ``start..stop-1``.

    Parameters
    ----------
    windows : (n,) int tensor
        Each position's window size ``b_p`` in ``1..window`` (:func:`draw_windows`).
    window : int
        L.
    start, stop : int
        Centre positions (default: all n).

    Returns
    -------
    centre, context : (n_pairs,) int64 tensors
        Positions in the (kept) stream, ordered by centre, then offset ``-L..L``.
        Exactly the pairs :func:`sgns_update` trains on.
    """
    stop = windows.numel() if stop is None else stop
    i, j = torch.nonzero(_band(windows, start, stop, window), as_tuple=True)
    centre = i + start
    return centre, centre + (j - window)


class NegativeSampler:
    """Draws from ``count^power`` (normalised) with Walker's alias method.

    O(1) per draw and exact up to float64 rounding: draw a column ``i`` uniformly and
    keep it with probability ``prob[i]``, else take ``alias[i]``.

    Parameters
    ----------
    counts : (V,) array
    power : float
        0.75 for word2vec.
    device : torch.device
    """

    def __init__(self, counts, power: float = 0.75, device=None):
        c = np.asarray(counts, dtype=np.float64)
        q = np.where(c > 0, c, 0.0) ** power * (c > 0)
        if not q.sum() > 0:
            raise QwemError("no word has a positive count: cannot draw negatives")
        self.probs = q / q.sum()
        V = len(q)
        scaled = self.probs * V
        prob = np.ones(V)
        alias = np.arange(V, dtype=np.int64)
        small = [i for i in range(V) if scaled[i] < 1.0]
        large = [i for i in range(V) if scaled[i] >= 1.0]
        while small and large:  # Vose's construction
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        for i in small + large:  # leftovers are 1 up to rounding
            prob[i] = 1.0
        dev = torch.device("cpu") if device is None else torch.device(device)
        self.prob = torch.as_tensor(prob, device=dev)
        self.alias = torch.as_tensor(alias, device=dev)

    def draw(self, shape, generator: torch.Generator) -> torch.Tensor:
        """Word ids of the given shape, int64, on the sampler's device."""
        V = self.prob.numel()
        col = torch.randint(0, V, shape, generator=generator, device=self.prob.device)
        u = torch.rand(shape, generator=generator, device=self.prob.device,
                       dtype=torch.float64)
        return torch.where(u < self.prob[col], col, self.alias[col])


# ----------------------------------------------------------------------------------
# one SGD step
# ----------------------------------------------------------------------------------

_TILE = 16  # centres per tile of the banded score matrix (see sgns_update)


@functools.lru_cache(maxsize=32)
def _constants(n_tiles: int, tile: int, window: int, k: int, device: torch.device,
               dtype: torch.dtype):
    """Index and sign tensors reused by every step of the same shape."""
    L, J = window, 2 * window + 1
    off = torch.arange(-L, L + 1, device=device)
    # row of each tile's input slot in the gathered rows start-L .. start+B+L-1
    tile_rows = (torch.arange(n_tiles, device=device)[:, None] * tile
                 + torch.arange(tile + 2 * L, device=device)).reshape(-1)
    label = torch.zeros(k + 1, dtype=dtype, device=device)
    label[0] = 1.0
    sign = 1.0 - 2.0 * label  # l+(x) = softplus(-x), l-(x) = softplus(x)
    reach = off.abs()
    reach[L] = L + 1  # offset 0 (the centre itself) is beyond every window
    return off, reach, tile_rows, label, sign, J


def _may_overshoot(curv, X, Y, rows, flat_t, tied, lr, V) -> bool:
    """Whether ``lr · κ_r > 1`` is possible for some row, from the upper bound
    ``κ_r <= Σ σ'(x) |v|^2`` (the trace of the row's Hessian), cheap to sum.

    ``curv`` is ``(B, J, k+1)``, ``X`` the ``(B + 2L, d)`` input rows, ``Y`` the
    ``(B, k+1, d)`` target rows.
    """
    B, J, _ = curv.shape
    t_in = (curv * Y.square().sum(2)[:, None, :]).sum(2)  # per input slot
    x2 = X.square().sum(1).as_strided((B, J), (1, 1))  # |x|^2 of slot (p, j)
    t_out = (curv * x2[:, :, None]).sum(1)  # per target
    tr_in = X.new_zeros(V).scatter_add_(
        0, rows.as_strided((B, J), (1, 1)).reshape(-1), t_in.reshape(-1))
    tr_out = tr_in if tied else X.new_zeros(V)
    tr_out.scatter_add_(0, flat_t, t_out.reshape(-1))
    worst = tr_in.max() if tied else torch.maximum(tr_in.max(), tr_out.max())
    return bool(lr * worst > 1.0)


def sgns_update(W: torch.Tensor, C: torch.Tensor | None, kept: torch.Tensor,
                windows: torch.Tensor, start: int, stop: int,
                negatives: torch.Tensor, lr: float, window: int,
                step_cap: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on the pairs of centres ``start..stop-1``, in place.

    The step minimises, with all gradients taken at the current parameters,

        Σ_(o, c) [ l+(w_o · c_c) + Σ_{n in N_c, n != c} l-(w_o · c_n) ]

    over the pairs of :func:`window_pairs` (o the context, whose row of W is the
    input; c the centre), where ``N_c`` are the k negatives of c's position, shared
    by its window's pairs.  Plain SGD (``step_cap=False``): ``W -= lr · ∂/∂W``,
    ``C -= lr · ∂/∂C``, row by row (repeated rows accumulate).

    With ``step_cap`` each row r moves by ``-min(lr, 1/κ_r) g_r``, with ``g_r`` its
    summed gradient and ``κ_r = Σ σ'(x) (v · g_r/|g_r|)^2`` the curvature of the
    batch loss along ``g_r`` (the sum over the pairs that use row r, v being the
    other vector of the pair; exact for untied weights).  A row touched by a few
    pairs has ``lr κ_r`` of order ``lr |v|^2/4 ≪ 1`` and gets word2vec's step
    exactly; a frequent word touched by hundreds of pairs gets at most the step to
    the minimum of the batch loss along its own direction (a Newton step there),
    which is where word2vec's sequential updates would have taken it instead of
    overshooting (see the module docstring).

    The scores are computed tile by tile: for 16 consecutive centres, one matrix
    product of their ``16 + 2L`` input rows (a strided view of the gathered rows,
    no copy) with their ``16 (k+1)`` output rows; the pairs are a band of it (a
    strided view again).  A few times more multiply-adds than the band alone, but
    dense products run ~5x faster than the per-centre ones on CPU, and the
    gradient of every input row comes out already summed over its windows.

    Parameters
    ----------
    W : (V, d) tensor
        Input vectors, updated in place.
    C : (V, d) tensor or None
        Output vectors, updated in place; None for tied weights (C = W).
    kept : (n,) int64 tensor
        Word ids of the (subsampled) stream.
    windows : (n,) int64 tensor
        Window size of each position.
    start, stop : int
        The batch's centre positions.
    negatives : (stop - start, k) int64 tensor
    lr : float
    window : int
        L.
    step_cap : bool
        Cap each row's step at the Newton step along it (see above).

    Returns
    -------
    loss_sum : 0-d tensor
        The loss above, before the update (float64).
    n_pairs : 0-d tensor
        Number of positive pairs (float64).
    """
    Cm = W if C is None else C
    n, L, d = kept.numel(), window, W.shape[1]
    B, k = stop - start, negatives.shape[1]
    if not (0 <= start < stop <= n and windows.numel() == n
            and negatives.shape == (B, k)):
        raise QwemError(f"sgns_update needs 0 <= start < stop <= n = {n}, windows of "
                        f"length n and negatives of shape ({B}, k); got start="
                        f"{start}, stop={stop}, windows {tuple(windows.shape)}, "
                        f"negatives {tuple(negatives.shape)}")
    b = min(B, _TILE)
    T = -(-B // b)
    Bp, K1, H = T * b, k + 1, b + 2 * window
    off, reach, tile_rows, label, sign, J = _constants(T, b, L, k, kept.device,
                                                       W.dtype)
    win = windows[start:stop]
    if Bp > B:  # pad to whole tiles with centres that have no pairs
        win = torch.cat([win, win.new_zeros(Bp - B)])
        negatives = torch.cat([negatives, negatives.new_zeros(Bp - B, k)])
    # Rows of positions start-L .. start+Bp+L-1 (clamped at the block's ends: those
    # slots are never pairs, and get exactly zero gradient).
    edge = start < L or start + Bp + L > n
    if edge:
        rows = kept[torch.arange(start - L, start + Bp + L,
                                 device=kept.device).clamp_(0, n - 1)]
    else:
        rows = kept[start - L:start + Bp + L]
    X = W.index_select(0, rows)  # (Bp + 2L, d)
    Xt = X.as_strided((T, H, d), (b * d, d, 1))  # each tile's input rows
    centre = rows[L:L + Bp]
    targets = torch.cat([centre[:, None], negatives], 1)  # (Bp, k+1)
    Y = Cm.index_select(0, targets.reshape(-1)).view(T, b * K1, d)
    full = torch.bmm(Xt, Y.transpose(1, 2))  # (T, H, b(k+1)): all tile scores
    # Band: score of centre i's slot j (offset j - L) against its target o sits
    # at row i + j, column i(k+1) + o of its tile.
    band_view = (T, b, J, K1), (H * b * K1, b * K1 + K1, b * K1, 1)
    x = full.as_strided(*band_view)
    band = reach <= win[:, None]  # (Bp, J)
    if edge:  # no contexts beyond the block's ends
        ctx = torch.arange(start, start + Bp, device=kept.device)[:, None] + off
        band &= (ctx >= 0) & (ctx < n)
    use = torch.ones_like(targets, dtype=torch.bool)
    use[:, 1:] = negatives != centre[:, None]  # word2vec skips a negative == centre
    weight = (band[:, :, None] & use[:, None, :]).to(W.dtype).view(T, b, J, K1)
    loss_sum = (F.softplus(x * sign) * weight).sum(dtype=torch.float64)
    sig = torch.sigmoid(x)
    n_pairs = band.sum(dtype=torch.float64)
    flat_t = targets.reshape(-1)
    in_rows = rows[tile_rows]  # the row of each of the T·H input slots
    curv = None
    if step_cap:
        curv = sig * (1.0 - sig) * weight  # σ'(x): curvature of each pair's loss in x
        if not _may_overshoot(curv.view(Bp, J, K1), X, Y.view(Bp, K1, d), rows,
                              flat_t, C is None, lr, W.shape[0]):
            curv = None  # every row would keep lr: the plain step is the capped one
    if curv is None:
        # -lr · dl/dx = -lr (sigmoid(x) - label), on the band only
        G = torch.zeros_like(full)
        G.as_strided(*band_view).copy_(sig.sub_(label).mul_(weight).mul_(-lr))
        # scatter_add_ with expanded indices: ~1.5x faster than index_add_ on CPU
        W.scatter_add_(0, in_rows[:, None].expand(-1, d),
                       torch.bmm(G, Y).view(-1, d))
        Cm.scatter_add_(0, flat_t[:, None].expand(-1, d),
                        torch.bmm(G.transpose(1, 2), Xt).reshape(-1, d))
        return loss_sum, n_pairs
    G = torch.zeros_like(full)
    G.as_strided(*band_view).copy_(sig.sub_(label).mul_(weight))  # dl/dx
    src_in = torch.bmm(G, Y).view(-1, d)  # gradient of each input slot
    src_out = torch.bmm(G.transpose(1, 2), Xt).reshape(-1, d)  # of each target
    # Sum the gradient of every distinct row, in a compact buffer.
    if C is None:
        uniq, inv = torch.unique(torch.cat([rows, flat_t]), return_inverse=True)
        inv_pos, inv_t = inv[:rows.numel()], inv[rows.numel():]
        uniq_in = uniq_out = uniq
        G_in = G_out = W.new_zeros(uniq.numel(), d)
    else:
        uniq_in, inv_pos = torch.unique(rows, return_inverse=True)
        uniq_out, inv_t = torch.unique(flat_t, return_inverse=True)
        G_in, G_out = W.new_zeros(uniq_in.numel(), d), W.new_zeros(uniq_out.numel(), d)
    G_in.scatter_add_(0, inv_pos[tile_rows, None].expand(-1, d), src_in)
    G_out.scatter_add_(0, inv_t[:, None].expand(-1, d), src_out)
    # Curvature of the batch loss along each row's own step direction u:
    # κ = Σ_pairs σ'(x) (v · u)^2 over the pairs the row is in, v the other vector.
    tiny = torch.finfo(W.dtype).tiny
    U_in = G_in / G_in.norm(dim=1, keepdim=True).clamp_min(tiny)
    U_out = U_in if C is None else \
        G_out / G_out.norm(dim=1, keepdim=True).clamp_min(tiny)
    proj = torch.bmm(U_in[inv_pos].as_strided((T, H, d), (b * d, d, 1)),
                     Y.transpose(1, 2)).as_strided(*band_view)
    k_in = (proj.square_() * curv).sum(3).view(-1)  # (Bp·J,) per input slot
    proj = torch.bmm(Xt, U_out[inv_t].view(T, b * K1, d).transpose(1, 2))
    k_out = (proj.as_strided(*band_view).square_() * curv).sum(2).view(-1)
    kappa_in = W.new_zeros(uniq_in.numel())
    kappa_in.scatter_add_(0, inv_pos.as_strided((Bp, J), (1, 1)).reshape(-1), k_in)
    kappa_out = kappa_in if C is None else W.new_zeros(uniq_out.numel())
    kappa_out.scatter_add_(0, inv_t, k_out)
    # Step min(lr, 1/κ): word2vec's lr unless it would pass the minimum of the
    # quadratic model along u (a Newton step there).
    W.scatter_add_(0, uniq_in[:, None].expand(-1, d),
                   G_in * kappa_in.reciprocal().clamp_(max=lr).neg_()[:, None])
    if C is not None:
        C.scatter_add_(0, uniq_out[:, None].expand(-1, d),
                       G_out * kappa_out.reciprocal().clamp_(max=lr).neg_()[:, None])
    return loss_sum, n_pairs


# ----------------------------------------------------------------------------------
# the stream
# ----------------------------------------------------------------------------------

_EVAL_KEY = 2**32 - 1  # in place of the epoch: the evaluation sample's stream


def _block_seed(seed: int, epoch: int, block: int) -> int:
    """A 63-bit seed for block ``block`` of epoch ``epoch`` (independent streams)."""
    state = np.random.SeedSequence([seed, epoch, block]).generate_state(2, np.uint32)
    return int(state.view(np.uint64)[0] >> np.uint64(1))


@dataclass
class _Block:
    kept: torch.Tensor  # (n,) int64 word ids on the device
    windows: torch.Tensor  # (n,) int64
    raw_pos: np.ndarray  # (n,) int64 raw position (within the block) of each kept
    raw_len: int


def _prepare_block(ids: np.ndarray, keep: torch.Tensor, window: int,
                   generator: torch.Generator, dev: torch.device) -> _Block:
    """Subsample one block of raw ids and draw its windows (in that order)."""
    raw = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(dev)
    u = torch.rand(raw.numel(), generator=generator, device=dev, dtype=torch.float64)
    mask = u < keep[raw]
    idx = torch.nonzero(mask).flatten()
    kept = raw[idx]
    return _Block(kept, draw_windows(kept.numel(), window, generator),
                  idx.cpu().numpy(), raw.numel())


def _eval_sample(ids, keep, config, sampler, dev):
    """A fixed sample of (context, centre, negatives) for the recorded loss."""
    gen = torch.Generator(device=dev)
    gen.manual_seed(_block_seed(config.seed, _EVAL_KEY, 0))
    N, seg = len(ids), min(len(ids), _EVAL_SEGMENT_TOKENS)
    starts = torch.randint(0, N - seg + 1, (_EVAL_SEGMENTS,), generator=gen,
                           device=dev).cpu().numpy()
    ctx, cen = [], []
    for a in starts:
        blk = _prepare_block(ids[a:a + seg], keep, config.window, gen, dev)
        if blk.kept.numel() < 2:
            continue
        c, o = window_pairs(blk.windows, config.window)
        cen.append(blk.kept[c])
        ctx.append(blk.kept[o])
    if not cen:
        return None
    cen, ctx = torch.cat(cen), torch.cat(ctx)
    if cen.numel() > _EVAL_PAIRS:
        pick = torch.randperm(cen.numel(), generator=gen, device=dev)[:_EVAL_PAIRS]
        cen, ctx = cen[pick], ctx[pick]
    return ctx, cen, sampler.draw((cen.numel(), config.negatives), gen)


def _eval_loss(W, C, sample) -> float:
    """Mean SGNS loss per positive pair, ``l+ + Σ_k l-`` (negatives equal to the
    centre skipped), on the fixed sample; NaN if the sample is empty."""
    if sample is None:
        return math.nan
    ctx, cen, neg = sample
    Cm = W if C is None else C
    total = 0.0
    with torch.no_grad():
        for a in range(0, ctx.numel(), 2048):  # float64, in chunks
            o, c, m = ctx[a:a + 2048], cen[a:a + 2048], neg[a:a + 2048]
            w = W[o].to(torch.float64)
            pos = F.softplus(-(w * Cm[c].to(torch.float64)).sum(-1))
            xn = torch.bmm(Cm[m].to(torch.float64), w[:, :, None]).squeeze(2)
            total += float(pos.sum() + (F.softplus(xn) * (m != c[:, None])).sum())
    return total / ctx.numel()


# ----------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------

def _fingerprint(ids: np.ndarray, vocab_size: int, n_checkpoints: int) -> dict:
    return {"n_tokens": int(len(ids)), "vocab_size": int(vocab_size),
            "crc32": zlib.crc32(memoryview(np.ascontiguousarray(ids, np.int32))),
            "n_checkpoints": int(n_checkpoints)}


def _save_checkpoint(path: Path, st: dict, W, C, generator, history, ck_words,
                     meta: dict) -> None:
    arrays = {"W": W.detach().cpu().numpy()}
    if C is not None:
        arrays["C"] = C.detach().cpu().numpy()
    save_checkpoint(path, meta, **arrays,
                    position=np.array([st["epoch"], st["block"], st["offset"],
                                       st["step"], st["words"]], dtype=np.int64),
                    t=np.float64(st["t"]),
                    rng_state=generator.get_state().cpu().numpy().astype(np.uint8),
                    history=np.array(history.to_json()),
                    checkpoint_words=np.asarray(ck_words, dtype=np.int64))


# ----------------------------------------------------------------------------------
# the trainer
# ----------------------------------------------------------------------------------

def _check_tokens(tokens_ids, vocab_size) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(tokens_ids, torch.Tensor):
        tokens_ids = tokens_ids.detach().cpu().numpy()
    ids = np.asarray(tokens_ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise QwemError(f"tokens_ids must be a 1-D integer array of word ids, got "
                        f"shape {ids.shape} and dtype {ids.dtype}; pass "
                        "load_tokens(...).ids")
    if ids.size < 2:
        raise QwemError(f"the token stream has {ids.size} token(s): nothing to "
                        "train on; pass a corpus (load_tokens(...).ids) with at least "
                        "two in-vocabulary tokens")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) \
            or vocab_size < 2:
        raise QwemError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise QwemError(f"token ids must lie in 0..{vocab_size - 1} (vocab_size = "
                        f"{vocab_size}), found {lo}..{hi}; pass the vocabulary size "
                        "the ids were made with, len(load_tokens(...).vocab)")
    counts = np.zeros(vocab_size, np.int64)
    for a in range(0, len(ids), 1 << 23):  # slices: bincount copies to int64
        counts += np.bincount(ids[a:a + (1 << 23)], minlength=vocab_size)
    missing = int((counts == 0).sum())
    if missing:
        raise QwemError(f"vocab_size = {vocab_size} but only {vocab_size - missing} "
                        f"distinct ids occur in the token stream; pass vocab_size = "
                        "the number of words that occur (load_tokens keeps only "
                        "those), or renumber the ids 0..V-1")
    return np.ascontiguousarray(ids, dtype=np.int32), counts


def _init(config: Word2VecConfig, V: int, gen: torch.Generator, dev, dtype):
    d = config.embed_dim
    if config.init_scale is None and not config.tied:
        W = (torch.rand(V, d, generator=gen, device=dev, dtype=torch.float64)
             - 0.5) / d
    else:
        scale = 0.1 if config.init_scale is None else float(config.init_scale)
        W = torch.randn(V, d, generator=gen, device=dev,
                        dtype=torch.float64) * (scale / d ** 0.5)
    C = None if config.tied else torch.zeros(V, d, device=dev, dtype=dtype)
    return W.to(dtype), C


def checkpoint_words(total_words: int, n: int) -> list[int]:
    """``n`` log-spaced word counts from 1 to ``total_words`` (deduplicated)."""
    pts = np.unique(np.round(np.logspace(0, np.log10(max(total_words, 1)), n)))
    return sorted({int(p) for p in pts if 1 <= p <= total_words} | {total_words})


def train_word2vec(config: Word2VecConfig, tokens_ids, vocab_size: int, *,
                   words=None, questions=None, device=None, out_dir=None,
                   resume: bool = False, progress: bool = True,
                   n_checkpoints: int = 30, until: int | None = None
                   ) -> Word2VecResult:
    """Train skip-gram with negative sampling by streaming over the tokens.

    See the module docstring for the algorithm and how it differs from word2vec.c.

    The flow time recorded in ``history.t`` is nominal: ``t = Σ_steps lr_step ·
    n_pairs_step``.  A step's summed gradient has expectation ``n_pairs · ∇F``,
    with F the SGNS loss per positive pair, ``E_(o,c)[l+(x_oc) + Σ_k l-(x_on)]``
    (what ``history.loss`` estimates), so ``t`` is the time of the gradient flow
    on F, in the units of :mod:`qwem_lib.train` for ``loss="sgns"`` (``Δt = 2 lr
    c`` with ``c = ½``).  It is comparable with QWEM's flow time only up to the
    constant factors of PAPER.md §5 (Figure 2): F's pair weights G are not
    constant, and untied weights follow a different flow.

    Parameters
    ----------
    config : Word2VecConfig
    tokens_ids : (N,) int array or tensor
        In-vocabulary token ids in corpus order (``load_tokens(...).ids``).
    vocab_size : int
        V; every id in ``0..V-1`` must occur.
    words : sequence of str, optional
        The vocabulary: record the analogy accuracy
        (:func:`qwem_lib.evaluate.analogy_paper`) at each checkpoint.
    questions : optional
        Analogy questions for :func:`~qwem_lib.evaluate.analogy_paper`.
    device : str or torch.device, optional
        :func:`qwem_lib.devices.default_device` (None: CUDA if available, else
        CPU).  Results are reproducible per device, not across devices.
    out_dir : path, optional
        Write ``checkpoint.npz`` (atomically) at every checkpoint and
        ``history.json`` at the end.
    resume : bool
        Continue from ``out_dir/checkpoint.npz`` if present (same config, corpus
        and ``n_checkpoints`` required): on CPU the result is bitwise that of an
        uninterrupted run.
    progress : bool
        tqdm bar over the words to read, with epoch, lr and the running loss.
    n_checkpoints : int
        Log-spaced checkpoints (in words read) besides step 0.
    until : int, optional
        Stop after this step (saving a checkpoint there if ``out_dir`` is given),
        to interrupt a run on purpose.

    Returns
    -------
    Word2VecResult
        A :class:`qwem_lib.history.TrainResult` with ``C`` and ``checkpoint_words``.

    Raises
    ------
    QwemError
        On bad input, or if the loss or W becomes NaN/inf (names the step and lr).
    """
    from tqdm.auto import tqdm

    ids, counts = _check_tokens(tokens_ids, vocab_size)
    if not (isinstance(n_checkpoints, (int, np.integer)) and n_checkpoints >= 1):
        raise QwemError(f"n_checkpoints must be an integer >= 1, got "
                        f"{n_checkpoints!r}")
    if resume and out_dir is None:
        raise QwemError("resume=True needs out_dir (where the checkpoint is)")
    dev = default_device(device)
    dtype = config.torch_dtype
    V, N, L, B, k = int(vocab_size), len(ids), config.window, config.batch_size, \
        config.negatives
    R = config.block_tokens
    n_blocks = -(-N // R)
    total_words = config.epochs * N
    keep = keep_probs(counts, config.subsample).to(dev)
    sampler = NegativeSampler(counts, config.neg_power, device=dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(config.seed))
    meta = {"config": config.to_dict(), **_fingerprint(ids, V, n_checkpoints)}
    ck_path = None if out_dir is None else Path(out_dir) / CHECKPOINT
    eval_sample = _eval_sample(ids, keep, config, sampler, dev)

    ck = load_checkpoint(ck_path, meta) if resume and ck_path.exists() else None
    if ck is not None:
        W = torch.as_tensor(ck["W"]).to(device=dev, dtype=dtype)
        C = None if config.tied else torch.as_tensor(ck["C"]).to(device=dev,
                                                                  dtype=dtype)
        e0, b0, s0, step, words_done = (int(v) for v in ck["position"])
        t_acc = torch.tensor(float(ck["t"]), dtype=torch.float64, device=dev)
        gen.set_state(torch.from_numpy(ck["rng_state"].copy()))
        history = History.from_dict(json.loads(str(ck["history"])))
        ck_words = [int(w) for w in ck["checkpoint_words"]]
    else:
        W, C = _init(config, V, gen, dev, dtype)
        e0 = b0 = s0 = step = words_done = 0
        t_acc = torch.zeros((), dtype=torch.float64, device=dev)
        history, ck_words = History(), []
    marks = checkpoint_words(total_words, n_checkpoints)

    def record(step_, words_):
        with torch.no_grad():
            sv = torch.linalg.svdvals(W.to(torch.float64))
        if not bool(torch.isfinite(sv).all()):
            diverged(step_, "W", lr_at(words_))
        acc = None
        if words is not None:
            from .evaluate import analogy_paper
            acc = analogy_paper(W, words, questions, device=dev).accuracy
        value = _eval_loss(W, C, eval_sample)
        history.append(step_, float(t_acc), value, sv.cpu().tolist(), acc)
        ck_words.append(int(words_))
        return value

    def lr_at(words_):
        return config.lr * max(MIN_LR_RATIO, 1.0 - words_ / total_words)

    def diverged(step_, what, lr_):
        raise diverged_error(step_, what, lr_, f"use a smaller lr or batch_size (start "
                             f"lr {config.lr:g}, batch_size {B})")

    def unstable(step_, value, lr_):
        raise QwemError(
            f"training diverged at step {step_}: the loss per pair rose to "
            f"{value:.4g} (it started at {start_loss:.4g}) with learning rate "
            f"{lr_:g} (start lr {config.lr:g}, batch_size {B}).  A step sums the "
            "updates of a word that occurs many times in the batch (frequent "
            "negatives), which overshoots; use a smaller batch_size (or lr)")

    if not history.step:
        record(0, 0)
    start_loss = history.loss[0]
    if not math.isfinite(start_loss):
        start_loss = (k + 1) * math.log(2.0)
    # Training lowers the loss; twice the start means the SGD steps overshoot.
    blowup = 2.0 * max(start_loss, (k + 1) * math.log(2.0))
    next_mark = next((m for m in marks if m > words_done), None)
    check_every = 1 if dev.type == "cpu" else 32
    run_loss = torch.zeros((), dtype=torch.float64, device=dev)
    run_pairs = torch.zeros((), dtype=torch.float64, device=dev)
    bar = tqdm(total=total_words, initial=words_done, disable=not progress,
               unit="word", unit_scale=True, dynamic_ncols=True)
    stopped = False
    try:
        for epoch in range(e0, config.epochs):
            for blk_i in range(b0 if epoch == e0 else 0, n_blocks):
                a = blk_i * R
                bgen = torch.Generator(device=dev)
                bgen.manual_seed(_block_seed(config.seed, epoch, blk_i))
                blk = _prepare_block(ids[a:a + R], keep, L, bgen, dev)
                n = blk.kept.numel()
                base = epoch * N + a
                first = s0 if (epoch == e0 and blk_i == b0) else 0
                for start in range(first, n, B):
                    stop = min(n, start + B)
                    lr = lr_at(words_done)
                    negs = sampler.draw((stop - start, k), gen)
                    loss, pairs = sgns_update(W, C, blk.kept, blk.windows, start,
                                              stop, negs, lr, L, config.step_cap)
                    step += 1
                    words_done = base + (int(blk.raw_pos[stop]) if stop < n
                                         else blk.raw_len)
                    t_acc.add_(pairs, alpha=lr)
                    run_loss += loss
                    run_pairs += pairs
                    # NaN/inf persist in the running sum until it is reset (every
                    # 64 steps, after this check); on CUDA, sync every 32 steps only.
                    if step % check_every == 0 and not math.isfinite(float(run_loss)):
                        where = (f"{step}" if check_every == 1 else
                                 f"{step - check_every + 1}..{step}")
                        diverged(where, "the loss", lr)
                    at_mark = next_mark is not None and words_done >= next_mark
                    if at_mark or step == until:
                        if at_mark:
                            record(step, words_done)
                            next_mark = next((m for m in marks if m > words_done),
                                             None)
                        st = {"epoch": epoch, "block": blk_i, "offset": stop,
                              "step": step, "words": words_done, "t": float(t_acc)}
                        if ck_path is not None:
                            _save_checkpoint(ck_path, st, W, C, gen, history,
                                             ck_words, meta)
                    if step % 64 == 0 or at_mark:
                        mean = float(run_loss) / max(float(run_pairs), 1.0)
                        if mean > blowup:
                            unstable(step, mean, lr)
                        bar.set_postfix(epoch=f"{epoch + 1}/{config.epochs}",
                                        lr=f"{lr:.3g}", loss=f"{mean:.4f}",
                                        refresh=False)
                        run_loss.zero_()
                        run_pairs.zero_()
                    bar.update(words_done - bar.n)
                    if step == until:
                        stopped = True
                        break
                if stopped:
                    break
                words_done = base + blk.raw_len  # a block with no centres left
                bar.update(words_done - bar.n)
            if stopped:
                break
        if not stopped and not math.isfinite(float(run_loss)):
            diverged(step, "the loss", lr_at(words_done))
        if not stopped and (not history.step or ck_words[-1] != total_words):
            record(step, total_words)  # e.g. the stream ended without a step
            if ck_path is not None:
                st = {"epoch": config.epochs, "block": 0, "offset": 0, "step": step,
                      "words": total_words, "t": float(t_acc)}
                _save_checkpoint(ck_path, st, W, C, gen, history, ck_words, meta)
    finally:
        bar.close()
    if out_dir is not None and not stopped:
        history.save(Path(out_dir) / HISTORY)
    t_final = float(t_acc)
    return Word2VecResult(W=W, history=history, lr=float(config.lr), steps=step,
                          dt=t_final / step if step else 0.0, config=config, C=C,
                          checkpoint_words=ck_words)
