"""Run compiled kernels (which release the GIL) in several threads, and choose how
many threads torch's own operations use.

Each row range is handled by exactly one thread, so results written per row do not
depend on the number of threads; the first error of any thread is re-raised in the
caller's.

torch's intra-op threads (OpenMP, MKL) meet at a barrier after every parallel
operation, and wait there spinning.  When another process holds a core, the thread
on that core is descheduled and every operation waits for it a scheduler time slice:
small operations (a minibatch step's gathers and ``index_add_`` on a (V, d) matrix)
then take milliseconds instead of microseconds.  :func:`torch_threads_for` picks one
thread for such small work, and :func:`torch_threads` sets a count for a block of
code and gives the caller's setting back afterwards.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = ["run_threads", "run_ranges", "row_bounds", "run_rows", "available_cpus",
           "torch_threads_for", "torch_threads", "SMALL_WORK"]

# Elements touched per operation sequence (e.g. one minibatch step) below which torch
# runs on one thread.  Measured on 2 cores shared with other CPU-bound jobs (minibatch
# steps, ms per step, 1 thread vs 2): work 1.5e5: 2.4 vs 424; 4.5e6: 44 vs 690;
# 3.0e7: 443 vs 378.  Above about 1.7e7 the work per barrier outweighs the wait.
SMALL_WORK = 1 << 24


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def torch_threads_for(work: float, cpus: int | None = None,
                      current: int | None = None, *,
                      small: float = SMALL_WORK) -> int:
    """torch intra-op threads for a sequence of operations touching ``work`` elements.

    One thread when ``work < small`` (a busy machine then slows the work in
    proportion, not by the barrier waits of several threads); else ``current`` (the
    caller's setting, default ``torch.get_num_threads()``) capped at ``cpus``
    (default :func:`available_cpus`).  A pure function of its arguments when both are
    given.
    """
    if cpus is None:
        cpus = available_cpus()
    if current is None:
        import torch

        current = torch.get_num_threads()
    cap = max(1, min(int(current), int(cpus)))
    return 1 if work < small else cap


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(n)``, then restore the caller's
    count (also on error).  The count is process-wide: calls from several Python
    threads at once see each other's setting while they run."""
    import torch

    old = torch.get_num_threads()
    n = max(1, int(n))
    if n != old:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def run_threads(fn: Callable[[], None], n_threads: int) -> None:
    """Call ``fn()`` in ``n_threads`` threads at once (in the caller's for one) and
    re-raise the first error of any of them."""
    if n_threads <= 1:
        fn()
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def run_ranges(work: Callable[[int, int], None],
               ranges: Sequence[tuple[int, int]]) -> None:
    """Call ``work(a, b)`` for every non-empty ``(a, b)`` in ``ranges``, one thread
    per range."""
    todo = [(int(a), int(b)) for a, b in ranges if a < b]
    lock = threading.Lock()

    def take() -> None:
        while True:
            with lock:
                if not todo:
                    return
                a, b = todo.pop(0)
            work(a, b)

    run_threads(take, len(todo))


def row_bounds(indptr: np.ndarray, n_parts: int) -> list[int]:
    """Row boundaries splitting a CSR matrix into parts of about equal nnz."""
    V = len(indptr) - 1
    nnz = int(indptr[-1])
    cuts = [int(np.searchsorted(indptr, nnz * k // n_parts, side="left"))
            for k in range(1, n_parts)]
    return sorted({0, V, *[min(max(c, 0), V) for c in cuts]})


def run_rows(kernel, indptr: np.ndarray, n_parts: int, *args) -> None:
    """Run ``kernel(*args, r0, r1)`` over ``n_parts`` row ranges of about equal nnz
    (by ``indptr``), one thread per range."""
    bounds = row_bounds(indptr, max(1, n_parts))
    run_ranges(lambda r0, r1: kernel(*args, r0, r1), zip(bounds[:-1], bounds[1:]))
