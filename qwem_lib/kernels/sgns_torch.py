"""Skip-gram with negative sampling in batched torch steps: the CUDA path of word2vec.

:func:`qwem_lib.word2vec.train_word2vec` runs this on a GPU (the compiled kernel of
:mod:`qwem_lib.kernels.sgns_cpu` on a CPU).  Same stream as the kernel's: blocks of raw tokens
(windows never cross them), subsampling, dynamic windows in ``1..L``, k negatives from
``count^α`` per centre shared by its window's pairs, the linear learning-rate decay.
The random draws come from torch generators, so a run differs from the kernel's by
its random stream.

**Batches instead of Hogwild.**  word2vec.c applies every pair's update at once,
from several threads without locks.  A GPU wants large batches, so one step here
takes ``batch_size`` consecutive kept centres, scores all their pairs against the
parameters as they were at the start of the step, and adds the summed gradients row
by row (:func:`sgns_update`).  Each pair has its full step ``lr · ∇l`` (a sum, not a
mean), so a word seen once in a step moves exactly as in word2vec; what differs is
staleness: a row that m pairs touch in one step gets m updates computed at the same
point, where word2vec lets each see the previous ones.  Along a row, m sequential
steps contract like ``(1 - lr h)^m`` (h ≈ σ'(x)|v|^2 per pair), a summed step like
``1 - m lr h``, which overshoots once ``m lr h > 2``.  The hot rows are the output
vectors of frequent words drawn as negatives (each draw serves a whole window of
pairs, so a frequent negative's row is touched by about as many pairs as the batch
has centres), and h grows with the vectors.  Plain summed SGD (``step_cap=False``)
therefore needs small batches (``bench/README.md`` has the figures); the default
``step_cap=True`` moves each row by at most the minimum of the batch loss along its
own step (a Newton step): rows touched by few pairs keep word2vec's step exactly,
hot rows stop where word2vec's sequential updates would have gone instead of beyond.

To use matrix products rather than per-pair gathers, the inputs of a batch are a
banded, overlapping view of the gathered rows of the kept stream (see
:func:`sgns_update`).

**Random streams.**  Each block's subsampling and window draws come from a generator
seeded by ``(seed, epoch, block)``, the negatives from one generator whose state is
checkpointed, so on CPU a resumed run repeats an uninterrupted one bit for bit.  (On
CUDA, ``scatter_add_`` accumulates with atomic adds in no fixed order: runs agree up to
rounding.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime.errors import QwemError
from .sgns_cpu import MIN_LR_RATIO, alias_table

__all__ = ["draw_windows", "window_pairs", "NegativeSampler", "sgns_update",
           "block_seed", "prepare_block", "TorchSGNS"]


# ----------------------------------------------------------------------------------
# the ingredients: windows, negatives, blocks
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
        self.probs, prob, alias = alias_table(counts, power)
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
    n = kept.numel()
    B, k = stop - start, negatives.shape[1]
    if not (0 <= start < stop <= n and windows.numel() == n
            and negatives.shape == (B, k)):
        raise QwemError(f"sgns_update needs 0 <= start < stop <= n = {n}, windows of "
                        f"length n and negatives of shape ({B}, k); got start="
                        f"{start}, stop={stop}, windows {tuple(windows.shape)}, "
                        f"negatives {tuple(negatives.shape)}")
    sc = _scores(W, W if C is None else C, kept, windows, start, stop, negatives,
                 window)
    curv = None
    if step_cap:
        curv = sc.sig * (1.0 - sc.sig) * sc.weight  # σ'(x): each pair's curvature
        if not _may_overshoot(curv.view(sc.Bp, sc.J, k + 1), sc.X,
                              sc.Y.view(sc.Bp, k + 1, -1), sc.rows, sc.targets,
                              C is None, lr, W.shape[0]):
            curv = None  # every row would keep lr: the plain step is the capped one
    if curv is None:
        _plain_step(W, W if C is None else C, sc, lr)
    else:
        _capped_step(W, C, sc, curv, lr)
    return sc.loss_sum, sc.n_pairs


@dataclass
class _Scores:
    """The scores of one step's pairs, and the views both updates need."""

    X: torch.Tensor  # (Bp + 2L, d) input rows of positions start-L .. start+Bp+L-1
    Xt: torch.Tensor  # (T, H, d) each tile's input rows (a view of X)
    Y: torch.Tensor  # (T, b(k+1), d) each tile's target rows
    rows: torch.Tensor  # (Bp + 2L,) word id of each input row
    targets: torch.Tensor  # (Bp(k+1),) word id of each target row
    full: torch.Tensor  # (T, H, b(k+1)) all the scores of each tile
    band_view: tuple  # size and stride of the pairs' band inside ``full``
    sig: torch.Tensor  # (T, b, J, k+1) σ(x) on the band
    weight: torch.Tensor  # (T, b, J, k+1) 1 for a pair that counts, else 0
    label: torch.Tensor  # (k+1,) 1 for the centre, 0 for the negatives
    tile_rows: torch.Tensor  # (T·H,) index into ``rows`` of each tile's input slot
    Bp: int  # centres, padded to whole tiles
    J: int  # 2L + 1 offsets
    loss_sum: torch.Tensor
    n_pairs: torch.Tensor


