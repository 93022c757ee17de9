"""Window co-occurrence counts (arXiv 2502.09863, setup).

For every pair of in-vocabulary tokens at separation ``s`` (1 <= s <= context_len) the
pair (centre, context) gets weight ``w_s``; the paper uses ``w_s = context_len + 1 - s``
(17 - s for its window of 16 words each side).  Counts are symmetric: each pair at
separation ``s`` is counted in both orders, so ``C = N + N^T`` where ``N[i, j]`` sums
the weights of the pairs with ``i`` first.

The CPU path avoids the random writes into a ``V x V`` array that make a naive scatter
slow: token positions are sorted by their centre word (a radix sort), so each block of
work writes into a handful of rows that stay in cache, and two threads take disjoint
row ranges.  The CUDA path scatters with atomics.  Memory stays O(V^2 + T): work is
chunked, never O(T x context_len).

For vocabularies where ``V x V`` no longer fits (V = 100,000 is 80 GB in float64),
:func:`count_pairs_sparse` returns the same counts as a SciPy CSR matrix, built row
by row with a sparse accumulator (compiled numba kernels,
:mod:`qwem_lib.kernels._cooccurrence`, two passes: count the entries of every row,
then fill the preallocated arrays), in memory that grows with the number of distinct
observed pairs and the corpus length, never with ``V^2``.
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..kernels.threads import run_ranges, run_rows, run_threads
from ..runtime.devices import default_device
from ..runtime.errors import QwemError
from ..runtime.memory import require, require_dense
from ..runtime.options import check_int

__all__ = ["window_weights", "check_window", "count_pairs", "count_pairs_sparse",
           "add_counts", "upper_triangle", "mirror_upper", "count_pairs_naive",
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
    try:
        return check_int(window, "window", "--window", hi=MAX_WINDOW)
    except QwemError as e:
        raise QwemError(f"{e}; use e.g. --window 16 (the paper's)") from None


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
    vocab_size = check_int(vocab_size, "vocab_size", "--vocab-size")
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
        def work(a: int, b: int) -> None:
            for c0 in range(a, b, chunk):
                c1 = min(c0 + chunk, b)
                win = windows[order[c0:c1]]
                key = win[:, :1].to(idx_dtype) * V + win[:, 1:].to(idx_dtype)
                key = key.reshape(-1)
                N.index_add_(0, key, wt[: key.numel()])
                if progress is not None:
                    progress.update(c1 - c0)

        run_ranges(work, zip(bounds[:-1], bounds[1:]))
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
        (:func:`qwem_lib.runtime.memory.require_dense`; ``QWEM_MEMORY_CHECK=0``
        skips it).
    """
    ids, vocab_size = _check_ids(ids, vocab_size)
    w = window_weights(context_len, weighting)
    device = torch.device("cpu") if device is None else default_device(device)
    require_dense(vocab_size, COUNT_BYTES_PER_ENTRY, device,
                  what="counting pairs (dense V x V statistics)",
                  overhead=COUNT_OVERHEAD_BYTES + COUNT_BYTES_PER_TOKEN * len(ids))
    from ..runtime.progress import bar as progress_bar

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


# ----------------------------------------------------------------------------------
# Sparse counts (V up to 100,000 and more).

# Bytes per token of the sparse counter's working arrays: the positions sorted by
# centre word (int32 while T < 2^31), the ids as int32 (a copy unless they already
# are), and slack for the caller's copy.
SPARSE_BYTES_PER_TOKEN = 12.0

_SPARSE_FIX = ("choose a smaller --vocab-size or --window, or a machine with more "
               "memory")


class _Rows(NamedTuple):
    """What the row kernels of :mod:`qwem_lib.kernels._cooccurrence` read.

    ``ids`` (int32) in corpus order; ``order`` the positions sorted by centre word,
    those of word ``i`` at ``order[starts[i]:starts[i+1]]``; ``seps`` the
    separations with a non-zero weight and ``wts`` their weights.
    """

    ids: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    seps: np.ndarray
    wts: np.ndarray


def _sorted_rows(ids: np.ndarray, V: int, seps: np.ndarray,
                 wts: np.ndarray) -> _Rows:
    """The token positions sorted by centre word (a stable counting sort)."""
    from ..kernels import _cooccurrence as kern

    T = len(ids)
    ids32 = np.ascontiguousarray(ids, dtype=np.int32)
    starts = np.zeros(V + 1, dtype=np.int64)
    order = np.empty(T, dtype=np.int32 if T < 2**31 else np.int64)
    kern.sort_positions(ids32, starts, order)
    return _Rows(ids32, order, starts, seps, wts)


