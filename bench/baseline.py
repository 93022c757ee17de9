"""A straightforward closed-form QWEM pipeline, the yardstick for ``qwem embed``.

This is what a competent researcher would write in an afternoon, with no tuning:

read+tokenise  ``bz2`` decode + ``str.split`` in plain Python; ``collections.Counter``,
               top V by (count desc, word asc), ids through a dict, out-of-vocabulary
               tokens removed before windowing (arXiv 2502.09863, setup);
count          a numba double loop over positions and separations s = 1..L adding
               weight L + 1 - s to C[i, j] and C[j, i] (float64, V x V);
target         P = C / sum C, P_i = sum_j P_ij,
               M* = (P - P_i P_j) / (½ (P + P_i P_j))  (Setting 3.1, paper, Thm. 1);
eigen          LAPACK's subset eigensolver for the top d eigenpairs,
               W = V_d Λ_d^{1/2} (Theorem 1), columns in descending eigenvalue order;
write          word2vec text format, one ``'%.9e'`` per number.

Every stage is timed with ``time.perf_counter``; the timings are written as JSON
``{"stages": {name: seconds}, "total": seconds}``, the same shape ``qwem embed
--timings`` writes, so ``bench/closed_form.py`` can put the two side by side.

Usage::

    python bench/baseline.py --corpus text8like.txt.bz2 --vocab-size 10000 \\
        --dim 200 --window 16 --out W.txt --timings baseline.json
"""

from __future__ import annotations

import argparse
import bz2
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.linalg

try:
    from numba import njit
except ImportError:  # checked in main(), so that --help works without numba
    njit = None


def read_tokens(path: Path) -> list[str]:
    """All whitespace-separated tokens of a (possibly bz2-compressed) text file."""
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().split()


def vocabulary(tokens: list[str], vocab_size: int) -> tuple[list[str], np.ndarray]:
    """Top ``vocab_size`` words (count desc, word asc) and the in-vocabulary ids."""
    counts = Counter(tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [w for w, _ in ranked[:vocab_size]]
    index = {w: i for i, w in enumerate(words)}
    ids = np.array([index[w] for w in tokens if w in index], dtype=np.int64)
    return words, ids


def _count_loop(ids, V, L):
    C = np.zeros((V, V))
    T = ids.shape[0]
    for t in range(T):
        i = ids[t]
        for s in range(1, L + 1):
            if t + s >= T:
                break
            j = ids[t + s]
            w = L + 1 - s
            C[i, j] += w
            C[j, i] += w
    return C


def m_star(C: np.ndarray) -> np.ndarray:
    """M* of Setting 3.1 from symmetric counts; pairs with P_ij = 0 come out as -2."""
    P = C / C.sum()
    Pi = P.sum(axis=1)
    Q = np.outer(Pi, Pi)
    # Where P = 0 this is -Q / (Q / 2) = -2 exactly (every P_i > 0 here).
    return (P - Q) / (0.5 * (P + Q))


def top_eigen(M: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``d`` eigenpairs of symmetric M, eigenvalues descending."""
    V = M.shape[0]
    vals, vecs = scipy.linalg.eigh(M, subset_by_index=[V - d, V - 1], driver="evr")
    return vals[::-1], vecs[:, ::-1]


def write_word2vec(path: Path, words: list[str], W: np.ndarray) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{W.shape[0]} {W.shape[1]}\n")
        for w, row in zip(words, W):
            f.write(w + " " + " ".join("%.9e" % x for x in row) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True,
                    help="plain text or .bz2, whitespace-separated normalised tokens")
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--window", type=int, default=16,
                    help="context_len L; separation s gets weight L + 1 - s")
    ap.add_argument("--out", type=Path, required=True, help="word2vec text file")
    ap.add_argument("--timings", type=Path, help="JSON file for the stage timings")
    args = ap.parse_args(argv)

    if njit is None:
        print("baseline.py needs numba for its counting loop: "
              "pip install numba", file=sys.stderr)
        return 2
    if not args.corpus.is_file():
        print(f"baseline.py: corpus {args.corpus} not found", file=sys.stderr)
        return 2

    stages: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        stages[name] = t1 - t0
        print(f"  {name:<13} {t1 - t0:8.2f} s", file=sys.stderr, flush=True)
        return t1

    # Stage names follow `qwem embed --timings`, so the two line up in the table.
    t = time.perf_counter()
    tokens = read_tokens(args.corpus)
    t_read = time.perf_counter() - t
    words, ids = vocabulary(tokens, args.vocab_size)
    del tokens
    print(f"  (read {t_read:.2f} s, vocabulary and ids "
          f"{time.perf_counter() - t - t_read:.2f} s)", file=sys.stderr)
    t = lap("read+tokenise", t)
    count = njit(_count_loop)  # compiled on first call, inside the "count" stage
    C = count(ids, len(words), args.window)
    t = lap("count", t)
    M = m_star(C)
    del C
    t = lap("target", t)
    vals, vecs = top_eigen(M, args.dim)
    del M
    W = vecs * np.sqrt(np.clip(vals, 0.0, None))
    t = lap("eigen", t)
    write_word2vec(args.out, words, W)
    t = lap("write", t)

    total = time.perf_counter() - start
    print(f"  {'total':<13} {total:8.2f} s  ({len(ids):,} in-vocabulary tokens, "
          f"lambda_1 = {vals[0]:.4g}, lambda_{args.dim} = {vals[-1]:.4g})",
          file=sys.stderr)
    if args.timings:
        args.timings.write_text(json.dumps({"stages": stages, "total": total},
                                           indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
