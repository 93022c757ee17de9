"""Large vocabularies: the sparse closed form at V = 50,000 and 100,000, in one run.

For each requested (corpus, V) it runs ``qwem embed --dim D`` (the paper's M*, window
16, the sparse engine) in a fresh process with an empty cache (tokens counted in), and
prints the wall time, the peak memory of that process, the stage times and the worst
eigenpair residual ``||M*v - λv|| / λ_1``.  Then it checks the eigenpairs against M*
rows that it counts itself, with a plain numpy loop over the token stream that shares
no code with the library's counters: for a few words i (the most frequent, a middle
one, the rarest, random ones) it builds row i of M* from its definition and compares
``(M* V)_i`` with ``(V Λ)_i`` over all returned pairs.

With ``--gensim`` it also trains gensim's word2vec (skip-gram, untied, k = 5, window
10, sample 1e-4, 5 epochs, 2 workers) at the first (corpus, V) on the same token
stream and vocabulary, and prints both methods' analogy accuracy (paper's protocol,
over the whole vocabulary), MEN and WS353, side by side.

    python bench/large_vocab.py                              # both targets, ~25 min
    python bench/large_vocab.py --runs wiki2015-text8:50000 --gensim
    python bench/large_vocab.py --runs sample:5000 --dim 50 --gensim   # a minute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine  # bench/_machine.py (the script's folder is on sys.path)


def independent_rows(ids: np.ndarray, V: int, rows: list[int], L: int = 16
                     ) -> np.ndarray:
    """Rows of M* from its definition (paper, Thm. 1), counted by a plain loop.

    ``C_ij = Σ_s (L + 1 - s) #{t : (x_t, x_{t+s}) ∈ {(i, j), (j, i)}}``; row sums of
    C give the unigram P_i and the total; unobserved pairs give M*_ij = -2.
    """
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    # unigram: P_i = Σ_j C_ij / Σ C; each token's weight is the sum of the window
    # weights of the neighbours it has on both sides
    weight_sum = np.zeros(T)
    for s in range(1, L + 1):
        w = L + 1 - s
        weight_sum[:T - s] += w
        weight_sum[s:] += w
    row_sum = np.bincount(ids, weights=weight_sum, minlength=V)
    total = row_sum.sum()
    P_i = row_sum / total
    out = np.empty((len(rows), V))
    for n, i in enumerate(rows):
        pos = np.flatnonzero(ids == i)
        c = np.zeros(V)
        for s in range(1, L + 1):
            w = L + 1 - s
            right = pos[pos + s < T] + s
            left = pos[pos - s >= 0] - s
            np.add.at(c, ids[right], w)
            np.add.at(c, ids[left], w)
        p = c / total
        q = P_i[i] * P_i
        out[n] = 2 * (p - q) / (p + q)
    return out


def _operator(M):
    """``M`` (a float64 SparseTarget) as a SciPy LinearOperator; every product
    adds its columns to ``.columns``."""
    import scipy.sparse.linalg as sla
    import torch

    def matmat(X):
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float64).reshape(V, -1))
        op.columns += X.shape[1]
        return (M @ torch.from_numpy(X)).numpy()

    V = M.shape[0]
    op = sla.LinearOperator((V, V), matvec=lambda x: matmat(x)[:, 0], matmat=matmat,
                            rmatvec=lambda x: matmat(x)[:, 0], dtype=np.float64)
    op.columns = 0
    return op


def _solve(name: str, M, op, d: int, rtol: float):
    """One solver's top-d pairs of M: (eigvals descending, eigvecs, columns)."""
    if name == "ours":
        import torch
        from qwem_lib.pipeline import _top_eigenpairs

        eig = _top_eigenpairs(M, d, cache=False, progress=False)
        return (eig.eigvals.numpy(), eig.eigvecs.to(torch.float64).numpy(),
                eig.n_matvecs)
    op.columns = 0
    if name == "eigsh (ARPACK)":
        import scipy.sparse.linalg as sla

        # ARPACK stops when ||r|| <= tol |theta| for each pair: tol = rtol gives
        # ||r|| <= rtol * lambda_1 for all of them
        lam, U = sla.eigsh(op, k=d, which="LA", tol=rtol)
    else:
        import primme

        # PRIMME's test is ||r|| <= tol ||M||, and ||M|| >= lambda_1: the
        # residuals are checked below against rtol * lambda_1 either way
        lam, U = primme.eigsh(op, k=d, which="LA", tol=rtol)
    order = np.argsort(lam)[::-1]
    return lam[order], U[:, order], op.columns


def compare_solvers(corpus: str, V: int, d: int, rtol: float = 5e-6) -> list:
    """Ours, SciPy's eigsh and PRIMME on the same operator (the sparse M* of
    ``qwem embed --engine sparse``), each to ||Mv - lambda v|| <= rtol lambda_1."""
    import importlib.util

    from qwem_lib import pipeline

    config = pipeline.EmbedConfig(corpus, V, d, engine="sparse")
    _, M = pipeline.sparse_statistics(config, device="cpu", progress=False)
    M = M.to(__import__("torch").float64)
    op = _operator(M)
    names = ["ours", "eigsh (ARPACK)"]
    if importlib.util.find_spec("primme"):
        names.append("PRIMME")
    else:
        print("   PRIMME is not installed (pip install primme: on Python 3.11 an "
              "sdist, compiled against BLAS/LAPACK); its row is left out")
    rows, ref = [], None
    for name in names:
        t0 = time.perf_counter()
        lam, U, columns = _solve(name, M, op, d, rtol)
        seconds = time.perf_counter() - t0
        op.columns = 0
        res = np.linalg.norm(op.matmat(U) - U * lam, axis=0).max() / lam[0]
        ref = lam if ref is None else ref
        gap = np.abs(lam - ref).max() / ref[0]
        rows.append((name, seconds, columns, res, gap))
        print(f"   {name}: {seconds:.0f} s, {columns:,} columns, max residual "
              f"{res:.1e} lambda_1, eigenvalues within {gap:.1e} lambda_1 of ours",
              flush=True)
    return rows


