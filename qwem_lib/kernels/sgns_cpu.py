"""Skip-gram with negative sampling as a compiled CPU kernel, on several threads.

The kernel (numba, compiled on first use and cached on disk) walks the token stream
the way word2vec.c does: one centre at a time, its updates applied at once, from
several threads that share W and C without locks (Hogwild, Recht et al. 2011).  It
runs outside the GIL, so Python threads run it in parallel.

**The stream.**  The raw (in-vocabulary) token stream is cut into blocks of
``block_tokens`` tokens, word2vec's "sentences": windows never cross a block
boundary.  Each block has its own random stream, seeded from ``(seed, epoch, block)``
(SplitMix64), which in this order

1. subsamples the block: token p of word w is kept iff ``u_p < keep_w``, a uniform
   ``u_p`` being drawn only for words with ``keep_w < 1``;
2. draws each kept position's window ``b`` uniformly in ``1..L``;
3. draws the negatives, k per centre (``shared``) or k per pair, from ``count^α``
   by Walker's alias method, as the centres are processed.

The random choices of a block therefore do not depend on the number of threads nor
on where a run was paused; only the interleaving of the threads' updates does.

**One centre.**  Its contexts are the kept tokens at offsets ``1 <= |s| <= b`` in
its block, taken in the order ``s = -b..b``.  As in word2vec.c the context's row of
W is the input vector and the centre's row of C the output (C = W when tied), the
pairs are trained one after the other.  Within a pair the k + 1 targets (the
centre, label y = 1, and the negatives, y = 0; a negative equal to the centre word
is skipped) are scored first, then updated one after the other with learning
rate η:

    g_n = η (y_n - σ(w_o·c_n)) for every n;   then for each n:   e += g_n c_n,
    c_n += g_n w_o;   then   w_o += e.

word2vec.c scores each target just before its update; the two orders differ only
where a target repeats within a pair (a negative drawn twice), and scoring first
lets the CPU overlap the k + 1 independent dot products (bench/README.md,
``word2vec_speed.py``).

- ``shared=True`` (Ji et al. 2016, "Parallelizing word2vec in shared and distributed
  memory"): the k negatives are drawn once per centre and used by all the pairs of
  its window.  Every pair still sees k negatives of weight 1, so the expected update
  is word2vec's; the window's k + 1 output rows stay in the core's L1 cache from
  pair to pair, and a centre draws k random numbers instead of k per pair.
- ``shared=False`` (word2vec.c): every pair draws its own k negatives.

**Learning rate.**  ``η = lr · max(1e-4, 1 - words / (epochs · N))`` at each
centre, ``words`` being the raw tokens read so far (discarded ones included) before
that centre, as in word2vec.c.  With T threads a thread estimates the words read by
all from its own progress since the last synchronisation (times T), so the schedule
does not depend on timing.

**Threads and waves.**  Thread j owns a contiguous range of the blocks (as
word2vec.c gives each thread a part of the file).  The driver (:class:`Hogwild`)
advances all threads in waves to a common target of words read (a checkpoint, the end
of an epoch) and synchronises there; a wave can stop a thread in the middle of a
block, and its state (block, next centre, random state) lets the next wave, or a
resumed run, continue exactly.  With one thread a run is therefore the same, bit for
bit, however it is paused and resumed; with more, runs agree only statistically.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from ..runtime.errors import QwemError
from ..runtime.options import check_int

__all__ = ["alias_table", "KernelState", "Hogwild", "default_threads"]

MIN_LR_RATIO = 1e-4  # word2vec's floor: lr never decays below lr · 1e-4


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def alias_table(counts, power: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walker's alias tables for drawing word ids from ``count^power`` (normalised).

    Draw a column i uniformly, keep it with probability ``prob[i]``, else take
    ``alias[i]``: exact up to float64 rounding, O(1) a draw (Vose's construction).

    Returns
    -------
    probs : (V,) float64
        The distribution itself.
    prob : (V,) float64
    alias : (V,) int64
    """
    c = np.asarray(counts, dtype=np.float64)
    q = np.where(c > 0, c, 0.0) ** power * (c > 0)
    if not q.sum() > 0:
        raise QwemError("no word has a positive count: cannot draw negatives")
    probs = q / q.sum()
    V = len(q)
    scaled = probs * V
    prob = np.ones(V)
    alias = np.arange(V, dtype=np.int64)
    small = [i for i in range(V) if scaled[i] < 1.0]
    large = [i for i in range(V) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    for i in small + large:  # leftovers are 1 up to rounding
        prob[i] = 1.0
    return probs, prob, alias


# ----------------------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------------------

@dataclass
class KernelState:
    """Where a :class:`Hogwild` run is: all a checkpoint needs besides W and C.

    Attributes
    ----------
    epoch : int
    pos : (T, 4) int64
        Per thread: block, next centre in it (-1: not begun), raw position up to
        which the words are read, centres trained so far.
    rng : (T,) uint64
        Per thread: the random state inside a begun block.
    acc : (T, 4) float64
        Per thread: running loss (every 16th centre), its pairs, all pairs, and the
        nominal flow time ``Σ lr · pairs``.
    """

    epoch: int
    pos: np.ndarray
    rng: np.ndarray
    acc: np.ndarray

    def to_arrays(self) -> dict:
        return {"kernel_epoch": np.int64(self.epoch), "kernel_pos": self.pos,
                "kernel_rng": self.rng, "kernel_acc": self.acc}

    @classmethod
    def from_arrays(cls, z) -> "KernelState":
        return cls(int(z["kernel_epoch"]), np.array(z["kernel_pos"], np.int64),
                   np.array(z["kernel_rng"], np.uint64),
                   np.array(z["kernel_acc"], np.float64))


class Hogwild:
    """word2vec's SGNS over a token stream, on ``threads`` threads sharing W and C.

    Parameters
    ----------
    ids : (N,) int32 array
        The raw in-vocabulary token stream.
    keep : (V,) float64
        Subsampling keep probabilities (:func:`qwem_lib.losses.keep_probs`).
    prob, alias : (V,) arrays
        The negatives' alias tables (:func:`alias_table`).
    W : (V, d) float32 or float64 C-contiguous array
        Input vectors, trained in place.
    C : (V, d) array of W's dtype, or None
        Output vectors, trained in place; None: tied (C = W).
    window, negatives, block_tokens, seed, epochs, lr
        As in :class:`qwem_lib.word2vec.Word2VecConfig`.
    shared : bool
        Negatives shared by a centre's window (True) or drawn per pair, as
        word2vec.c (False).
    threads : int
    state : KernelState, optional
        Continue from here (a checkpoint); it must have ``threads`` rows.
    """

    def __init__(self, ids, keep, prob, alias, W, C, *, window: int, negatives: int,
                 block_tokens: int, seed: int, epochs: int, lr: float, shared: bool,
                 threads: int, state: KernelState | None = None):
        check_int(threads, "threads", "--threads")
        for name, a in (("W", W), ("C", C)):
            if a is not None and not (a.flags.c_contiguous and a.flags.writeable
                                      and a.dtype in (np.float32, np.float64)):
                raise QwemError(f"{name} must be a writeable C-contiguous float32 "
                                "or float64 array")
        self.ids = np.ascontiguousarray(ids, dtype=np.int32)
        self.keep = np.ascontiguousarray(keep, dtype=np.float64)
        self.prob = np.ascontiguousarray(prob, dtype=np.float64)
        self.alias = np.ascontiguousarray(alias, dtype=np.int64)
        self.W, self.C = W, (W if C is None else C)
        self.window, self.negatives = int(window), int(negatives)
        self.block_tokens, self.seed = int(block_tokens), int(seed)
        self.epochs, self.lr, self.shared = int(epochs), float(lr), bool(shared)
        self.threads = int(threads)
        self.N = len(self.ids)
        n_blocks = -(-self.N // self.block_tokens)
        T = self.threads
        self.blk_lo = np.array([j * n_blocks // T for j in range(T)], np.int64)
        self.blk_hi = np.array([(j + 1) * n_blocks // T for j in range(T)], np.int64)
        # raw position where each thread's part of the stream starts
        self.raw_lo = np.minimum(self.blk_lo * self.block_tokens, self.N)
        if state is None:
            state = KernelState(0, np.zeros((T, 4), np.int64), np.zeros(T, np.uint64),
                                np.zeros((T, 4), np.float64))
            self._begin_epoch(state, 0)
        elif state.pos.shape != (T, 4):
            raise QwemError(f"the checkpoint was written by a run on "
                            f"{state.pos.shape[0]} thread(s); resume it with "
                            f"threads={state.pos.shape[0]} (--threads "
                            f"{state.pos.shape[0]})")
        self.state = state
        self.halt = np.zeros(1, np.int64)

    def _begin_epoch(self, state: KernelState, epoch: int) -> None:
        state.epoch = epoch
        state.pos[:, 0] = self.blk_lo
        state.pos[:, 1] = -1
        state.pos[:, 2] = self.raw_lo

    @property
    def total_words(self) -> int:
        return self.epochs * self.N

    @property
    def words_done(self) -> int:
        """Raw tokens read so far, over all epochs and threads."""
        st = self.state
        return st.epoch * self.N + int((st.pos[:, 2] - self.raw_lo).sum())

    @property
    def steps(self) -> int:
        """Centres trained so far (those with at least one context)."""
        return int(self.state.pos[:, 3].sum())

    @property
    def flow_time(self) -> float:
        """``Σ lr · pairs`` over all the centres trained."""
        return float(self.state.acc[:, 3].sum())

    def running_loss(self) -> tuple[float, float]:
        """Sampled loss summed so far, and its pairs."""
        acc = self.state.acc
        return float(acc[:, 0].sum()), float(acc[:, 1].sum())

    @property
    def done(self) -> bool:
        return self.words_done >= self.total_words

    def to_arrays(self) -> dict:
        """The state, for a checkpoint (:meth:`KernelState.from_arrays` reads it)."""
        return self.state.to_arrays()

    def run(self, target_words: int, poll=None, poll_seconds: float = 0.2) -> None:
        """Train until ``target_words`` raw tokens have been read (or the end).

        ``poll()`` is called from this thread every ``poll_seconds`` while the
        kernel threads work, and after each wave; if it raises, the threads stop
        at their next centre (their state stays consistent) and the exception
        propagates.  So does KeyboardInterrupt.
        """
        from . import _sgns as K

        target_words = min(int(target_words), self.total_words)
        st = self.state
        while self.words_done < target_words:
            active = st.pos[:, 0] < self.blk_hi
            if not active.any():
                self._begin_epoch(st, st.epoch + 1)
                continue
            cap = min(target_words, (st.epoch + 1) * self.N)
            n_active = int(active.sum())
            delta = -(-(cap - self.words_done) // n_active)
            base = self.words_done
            args = []
            for j in np.flatnonzero(active):
                raw_next = int(st.pos[j, 2])
                # words read by all, estimated from this thread's position p:
                # base + n_active · (p - raw_next)
                lr_base = base - n_active * raw_next
                args.append((self.ids, self.keep, self.prob, self.alias, self.W,
                             self.C, self.shared, self.window, self.negatives,
                             self.block_tokens, self.seed, st.epoch,
                             int(self.blk_hi[j]), st.pos[j], st.rng[j:j + 1],
                             raw_next + delta, self.lr, MIN_LR_RATIO,
                             float(self.total_words),
                             float(lr_base), float(n_active), st.acc[j], self.halt,
                             # scratch space (see _sgns.wave)
                             np.empty(self.W.shape[1], self.W.dtype),
                             np.empty(self.negatives + 1, self.W.dtype),
                             np.empty(self.negatives + 1, np.int64),
                             np.empty(2 * self.window, np.int64)))
            self._wave(K.wave, args, poll, poll_seconds)
            if poll is not None:
                poll()

    def _wave(self, kernel, args, poll, poll_seconds) -> None:
        errors = []

        def work(a):
            try:
                kernel(*a)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        if len(args) == 1 and poll is None:
            work(args[0])
        else:
            workers = [threading.Thread(target=work, args=(a,), daemon=True)
                       for a in args]
            for w in workers:
                w.start()
            try:
                for w in workers:
                    while w.is_alive():
                        w.join(poll_seconds)
                        if poll is not None:
                            poll()
            except BaseException:
                self.halt[0] = 1
                for w in workers:
                    w.join()
                self.halt[0] = 0
                raise
        if errors:
            raise errors[0]