def _scores(W, Cm, kept, windows, start, stop, negatives, window) -> _Scores:
    """Score every pair of centres ``start..stop-1``, tile by tile (sgns_update)."""
    n, L, d = kept.numel(), window, W.shape[1]
    B, k = stop - start, negatives.shape[1]
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
    return _Scores(X, Xt, Y, rows, targets.reshape(-1), full, band_view,
                   torch.sigmoid(x), weight, label, tile_rows, Bp, J,
                   (F.softplus(x * sign) * weight).sum(dtype=torch.float64),
                   band.sum(dtype=torch.float64))


def _plain_step(W, Cm, sc: _Scores, lr: float) -> None:
    """``W -= lr ∂/∂W``, ``C -= lr ∂/∂C`` with the summed gradients of the step."""
    d = W.shape[1]
    # -lr · dl/dx = -lr (sigmoid(x) - label), on the band only
    G = torch.zeros_like(sc.full)
    G.as_strided(*sc.band_view).copy_((sc.sig - sc.label).mul_(sc.weight).mul_(-lr))
    # scatter_add_ with expanded indices: ~1.5x faster than index_add_ on CPU
    W.scatter_add_(0, sc.rows[sc.tile_rows][:, None].expand(-1, d),
                   torch.bmm(G, sc.Y).view(-1, d))
    Cm.scatter_add_(0, sc.targets[:, None].expand(-1, d),
                    torch.bmm(G.transpose(1, 2), sc.Xt).reshape(-1, d))


def _capped_step(W, C, sc: _Scores, curv, lr: float) -> None:
    """Each row r moves by ``-min(lr, 1/κ_r) g_r`` (see :func:`sgns_update`)."""
    d = W.shape[1]
    T, H, _ = sc.Xt.shape
    b = sc.Bp // T
    J, Bp = sc.J, sc.Bp
    G = torch.zeros_like(sc.full)
    G.as_strided(*sc.band_view).copy_((sc.sig - sc.label).mul_(sc.weight))  # dl/dx
    src_in = torch.bmm(G, sc.Y).view(-1, d)  # gradient of each input slot
    src_out = torch.bmm(G.transpose(1, 2), sc.Xt).reshape(-1, d)  # of each target
    # Sum the gradient of every distinct row, in a compact buffer.
    rows, flat_t = sc.rows, sc.targets
    if C is None:
        uniq, inv = torch.unique(torch.cat([rows, flat_t]), return_inverse=True)
        inv_pos, inv_t = inv[:rows.numel()], inv[rows.numel():]
        uniq_in = uniq_out = uniq
        G_in = G_out = W.new_zeros(uniq.numel(), d)
    else:
        uniq_in, inv_pos = torch.unique(rows, return_inverse=True)
        uniq_out, inv_t = torch.unique(flat_t, return_inverse=True)
        G_in, G_out = W.new_zeros(uniq_in.numel(), d), W.new_zeros(uniq_out.numel(), d)
    G_in.scatter_add_(0, inv_pos[sc.tile_rows, None].expand(-1, d), src_in)
    G_out.scatter_add_(0, inv_t[:, None].expand(-1, d), src_out)
    # Curvature of the batch loss along each row's own step direction u:
    # κ = Σ_pairs σ'(x) (v · u)^2 over the pairs the row is in, v the other vector.
    tiny = torch.finfo(W.dtype).tiny
    U_in = G_in / G_in.norm(dim=1, keepdim=True).clamp_min(tiny)
    U_out = U_in if C is None else \
        G_out / G_out.norm(dim=1, keepdim=True).clamp_min(tiny)
    proj = torch.bmm(U_in[inv_pos].as_strided((T, H, d), (b * d, d, 1)),
                     sc.Y.transpose(1, 2)).as_strided(*sc.band_view)
    k_in = (proj.square_() * curv).sum(3).view(-1)  # (Bp·J,) per input slot
    proj = torch.bmm(sc.Xt, U_out[inv_t].view(T, -1, d).transpose(1, 2))
    k_out = (proj.as_strided(*sc.band_view).square_() * curv).sum(2).view(-1)
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


# ----------------------------------------------------------------------------------
# the stream
# ----------------------------------------------------------------------------------

def block_seed(seed: int, epoch: int, block: int) -> int:
    """A 63-bit seed for block ``block`` of epoch ``epoch`` (independent streams)."""
    state = np.random.SeedSequence([seed, epoch, block]).generate_state(2, np.uint32)
    return int(state.view(np.uint64)[0] >> np.uint64(1))


@dataclass
class Block:
    kept: torch.Tensor  # (n,) int64 word ids on the device
    windows: torch.Tensor  # (n,) int64
    raw_pos: np.ndarray  # (n,) int64 raw position (within the block) of each kept
    raw_len: int


