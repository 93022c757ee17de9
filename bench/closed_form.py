"""Time ``qwem embed --method mstar`` against a straightforward baseline.

Both pipelines build the closed-form QWEM embedding W = V_d Λ_d^{1/2} of M*
(arXiv 2502.09863, Thm. 1) from the same corpus, at the paper's V = 10,000, d = 200 and
window of 16 words with weights 17 - s (paper's setup).  Each runs as its own
subprocess, ours with an empty ``QWEM_CACHE`` so nothing is reused.  The script prints
the seconds per stage each pipeline reports, the wall time and peak memory of each
whole command measured from outside, the speed-up, and checks that the two results
agree (same vocabulary, same top-d spectrum, same d-dimensional subspace).  It exits
non-zero when a pipeline fails or the results disagree.

Usage::

    python bench/closed_form.py                  # both pipelines, default corpus
    python bench/closed_form.py --skip-baseline  # ours only
    python bench/closed_form.py --keep out/      # keep the vectors and timings
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qwem_lib.vectors import load_word2vec

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "wiki2015_text8style_1e8.txt.bz2"
EIG_TOL = 1e-4  # max relative difference of the top-d eigenvalues
OVERLAP_TOL = 0.99  # min mean squared cosine of the principal angles


def resolve_corpus(arg: str | None) -> Path:
    """A corpus path: ``arg`` if it is a file, else ``arg`` (or the default name)
    looked up in ``$QWEM_DATA`` and then in ``../shared/data`` next to the repo."""
    if arg and Path(arg).is_file():
        return Path(arg).resolve()
    name = arg or CORPUS
    dirs = [Path(os.environ["QWEM_DATA"])] if os.environ.get("QWEM_DATA") else []
    dirs.append(ROOT.parent / "shared" / "data")
    for d in dirs:
        if (d / name).is_file():
            return (d / name).resolve()
    sys.exit(f"closed_form.py: corpus {name!r} not found (looked in "
             f"{', '.join(map(str, dirs))}); pass --corpus PATH or set QWEM_DATA.")


def qwem_command() -> str:
    """The ``qwem`` console script of this interpreter's environment."""
    here = Path(sys.executable).parent / "qwem"
    found = str(here) if here.is_file() else shutil.which("qwem")
    if not found:
        sys.exit("closed_form.py: the `qwem` command is not installed; "
                 "run `pip install -e .` in the repository root.")
    return found


