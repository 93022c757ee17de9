"""Run compiled kernels (which release the GIL) in several threads.

Each row range is handled by exactly one thread, so results written per row do not
depend on the number of threads; the first error of any thread is re-raised in the
caller's.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np

__all__ = ["run_threads", "run_ranges", "row_bounds", "run_rows"]


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