def _row_pieces(rows: _Rows, n_threads: int) -> list[tuple[int, int, int]]:
    """Row ranges ``(r0, r1, positions)`` of about ``T / n_pieces`` positions each
    (the frequent words' rows are the heaviest and come first); ~64 per thread
    for balance and the bar."""
    T, V = len(rows.ids), len(rows.starts) - 1
    starts = rows.starts
    n_pieces = max(64, 64 * n_threads)
    cuts = np.searchsorted(starts, np.arange(1, n_pieces) * (T / n_pieces))
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 0, V), [V]]))
    return [(int(a), int(b), int(starts[b] - starts[a]))
            for a, b in zip(bounds[:-1], bounds[1:])]


def _scratch_arrays(scratch: dict, V: int):
    """One thread's scratch for the row kernels, made on its first piece: the byte
    markers of the columns and of the blocks of 64 columns (zero between rows; seen
    by the kernels also as uint64 words), and the accumulator of a row."""
    if "flag" not in scratch:
        n_blocks = -(-V // 64)  # blocks of 64 columns
        flag64 = np.zeros(8 * n_blocks, dtype=np.uint64)
        block64 = np.zeros(-(-n_blocks // 8), dtype=np.uint64)
        scratch["flag"] = (flag64.view(np.uint8), block64.view(np.uint8), flag64,
                           block64)
        scratch["acc"] = np.zeros(V, dtype=np.float64)
    return scratch["flag"], scratch["acc"]


def _run_pieces(pieces, n_threads: int, work, progress) -> None:
    """Call ``work(r0, r1, scratch)`` for every row range of ``pieces`` (heaviest
    first, as the vocabulary is in frequency order) on ``n_threads`` threads that
    take the next range when done; ``progress`` advances by ``pieces[k][2]``."""
    lock = threading.Lock()
    nxt = [0]

    def worker() -> None:
        scratch = {}
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += len(pieces) if k >= len(pieces) else 1
            if k >= len(pieces):
                return
            r0, r1, size = pieces[k]
            try:
                work(r0, r1, scratch)
            except BaseException:
                with lock:           # the other threads stop at their next piece
                    nxt[0] = len(pieces)
                raise
            if progress is not None:
                progress.update(size)

    run_threads(worker, min(n_threads, len(pieces)))


def _count_entries(rows: _Rows, pieces, n_threads: int, bar) -> np.ndarray:
    """Pass 1: the number of entries of every row, ``(V,)`` int64."""
    from ..kernels import _cooccurrence as kern

    V = len(rows.starts) - 1
    nnz_row = np.zeros(V, dtype=np.int64)

    def work(r0, r1, scratch):
        markers, _ = _scratch_arrays(scratch, V)
        kern.count_rows(rows.ids, rows.order, rows.starts, rows.seps, r0, r1,
                        *markers, nnz_row)

    _run_pieces(pieces, n_threads, work, bar)
    return nnz_row


def _row_pointers(nnz_row: np.ndarray) -> np.ndarray:
    """The CSR ``indptr`` of rows of these sizes (int32 while the entries number
    below 2^31, else int64), once the whole result is known to fit in memory."""
    V = len(nnz_row)
    nnz = int(nnz_row.sum())
    idx_dtype = np.int32 if nnz < 2**31 else np.int64
    isize = np.dtype(idx_dtype).itemsize
    require(nnz * (8.0 + isize) + (V + 1) * isize, "cpu",
            f"the sparse pair counts for V = {V:,} ({nnz:,} entries)", _SPARSE_FIX)
    indptr = np.zeros(V + 1, dtype=idx_dtype)
    np.cumsum(nnz_row, out=indptr[1:])
    return indptr


def _fill_entries(rows: _Rows, pieces, n_threads: int, bar, indptr: np.ndarray):
    """Pass 2: the CSR ``indices`` and ``data`` of every row, columns ascending."""
    from ..kernels import _cooccurrence as kern

    V = len(rows.starts) - 1
    indices = np.empty(int(indptr[-1]), dtype=indptr.dtype)
    data = np.empty(int(indptr[-1]), dtype=np.float64)

    def work(r0, r1, scratch):
        markers, acc = _scratch_arrays(scratch, V)
        kern.fill_rows(rows.ids, rows.order, rows.starts, rows.seps, rows.wts, r0, r1,
                       *markers, acc, indptr, indices, data)

    _run_pieces(pieces, n_threads, work, bar)
    return indices, data


def _count_sparse(rows: _Rows, n_threads: int, progress: bool):
    """The CSR arrays ``(indptr, indices, data)`` of the counts, in two passes over
    the rows (their sizes, then their entries), shared among threads in ranges."""
    from ..runtime.progress import bar as progress_bar

    pieces = _row_pieces(rows, n_threads)
    # One bar for both passes (each position is visited twice).
    with progress_bar(progress, total=2 * len(rows.ids), desc="co-occurrence",
                      unit="tok", unit_scale=True) as bar:
        nnz_row = _count_entries(rows, pieces, n_threads, bar)
        indptr = _row_pointers(nnz_row)
        del nnz_row
        indices, data = _fill_entries(rows, pieces, n_threads, bar, indptr)
    return indptr, indices, data


def _no_pairs(V: int):
    """The ``(V, V)`` CSR matrix of no pairs."""
    import scipy.sparse

    return scipy.sparse.csr_matrix(
        (np.zeros(0), np.zeros(0, np.int32), np.zeros(V + 1, np.int32)),
        shape=(V, V))


def count_pairs_sparse(ids, vocab_size: int, context_len: int = 16,
                       weighting: str | Sequence[float] = "linear", *,
                       n_threads: int | None = None, progress: bool = False):
    """Symmetric weighted window co-occurrence counts (paper's setup), sparse.

    The same counts as :func:`count_pairs`, for vocabularies whose dense ``V x V``
    matrix does not fit (the paper's V = 10,000 is 0.8 GB dense, V = 100,000 would be
    80 GB): memory grows with the number of distinct pairs observed within the window
    and with the corpus length, never with ``V^2``.

    Token positions are sorted by centre word, then every row is built with a
    sparse accumulator whose columns come back in ascending order, no per-row sort
    (:mod:`qwem_lib.kernels._cooccurrence`).  A first pass counts the entries of
    each row, a second fills the preallocated CSR arrays; rows are shared among
    threads in ranges of about equal numbers of positions.  Work is ``O(T L + nnz +
    V^2 / 512)`` word operations per pass; memory ``12 nnz + 12 T + O(V)`` bytes
    (the result, the sorted positions and the ids as int32, per-thread markers and
    accumulator).

    Parameters
    ----------
    ids : (T,) int array
        In-vocabulary token ids in corpus order (out-of-vocabulary tokens already
        removed, as in the paper).
    vocab_size : int
        V; every id must be in ``[0, V)``.
    context_len : int
        Window half-width L (the paper: 16); the pair at separation s gets ``w_s``.
    weighting : {"linear", "uniform"} or sequence
        See :func:`window_weights`.
    n_threads : int, optional
        Worker threads (default ``torch.get_num_threads()``).  The result does not
        depend on it, bit for bit.
    progress : bool
        Show a bar over the token positions of both passes.

    Returns
    -------
    C : (V, V) scipy.sparse.csr_matrix, float64, symmetric
        ``C[i, j] = sum_s w_s * #{t : (x_t, x_{t+s}) = (i, j) or (j, i)}``, both
        triangles stored, in canonical form (sorted column indices in every row, no
        duplicates, no stored zeros); int32 ``indptr`` and ``indices`` while the
        number of entries is below 2^31, int64 beyond.  Equal to
        ``count_pairs(...).numpy()`` bit for bit for integer weights ("linear",
        "uniform"); for other weights up to the order of floating-point additions
        (and then made exactly symmetric: ``C[i, j]`` and ``C[j, i]``, summed in
        different orders, are both set to their mean).

    Raises
    ------
    QwemError
        On bad input (as :func:`count_pairs`), or if the working arrays (before any
        work) or the result (after the first pass, which counts its entries) would
        not fit in the memory available (:func:`qwem_lib.runtime.memory.require`;
        ``QWEM_MEMORY_CHECK=0`` skips it).
    """
    ids, V = _check_ids(ids, vocab_size)
    w = window_weights(context_len, weighting)
    T = len(ids)
    n_threads = max(1, int(n_threads or torch.get_num_threads()))
    require(SPARSE_BYTES_PER_TOKEN * T + (16.0 + 12.0 * n_threads) * V, "cpu",
            f"counting pairs (sparse statistics) of {T:,} tokens for V = {V:,}",
            _SPARSE_FIX)
    # Separations with a non-zero weight (a zero weight must not store zeros).
    seps = np.flatnonzero(w).astype(np.int64) + 1
    wts = np.ascontiguousarray(w[seps - 1])
    if T < 2 or len(seps) == 0:
        return _no_pairs(V)
    rows = _sorted_rows(ids, V, seps, wts)
    indptr, indices, data = _count_sparse(rows, n_threads, progress)
    del rows
    if not np.array_equal(wts, np.round(wts)):
        from ..kernels import _cooccurrence as kern

        # Row i sums the weights of C[i, j] in another order than row j those of
        # C[j, i]: with non-integer weights they can differ in the last bits.
        kern.symmetrize_values(indptr, indices, data)
    return _csr(data, indices, indptr, (V, V))


def add_counts(A, B, *, n_threads: int | None = None):
    """``A + B`` for two sparse count matrices, exactly, into arrays of the exact size.

    The sum of the shards' counts (:mod:`qwem_lib.corpus.shards`): each row of the
    result merges the sorted rows of ``A`` and ``B``, in two compiled passes (the size
    of every row, then the entries), so memory is the two inputs and the result, not
    scipy's ``A + B`` working copy of ``nnz(A) + nnz(B)`` entries.  The same values
    as ``A + B``, bit for bit (one float64 addition per shared entry).

    Parameters
    ----------
    A, B : (V, V) scipy.sparse.csr_matrix
        Canonical (sorted column indices, no duplicates), as
        :func:`count_pairs_sparse` returns them.
    n_threads : int, optional
        Threads (default ``torch.get_num_threads()``); the result does not depend on
        it.

    Returns
    -------
    (V, V) scipy.sparse.csr_matrix, float64, canonical
    """
    from ..kernels import _sparse as kern

    if A.shape != B.shape:
        raise QwemError(f"cannot add counts of shapes {A.shape} and {B.shape}: the "
                        "shards were counted over different vocabularies")
    A, B = _canonical(A), _canonical(B)
    parts = 4 * max(1, int(n_threads or torch.get_num_threads()))
    work = np.asarray(A.indptr, np.int64) + np.asarray(B.indptr, np.int64)
    sizes = np.zeros(A.shape[0], np.int64)
    run_rows(kern.union_sizes, work, parts, A.indptr, A.indices, B.indptr, B.indices,
             sizes)
    indptr, indices, data = _csr_arrays(sizes)
    del sizes
    run_rows(kern.union_fill, work, parts, A.indptr, A.indices, A.data, B.indptr,
             B.indices, B.data, indptr, indices, data)
    return _csr(data, indices, indptr, A.shape)


def _canonical(M):
    """``M`` with sorted rows and no duplicates: itself, or a canonical copy (an
    input held elsewhere, as a Dask worker holds it, is never changed)."""
    if M.has_canonical_format:
        return M
    M = M.copy()
    M.sum_duplicates()  # sorts the rows too
    return M


def _csr_arrays(sizes: np.ndarray):
    """Empty CSR arrays for rows of these sizes: indptr, indices (int32 while the
    entries fit, else int64) and float64 data."""
    nnz = int(sizes.sum())
    index = np.int32 if nnz < 2**31 - 1 else np.int64
    indptr = np.zeros(len(sizes) + 1, index)
    np.cumsum(sizes, out=indptr[1:])
    return indptr, np.empty(nnz, index), np.empty(nnz, np.float64)


def _csr(data, indices, indptr, shape):
    import scipy.sparse

    C = scipy.sparse.csr_matrix((data, indices, indptr), shape=shape)
    C.has_sorted_indices = True
    C.has_canonical_format = True
    return C


def upper_triangle(C, *, n_threads: int | None = None):
    """The entries of a canonical CSR matrix on and above its diagonal.

    A symmetric count matrix is known from its upper triangle, half its entries:
    what the shards of a corpus send and sum (:mod:`qwem_lib.corpus.shards`);
    :func:`mirror_upper` gives the whole matrix back, bit for bit.
    """
    from ..kernels import _sparse as kern

    C = _canonical(C)
    parts = 4 * max(1, int(n_threads or torch.get_num_threads()))
    first = np.empty(C.shape[0], np.int64)
    run_rows(kern.upper_sizes, C.indptr, parts, C.indptr, C.indices, first)
    sizes = np.asarray(C.indptr[1:], np.int64) - first
    indptr, indices, data = _csr_arrays(sizes)
    run_rows(kern.upper_fill, C.indptr, parts, C.indptr, C.indices, C.data, first,
             indptr, indices, data)
    return _csr(data, indices, indptr, C.shape)


def mirror_upper(U):
    """The symmetric matrix ``U + Uᵀ - diag(U)`` of an upper-triangular canonical
    CSR matrix (:func:`upper_triangle`), canonical, in one compiled pass."""
    from ..kernels import _sparse as kern

    V = U.shape[0]
    sizes = np.zeros(V, np.int64)
    kern.mirror_sizes(U.indptr, U.indices, sizes)
    indptr, indices, data = _csr_arrays(sizes)
    del sizes
    kern.mirror_fill(U.indptr, U.indices, U.data, indptr, indices, data,
                     np.empty(V, np.int64))
    return _csr(data, indices, indptr, U.shape)