def embed(corpus: str, V: int, d: int, workdir: Path, env: dict) -> dict:
    out, timings = workdir / f"{V}.txt", workdir / f"{V}.json"
    argv = [sys.executable, "-m", "qwem_lib", "embed", "--corpus", corpus,
            "--vocab-size", str(V), "--dim", str(d), "--engine", "sparse",
            "--out", str(out), "--timings", str(timings)]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    wall = time.perf_counter() - t0
    report = json.loads(timings.read_text())
    report["wall"] = wall
    report["out"] = str(out)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+",
                   default=["wiki2015-text8:50000", "enwiki2015:100000"],
                   help="CORPUS:V pairs (default: the two targets of the issue)")
    p.add_argument("--dim", type=int, default=300)
    p.add_argument("--gensim", action="store_true",
                   help="also train gensim's word2vec at the first CORPUS:V")
    p.add_argument("--solvers", action="store_true",
                   help="also solve the first CORPUS:V with SciPy's eigsh and PRIMME "
                   "on the same operator, to the same residual")
    p.add_argument("--check-rows", type=int, default=8,
                   help="rows of M* counted independently per run")
    args = p.parse_args(argv)
    if "QWEM_DATA" not in os.environ:
        shared = Path(__file__).resolve().parents[2] / "shared" / "data"
        if shared.is_dir():
            os.environ["QWEM_DATA"] = str(shared)

    from qwem_lib import compare, evaluate
    from qwem_lib.corpus import load_tokens
    from qwem_lib.vectors import load_word2vec
    from qwem_lib.word2vec import Word2VecConfig

    print(f"machine  {machine('numpy', 'torch')}")
    results = []
    with tempfile.TemporaryDirectory(prefix="qwem-bench-") as tmp:
        env = dict(os.environ, QWEM_CACHE=str(Path(tmp) / "cache"))  # empty cache
        for spec in args.runs:
            corpus, V = spec.rsplit(":", 1)
            V = int(V)
            print(f"\n== qwem embed --corpus {corpus} --vocab-size {V:,} --dim "
                  f"{args.dim} (empty cache)", flush=True)
            rep = embed(corpus, V, args.dim, Path(tmp), env)
            words, W = load_word2vec(rep["out"])
            lam = np.asarray(rep["eigvals"])
            U = W / np.sqrt(np.clip(lam, 1e-300, None))       # columns: eigenvectors
            tokens = load_tokens(corpus, V, progress=False, cache=False)
            rng = np.random.default_rng(0)
            rows = sorted({0, V // 2, V - 1, *rng.integers(0, V, args.check_rows - 3)
                           .tolist()})
            t0 = time.perf_counter()
            M_rows = independent_rows(tokens.ids, V, rows)
            check = np.abs(M_rows @ U - U[rows] * lam).max() / lam[0]
            print(f"   independent rows {rows}: max |(M*V - VΛ)_i| / λ_1 = "
                  f"{check:.2e} ({time.perf_counter() - t0:.0f} s)", flush=True)
            results.append((corpus, V, rep, check))
            if args.gensim and len(results) == 1:
                w2v = compare.gensim_run(
                    corpus, V, Word2VecConfig(embed_dim=args.dim, window=10,
                                              negatives=5, subsample=1e-4, epochs=5,
                                              tied=False), workers=2, cache=False)
                ours = evaluate.report(W, words)
                theirs = evaluate.report(w2v.W, w2v.words)
                gensim_row = (rep["wall"], ours, w2v.seconds, theirs)
    print(f"\n| corpus | V | d | wall s | peak GB | count s | eigen s | "
          f"pairs (nnz) | columns | max residual / λ_1 | independent rows |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for corpus, V, rep, check in results:
        print(f"| {corpus} | {V:,} | {args.dim} | {rep['wall']:.0f} | "
              f"{rep['peak_rss_bytes'] / 1e9:.2f} | {rep['stages']['count']:.1f} | "
              f"{rep['stages']['eigen']:.0f} | {rep['n_pairs']:,} | "
              f"{rep['n_matvecs']:,} | {max(rep['residuals']) / rep['eigvals'][0]:.1e} "
              f"| {check:.1e} |")
    if args.solvers:
        corpus, V = args.runs[0].rsplit(":", 1)
        print(f"\n== solvers on the sparse M* of {corpus}, V = {int(V):,}, top "
              f"{args.dim} (||Mv - lv|| <= 5e-6 l_1)", flush=True)
        solver_rows = compare_solvers(corpus, int(V), args.dim)
        print("\n| solver | s | columns (products) | max residual / λ₁ | "
              "eigenvalues vs ours / λ₁ |\n|---|---:|---:|---:|---:|")
        for name, sec, cols, res, gap in solver_rows:
            print(f"| {name} | {sec:.0f} | {cols:,} | {res:.1e} | {gap:.1e} |")
    if args.gensim:
        wall, ours, gwall, theirs = gensim_row
        print(f"\n| method | wall s | analogy | MEN | WS353 |\n|---|---:|---:|---:|---:|")
        for name, s, r in (("svd(M*), sparse", wall, ours),
                           ("word2vec (gensim)", gwall, theirs)):
            print(f"| {name} | {s:.0f} | {r['analogy_paper']['accuracy']:.3f} | "
                  f"{r['men']['spearman']:.3f} | {r['ws353']['spearman']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