def prepare_block(ids: np.ndarray, keep: torch.Tensor, window: int,
                  generator: torch.Generator, dev: torch.device) -> Block:
    """Subsample one block of raw ids and draw its windows (in that order)."""
    raw = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(dev)
    u = torch.rand(raw.numel(), generator=generator, device=dev, dtype=torch.float64)
    mask = u < keep[raw]
    idx = torch.nonzero(mask).flatten()
    kept = raw[idx]
    return Block(kept, draw_windows(kept.numel(), window, generator),
                 idx.cpu().numpy(), raw.numel())


# ----------------------------------------------------------------------------------
# the engine
# ----------------------------------------------------------------------------------

class TorchSGNS:
    """The stream in batched torch steps, with :class:`qwem_lib.kernels.sgns_cpu.Hogwild`'s
    interface (``run``, ``words_done``, ``steps``, ``flow_time``, ``running_loss``,
    ``to_arrays``); a step is a batch of ``batch_size`` kept centres.

    Parameters
    ----------
    ids : (N,) int32 array
    keep : (V,) float64 tensor on ``device``
    sampler : NegativeSampler on ``device``
    W, C : (V, d) tensors on ``device`` (C None: tied), trained in place
    config : qwem_lib.word2vec.Word2VecConfig
    device : torch.device
    state : dict of arrays, optional
        :meth:`to_arrays` of a checkpoint, to continue from.
    """

    def __init__(self, ids, keep, sampler, W, C, config, device, state=None):
        self.ids, self.keep, self.sampler = ids, keep, sampler
        self.W, self.C, self.config, self.device = W, C, config, device
        self.N = len(ids)
        self.n_blocks = -(-self.N // config.block_tokens)
        self.total_words = config.epochs * self.N
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(int(config.seed) + 1)  # the negatives' stream
        self._t = torch.zeros((), dtype=torch.float64, device=device)
        self._loss = torch.zeros((), dtype=torch.float64, device=device)
        self._pairs = torch.zeros((), dtype=torch.float64, device=device)
        self.epoch = self.block = self.offset = self.steps = self.words_done = 0
        self._blk = None  # (epoch, block, Block) last prepared
        if state is not None:
            (self.epoch, self.block, self.offset, self.steps,
             self.words_done) = (int(v) for v in state["torch_position"])
            self._t.fill_(float(state["torch_t"]))
            self.gen.set_state(torch.from_numpy(state["torch_rng"].copy()))

    @property
    def flow_time(self) -> float:
        return float(self._t)

    @property
    def done(self) -> bool:
        return self.words_done >= self.total_words

    def running_loss(self) -> tuple[float, float]:
        """Loss summed over every pair trained so far (this session), and pairs."""
        return float(self._loss), float(self._pairs)

    def to_arrays(self) -> dict:
        return {"torch_position": np.array([self.epoch, self.block, self.offset,
                                            self.steps, self.words_done], np.int64),
                "torch_t": np.float64(self.flow_time),
                "torch_rng": self.gen.get_state().cpu().numpy().astype(np.uint8)}

    def _prepared(self) -> Block:
        key = (self.epoch, self.block)
        if self._blk is None or self._blk[0] != key:
            g = torch.Generator(device=self.device)
            g.manual_seed(block_seed(self.config.seed, self.epoch, self.block))
            a = self.block * self.config.block_tokens
            self._blk = key, prepare_block(self.ids[a:a + self.config.block_tokens],
                                           self.keep, self.config.window, g,
                                           self.device)
        return self._blk[1]

    def run(self, target_words: int, poll=None, poll_steps: int = 64) -> None:
        """Train until ``target_words`` raw tokens have been read (or the end);
        ``poll()`` every ``poll_steps`` steps and at the end."""
        cfg = self.config
        target = min(int(target_words), self.total_words)
        while self.words_done < target:
            if self.block == self.n_blocks:
                self.epoch, self.block, self.offset = self.epoch + 1, 0, 0
                continue
            blk = self._prepared()
            base = self.epoch * self.N + self.block * cfg.block_tokens
            n = blk.kept.numel()
            if self.offset >= n:  # the block is done
                self.words_done = base + blk.raw_len
                self.block, self.offset = self.block + 1, 0
                continue
            stop = min(n, self.offset + cfg.batch_size)
            lr = cfg.lr * max(MIN_LR_RATIO, 1.0 - self.words_done / self.total_words)
            negs = self.sampler.draw((stop - self.offset, cfg.negatives), self.gen)
            loss, pairs = sgns_update(self.W, self.C, blk.kept, blk.windows,
                                      self.offset, stop, negs, lr, cfg.window,
                                      cfg.step_cap)
            self.steps += 1
            self.offset = stop
            self.words_done = base + (int(blk.raw_pos[stop]) if stop < n
                                      else blk.raw_len)
            self._t.add_(pairs, alpha=lr)
            self._loss += loss
            self._pairs += pairs
            if poll is not None and self.steps % poll_steps == 0:
                poll()
        if poll is not None:
            poll()