def run(cmd: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """Run ``cmd``; return (exit code, wall seconds, peak RSS in bytes).

    Peak memory: ``os.wait4`` returns the resource usage of exactly this child, and on
    Linux its ``ru_maxrss`` is the largest resident set of the child or of any
    descendant it waited for (the kernel folds reaped children into the parent's
    ``cmaxrss``).  ``getrusage(RUSAGE_CHILDREN)`` in this process would instead be a
    running maximum over every child so far, so the second pipeline could inherit the
    first one's peak.  Threads share the process's RSS, so they are covered.
    """
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped
    return proc.returncode, wall, usage.ru_maxrss * 1024.0  # KiB on Linux


def machine_info() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    mem = "?"
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        pass
    import scipy
    import torch
    try:
        import numba
        nb = numba.__version__
    except ImportError:
        nb = "not installed"
    return [
        f"cpu      {model}",
        f"cores    {os.cpu_count()} ({usable} usable), memory {mem}",
        f"threads  torch {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"software python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, torch {torch.__version__}, numba {nb}",
    ]


def load_avg() -> str:
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def read_timings(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {"stages": dict(data.get("stages", {})), "total": float(data["total"])}


def print_table(res: dict[str, dict]) -> None:
    """Stage rows (ours' order, then stages only the baseline has) and totals."""
    names = list(res)
    stages: list[str] = []
    for r in res.values():
        stages += [s for s in r["timings"]["stages"] if s not in stages]
    w = max([len(s) for s in stages] + [28])
    print(f"{'stage (s)':<{w}}" + "".join(f"{n:>12}" for n in names))

    def row(label: str, values: list[float | None], fmt: str = "{:12.2f}") -> None:
        cells = ["{:>12}".format("-") if v is None else fmt.format(v) for v in values]
        print(f"{label:<{w}}" + "".join(cells))

    for s in stages:
        row("  " + s, [res[n]["timings"]["stages"].get(s) for n in names])
    row("  sum of stages (reported)", [res[n]["timings"]["total"] for n in names])
    row("  startup, imports, rest",
        [res[n]["wall"] - res[n]["timings"]["total"] for n in names])
    row("wall time of the command", [res[n]["wall"] for n in names])
    row("peak RSS (GB)", [res[n]["rss"] / 1e9 for n in names])
    if len(names) == 2:
        a, b = (res[n] for n in names)
        print(f"speed-up (baseline / ours): {b['wall'] / a['wall']:.2f}x wall time, "
              f"{b['timings']['total'] / a['timings']['total']:.2f}x reported total")


def orthonormal_basis(W: np.ndarray) -> np.ndarray:
    return np.linalg.qr(W)[0]


def agreement(ours: Path, base: Path, dim: int) -> bool:
    """Compare the two embeddings; print the figures; True if they agree."""
    words_o, W_o = load_word2vec(ours)
    words_b, W_b = load_word2vec(base)
    ok = True
    print("\nagreement (ours vs baseline)")
    if words_o == words_b:
        print(f"  (a) vocabularies identical ({len(words_o)} words, same order)")
    elif sorted(words_o) == sorted(words_b):
        print("  (a) same words but in a different order: FAIL (rows realigned "
              "for the checks below)")
        row = {w: i for i, w in enumerate(words_o)}
        W_o = W_o[[row[w] for w in words_b]]
        ok = False
    else:
        only_o = sorted(set(words_o) - set(words_b))
        only_b = sorted(set(words_b) - set(words_o))
        print(f"  (a) vocabularies differ: FAIL; {len(only_o)} words only in ours "
              f"(e.g. {only_o[:5]}), {len(only_b)} only in the baseline "
              f"(e.g. {only_b[:5]})")
        return False
    if W_o.shape != W_b.shape or W_o.shape[1] != dim:
        print(f"  shapes differ: ours {W_o.shape}, baseline {W_b.shape}: FAIL")
        return False

    # (b) The baseline's columns are sqrt(λ_k) v_k, so their squared norms are its
    # eigenvalues.  Ours should have the same squared column norms; sorting makes the
    # check blind to column order, which is reported separately.
    norms_o = (W_o**2).sum(axis=0)
    lam = np.sort((W_b**2).sum(axis=0))[::-1]
    rel = np.abs(np.sort(norms_o)[::-1] - lam) / np.abs(lam)
    good = rel.max() <= EIG_TOL
    ok &= good
    desc = bool(np.all(np.diff(norms_o) <= 0))
    print(f"  (b) squared column norms vs baseline eigenvalues: max rel. diff "
          f"{rel.max():.2e} (tolerance {EIG_TOL:g}) {'ok' if good else 'FAIL'}")
    print(f"      worst at k = {rel.argmax() + 1}; lambda_1 = {lam[0]:.6g}, "
          f"lambda_{dim} = {lam[-1]:.6g}")
    print(f"      ours' columns {'are' if desc else 'are NOT'} in descending order")
    # Rotation-invariant version: the eigenvalues of W^T W (= σ_k²).
    s_o = np.sort(np.linalg.eigvalsh(W_o.T @ W_o))[::-1]
    s_b = np.sort(np.linalg.eigvalsh(W_b.T @ W_b))[::-1]
    print(f"      singular values squared (rotation-invariant): max rel. diff "
          f"{(np.abs(s_o - s_b) / np.abs(s_b)).max():.2e}")

    # (c) Columns may differ in sign, or be rotated within clusters of (nearly) equal
    # eigenvalues, so compare the column spaces: ||U_oᵀ U_b||_F² / d is the mean
    # squared cosine of the d principal angles (1 = same subspace).
    G = orthonormal_basis(W_o).T @ orthonormal_basis(W_b)
    overlap = float((G**2).sum() / dim)
    cos2 = np.linalg.svd(G, compute_uv=False) ** 2
    good = overlap >= OVERLAP_TOL
    ok &= good
    print(f"  (c) subspace overlap ||U_oᵀU_b||_F²/d = {overlap:.6f}, 1 - overlap = "
          f"{1 - overlap:.1e} (tolerance {OVERLAP_TOL}) {'ok' if good else 'FAIL'}")
    print(f"      1 - smallest squared cosine of a principal angle: "
          f"{1 - cos2.min():.1e}")
    # Column by column (informative only: columns of close eigenvalues may mix).
    cos = np.abs((W_o * W_b).sum(axis=0)) / (
        np.linalg.norm(W_o, axis=0) * np.linalg.norm(W_b, axis=0))
    k = int(cos.argmin())
    print(f"      matched columns: 1 - min_k |cos(w_k, w_k')| = {1 - cos[k]:.1e} "
          f"at k = {k + 1}")
    # The Gram matrices W Wᵀ (what the loss sees, Theorem 1), compared without forming
    # V x V matrices: with [W_o, W_b] = Q [R_o, R_b], W_oW_oᵀ - W_bW_bᵀ =
    # Q (R_oR_oᵀ - R_bR_bᵀ) Qᵀ, whose Frobenius norm is that of the 2d x 2d middle.
    # (Expanding ||A - B||² into traces would cancel catastrophically.)
    R = np.linalg.qr(np.hstack([W_o, W_b]), mode="r")
    R_o, R_b = R[:, :dim], R[:, dim:]
    gram = np.linalg.norm(R_o @ R_o.T - R_b @ R_b.T) / np.linalg.norm(R_b @ R_b.T)
    print(f"      ||W_oW_oᵀ - W_bW_bᵀ||_F / ||W_bW_bᵀ||_F = {gram:.2e}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help=f"path or file name (default {CORPUS}, looked "
                    "up in $QWEM_DATA, then ../shared/data)")
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="keep the vectors, timings and cache here")
    args = ap.parse_args(argv)

    corpus = resolve_corpus(args.corpus)
    qwem = qwem_command()
    print("machine")
    for line in machine_info():
        print("  " + line)
    print(f"  before   {load_avg()}")
    print(f"corpus   {corpus} ({corpus.stat().st_size / 1e6:.1f} MB)")
    print(f"sizes    V = {args.vocab_size}, d = {args.dim}, window = {args.window} "
          f"(weights {args.window + 1} - s)\n", flush=True)

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="qwem-bench-"))
    sizes = ["--vocab-size", str(args.vocab_size), "--dim", str(args.dim),
             "--window", str(args.window)]
    jobs = {"ours": [qwem, "embed", "--corpus", str(corpus), *sizes,
                     "--method", "mstar", "--quiet"]}
    if not args.skip_baseline:
        jobs["baseline"] = [sys.executable, str(ROOT / "bench" / "baseline.py"),
                            "--corpus", str(corpus), *sizes]

    res: dict[str, dict] = {}
    try:
        for name, cmd in jobs.items():
            out, tim = work / f"{name}.txt", work / f"{name}_timings.json"
            for p in (out, tim):
                p.unlink(missing_ok=True)
            env = dict(os.environ)
            if name == "ours":  # a fresh, empty cache: measure the whole pipeline
                cache = work / "qwem_cache"
                shutil.rmtree(cache, ignore_errors=True)
                cache.mkdir()
                env["QWEM_CACHE"] = str(cache)
            rc, wall, rss = run(cmd + ["--out", str(out), "--timings", str(tim)], env)
            if rc != 0 or not out.is_file() or not tim.is_file():
                print(f"closed_form.py: {name} failed (exit code {rc})",
                      file=sys.stderr)
                return 1
            res[name] = {"wall": wall, "rss": rss, "timings": read_timings(tim),
                         "out": out}
            print(f"  {name}: {wall:.1f} s wall, peak RSS {rss / 1e9:.2f} GB; "
                  f"{load_avg()}\n", flush=True)

        print(f"after    {load_avg()}\n")
        print_table(res)
        if args.skip_baseline:
            return 0
        ok = agreement(res["ours"]["out"], res["baseline"]["out"], args.dim)
        print("\nresult: " + ("agreement ok" if ok else "AGREEMENT POOR"))
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
