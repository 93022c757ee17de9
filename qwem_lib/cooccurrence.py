"""Window co-occurrence counts (arXiv 2502.09863, setup).

For every pair of in-vocabulary tokens at separation ``s`` (1 <= s <= context_len) the
pair (centre, context) gets weight ``w_s``; the paper uses ``w_s = context_len + 1 - s``
(17 - s for its window of 16 words each side).  Counts are symmetric: each pair at
separation ``s`` is counted in both orders, so ``C = N + N^T`` where ``N[i, j]`` sums the
weights of the pairs with ``i`` first.

The CPU path avoids the random writes into a ``V x V`` array that make a naive scatter
slow: token positions are sorted by their centre word (a radix sort), so each block of
work writes into a handful of rows that stay in cache, and two threads take disjoint
row ranges.  The CUDA path scatters with atomics.  Memory stays O(V^2 + T): work is
chunked, never O(T x context_len).
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import torch

from .devices import default_device
from .errors import QwemError
from .memory import require_dense

__all__ = ["window_weights", "check_window", "count_pairs", "count_pairs_naive",
           "MAX_WINDOW"]

# Peak memory of counting and of the target built in place from the counts
# (pipeline.pair_statistics, then targets.m_star(out=P)), measured: peak RSS
# (ru_maxrss) minus the RSS before counting, in a fresh process, bundled sample
# (1.6-1.8 million tokens), window 16, CPU: 26.7, 12.7 and 10.7 bytes per V x V entry
# at V = 3,000, 6,000 and 8,000, i.e. 8.0 bytes per entry (the float64 counts) plus
# about 170 MB.  Of that, about 20 bytes per token are the sorted positions (int64
# order, int32 rows and ids, the sort keys), the rest the threads' chunks.
COUNT_BYTES_PER_ENTRY = 8.0
COUNT_BYTES_PER_TOKEN = 20.0
COUNT_OVERHEAD_BYTES = 150e6

# The largest window half-width accepted.  Counting time grows linearly with the
# window (every token pairs with 2L others) and the paper uses 16 (word2vec 5-10);
# beyond a thousand the "context" is a whole article, which is a typo more often
# than a plan, and would take hours on a large corpus.
MAX_WINDOW = 1000


def check_window(window) -> int:
    """``window`` as a Python int if it is an integer from 1 to :data:`MAX_WINDOW`
    (numpy integers accepted; bools, floats and strings not).

    Raises
    ------
    QwemError
        ``"window (--window) must be an integer from 1 to 1,000, got 0; ..."``.
    """
    ok = isinstance(window, (int, np.integer)) and not isinstance(window,
                                                                   (bool, np.bool_))
    if ok and 1 <= window <= MAX_WINDOW:
        return int(window)
    shown = window.item() if isinstance(window, np.generic) else window
    raise QwemError(f"window (--window) must be an integer from 1 to {MAX_WINDOW:,}, "
                    f"got {shown!r}; use e.g. --window 16 (the paper's)")


def window_weights(context_len: int = 16,
                   weighting: str | Sequence[float] = "linear") -> np.ndarray:
    """Weight of a pair at separation ``s = 1 .. context_len``.

    Parameters
    ----------
    context_len : int
        Window half-width L (the paper: 16 words each side), 1 to
        :data:`MAX_WINDOW`.
    weighting : {"linear", "uniform"} or sequence of L floats
        ``"linear"``: ``w_s = L + 1 - s`` (the paper's, equivalent in expectation to
        word2vec's dynamic window); ``"uniform"``: ``w_s = 1``.

    Returns
    -------
    w : (L,) float64
    """
    context_len = check_window(context_len)
    if isinstance(weighting, str):
        if weighting == "linear":
            return np.arange(context_len, 0, -1, dtype=np.float64)
        if weighting == "uniform":
            return np.ones(context_len, dtype=np.float64)
        raise QwemError(f"unknown window weighting {weighting!r}; "
                        "use 'linear' or 'uniform'")
    w = np.asarray(weighting, dtype=np.float64)
    if w.shape != (context_len,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise QwemError(f"window weights must be {context_len} finite non-negative "
                        f"numbers, got shape {w.shape}")
    return w


def _check_ids(ids, vocab_size: int) -> tuple[np.ndarray, int]:
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise QwemError("token ids must be a 1-D integer array")
    if isinstance(vocab_size, (bool, np.bool_)) or not isinstance(
            vocab_size, (int, np.integer)) or vocab_size < 1:
        raise QwemError(f"vocab_size (--vocab-size) must be an integer >= 1, got "
                        f"{vocab_size!r}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise QwemError(f"token ids must lie in [0, {vocab_size}); remove "
                        "out-of-vocabulary tokens before counting")
    return ids, int(vocab_size)


def count_pairs_naive(ids, vocab_size: int, context_len: int = 16,
                      weighting: str | Sequence[float] = "linear") -> np.ndarray:
    """Reference double loop over positions and separations (tests only; slow).

    Returns
    -------
    C : (V, V) float64, symmetric
    """
    ids, vocab_size = _check_ids(ids, vocab_size)
    w = window_weights(context_len, weighting)
    C = np.zeros((vocab_size, vocab_size))
    T = len(ids)
    for t in range(T):
        for s in range(1, context_len + 1):
            if t + s >= T:
                break
            C[ids[t], ids[t + s]] += w[s - 1]
            C[ids[t + s], ids[t]] += w[s - 1]
    return C


def _symmetrize_(N: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """In place ``N <- N + N^T`` without a second V x V buffer."""
    V = N.shape[0]
    for i0 in range(0, V, block):
        i1 = min(i0 + block, V)
        D = N[i0:i1, i0:i1]
        D.copy_(D + D.T)
        for j0 in range(i1, V, block):
            j1 = min(j0 + block, V)
            S = N[i0:i1, j0:j1] + N[j0:j1, i0:i1].T
            N[i0:i1, j0:j1] = S
            N[j0:j1, i0:i1] = S.T
    return N


def _count_forward_cpu(ids: np.ndarray, V: int, w: np.ndarray, chunk: int,
                       n_threads: int, progress) -> torch.Tensor:
    L = len(w)
    T = len(ids)
    N = torch.zeros(V * V, dtype=torch.float64)
    n_full = max(T - L, 0)           # positions whose whole forward window exists
    if n_full:
        tids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))
        # Stable radix sort of positions by centre word: rows become contiguous.
        key_dtype = np.uint16 if V <= 1 << 16 else np.int32
        order = np.argsort(ids[:n_full].astype(key_dtype, copy=False), kind="stable")
        order = torch.from_numpy(order.astype(np.int64, copy=False))
        rows_sorted = tids[:n_full][order].contiguous()
        windows = tids.unfold(0, L + 1, 1)            # (T - L, L + 1) view
        idx_dtype = torch.int32 if V * V < 2**31 else torch.int64
        wt = torch.from_numpy(w).repeat(chunk)
        # Split the sorted positions at row boundaries: threads own disjoint rows.
        bounds = [0]
        for k in range(1, n_threads):
            r = rows_sorted[k * n_full // n_threads]
            bounds.append(int(torch.searchsorted(rows_sorted, r.reshape(1))))
        bounds.append(n_full)
        errors: list[BaseException] = []

        def work(a: int, b: int) -> None:
            try:
                for c0 in range(a, b, chunk):
                    c1 = min(c0 + chunk, b)
                    win = windows[order[c0:c1]]
                    key = win[:, :1].to(idx_dtype) * V + win[:, 1:].to(idx_dtype)
                    key = key.reshape(-1)
                    N.index_add_(0, key, wt[: key.numel()])
                    if progress is not None:
                        progress.update(c1 - c0)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(bounds[k], bounds[k + 1]))
                   for k in range(n_threads) if bounds[k] < bounds[k + 1]]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
    # The last L positions (incomplete windows): at most L * L pairs.
    Nv = N.view(V, V)
    for t in range(n_full, T):
        for s in range(1, min(L, T - 1 - t) + 1):
            Nv[ids[t], ids[t + s]] += w[s - 1]
    if progress is not None:
        progress.update(T - n_full)
    return Nv


def _count_forward_device(ids: np.ndarray, V: int, w: np.ndarray, chunk: int,
                          device: torch.device, progress) -> torch.Tensor:
    L = len(w)
    tids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(device)
    N = torch.zeros(V * V, dtype=torch.float64, device=device)
    T = len(ids)
    for c0 in range(0, T, chunk):
        c1 = min(c0 + chunk, T)
        seg = tids[c0:min(c1 + L, T)]
        for s in range(1, L + 1):
            n = min(c1 - c0, len(seg) - s)
            if n <= 0:
                break
            key = seg[:n] * V + seg[s:s + n]
            N.index_add_(0, key, torch.full((n,), float(w[s - 1]),
                                            dtype=torch.float64, device=device))
        if progress is not None:
            progress.update(c1 - c0)
    return N.view(V, V)


def count_pairs(ids, vocab_size: int, context_len: int = 16,
                weighting: str | Sequence[float] = "linear", *,
                device: str | torch.device | None = None, chunk_size: int = 1 << 17,
                n_threads: int | None = None, progress: bool = False) -> torch.Tensor:
    """Symmetric weighted window co-occurrence counts (paper's setup).

    Parameters
    ----------
    ids : (T,) int array
        In-vocabulary token ids in corpus order (out-of-vocabulary tokens already
        removed, as in the paper).
    vocab_size : int
        V; every id must be in ``[0, V)``.
    context_len : int
        Window half-width L; the pair at separation s gets weight ``w_s``.
    weighting : {"linear", "uniform"} or sequence
        See :func:`window_weights`.
    device : torch device, optional
        Where to count and return the result; default CPU.  On CUDA the counts are
        scattered with atomic adds.
    chunk_size : int
        Token positions processed per step (memory ~ ``chunk_size * L`` indices).
    n_threads : int, optional
        CPU worker threads (default ``torch.get_num_threads()``).
    progress : bool
        Show a tqdm bar over token positions.

    Returns
    -------
    C : (V, V) float64 tensor, symmetric
        ``C[i, j] = sum_s w_s * #{t : (x_t, x_{t+s}) = (i, j) or (j, i)}``.

    Raises
    ------
    QwemError
        On bad input, or before any work if the counts and the target made from
        them in place would not fit in the memory available
        (:func:`qwem_lib.memory.require_dense`; ``QWEM_MEMORY_CHECK=0`` skips it).
    """
    ids, vocab_size = _check_ids(ids, vocab_size)
    w = window_weights(context_len, weighting)
    device = torch.device("cpu") if device is None else default_device(device)
    require_dense(vocab_size, COUNT_BYTES_PER_ENTRY, device,
                  what="counting pairs (dense V x V statistics)",
                  overhead=COUNT_OVERHEAD_BYTES + COUNT_BYTES_PER_TOKEN * len(ids))
    from .progress import bar as progress_bar

    bar = progress_bar(progress, total=len(ids), desc="co-occurrence", unit="tok",
                       unit_scale=True)
    try:
        if device.type == "cpu":
            n_threads = n_threads or max(1, torch.get_num_threads())
            N = _count_forward_cpu(ids, vocab_size, w, chunk_size, n_threads, bar)
        else:
            N = _count_forward_device(ids, vocab_size, w, 8 * chunk_size, device, bar)
    finally:
        if bar is not None:
            bar.close()
    return _symmetrize_(N)
