"""Sharded counting on a Dask cluster against one process, in one run.

The corpus file is split into N shards (``qwem shard``).  Then ``qwem embed`` (M*,
window 16, V and d as given) runs over the folder of shards

1. in one process, using both cores (``qwem embed --corpus DIR``);
2. on a cluster started with Dask's own commands: ``dask scheduler`` and ``dask
   worker --nthreads 1`` processes (two by default), ``qwem embed --corpus DIR
   --cluster ADDRESS``;
3. with ``--kill``: on three such workers, one of which is sent SIGKILL while it
   holds shards in flight (its nanny starts a new one; Dask reruns its tasks);
4. with ``--separate-caches``: on workers that each run in their own working
   directory with their own ``QWEM_CACHE`` (as on machines that share only the
   corpus's file system), once with pass 2 sent to the worker that read each shard
   in pass 1 (the default) and once without (``QWEM_SHARD_LOCALITY=0``), so that
   the time pass 2 ("count") takes with and without locality can be compared.

Every run starts with an empty cache (the client's and the workers'), so each reads
and tokenises the corpus.  It prints each run's wall time (of ``qwem embed``; the
cluster is started before), its stage times, the peak memory of the client and of
each worker process (their VmHWM, asked from the workers), and checks that every run
gives the same vocabulary and eigenvalues as the one-process run (to 1e-6 relative).
With ``--parts 8,16`` the cluster runs once for each number of shards, to show that
a worker's peak memory does not grow with it.

    python bench/cluster.py                      # enwiki2015, 8 shards, ~8 min
    python bench/cluster.py --parts 8,16 --kill  # the issue's three targets
    python bench/cluster.py --corpus sample --vocab-size 2000 --dim 50   # a minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _machine import machine  # bench/_machine.py (the script's folder is on sys.path)

BIN = Path(sys.executable).parent


def shard(corpus: str, parts: int, work: Path) -> Path:
    """The corpus split into ``parts`` files (reused when already there)."""
    from qwem_lib.corpus.data import resolve_corpus

    out = work / f"shards-{Path(corpus).name}-{parts}"   # one folder per corpus
    if out.is_dir() and len(list(out.iterdir())) == parts:
        print(f"reusing the {parts} shards in {out}")
        return out
    path, _ = resolve_corpus(corpus, download=False)
    t0 = time.perf_counter()
    subprocess.run([BIN / "qwem", "shard", str(path), "--parts", str(parts),
                    "--out", str(out), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"qwem shard {path.name} --parts {parts}: {time.perf_counter() - t0:.1f} s, "
          f"{size / 1e6:.1f} MB of gzip")
    return out


def embed(folder: Path, args, out: Path, cache: Path, cluster: str | None = None,
          on_start=None, env_extra: dict | None = None) -> dict:
    """``qwem embed`` over the shards in a fresh process; its timings and wall."""
    cmd = [BIN / "qwem", "embed", "--corpus", str(folder), "--vocab-size",
           str(args.vocab_size), "--dim", str(args.dim), "--out", str(out),
           "--timings", str(out.with_suffix(".json")), "--quiet"]
    if cluster:
        cmd += ["--cluster", cluster]
    env = dict(os.environ, QWEM_CACHE=str(cache), **(env_extra or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    if on_start is not None:
        on_start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"qwem embed failed ({proc.returncode}):\n{err}")
    report = json.loads(out.with_suffix(".json").read_text())
    report["wall"] = wall
    with open(out) as fh:
        fh.readline()
        report["words"] = [line.split(" ", 1)[0] for line in fh]
    return report


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes, as a user starts them."""

    def __init__(self, n_workers: int, work: Path, cache: Path,
                 separate: bool = False):
        """``separate``: each worker in its own folder ``cache/wI``, which is its
        working directory and its QWEM_CACHE; else one shared cache."""
        self.file = work / f"scheduler-{os.getpid()}-{time.monotonic_ns()}.json"
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs = [subprocess.Popen(
            [BIN / "dask", "scheduler", "--scheduler-file", str(self.file),
             "--port", "0", "--no-dashboard"], **quiet)]
        while not self.file.exists():
            time.sleep(0.1)
        self.address = json.loads(self.file.read_text())["address"]
        for i in range(n_workers):
            own = cache / f"w{i}" if separate else cache
            own.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, QWEM_CACHE=str(own))
            self.procs.append(subprocess.Popen(
                [BIN / "dask", "worker", self.address, "--nthreads", "1",
                 "--no-dashboard", "--memory-limit", "0"], env=env,
                cwd=own if separate else None, **quiet))
        from distributed import Client

        self.client = Client(self.address, timeout=60)
        self.client.wait_for_workers(n_workers, timeout=120)

    def peaks(self) -> list[float]:
        from qwem_lib.runtime.memory import peak_rss_bytes

        return sorted(v / 1e9 for v in self.client.run(peak_rss_bytes).values())

    def warm_up(self) -> float:
        """Run the counting kernels once on every worker (imports and compilation
        count in a process's peak) and return the largest worker peak then, GB: the
        baseline of the memory bound (:func:`memory_bound`)."""
        return max(v / 1e9 for v in self.client.run(_warm_up).values())

    def kill_a_busy_worker(self, after: float, killed: list) -> None:
        """SIGKILL one worker process that has tasks, ``after`` seconds in."""
        time.sleep(after)
        pids = self.client.run(os.getpid)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = [a for a, tasks in self.client.processing().items()
                    if tasks and a in pids]
            if busy:
                n = len(self.client.processing()[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append((busy[0], n, time.monotonic()))
                return
            time.sleep(0.05)

    def close(self) -> None:
        self.client.close()
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.file.unlink(missing_ok=True)


def _warm_up() -> int:
    """On a worker: qwem_lib's shard tasks' modules imported and the counting
    kernels run once on a few tokens; this process's peak RSS then, bytes."""
    import qwem_lib.corpus  # noqa: F401  (what pass 1 imports)
    import qwem_lib.corpus.shards  # noqa: F401
    from qwem_lib.corpus import cooccurrence
    from qwem_lib.runtime.memory import peak_rss_bytes

    ids = np.random.default_rng(0).integers(0, 50, 20_000).astype(np.int32)
    counts = cooccurrence.count_pairs_sparse(ids, 50, 16)
    cooccurrence.add_counts(counts, counts)
    return peak_rss_bytes()


def largest_shard_tokens(folder: Path) -> int:
    """Words in the largest shard (by size), counted here: an upper bound on the
    in-vocabulary tokens of any shard's task."""
    import gzip

    biggest = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    opener = gzip.open if biggest.suffix == ".gz" else open
    with opener(biggest, "rb") as fh:
        return sum(len(line.split()) for line in fh)


def distinct_pairs(folder: Path, args) -> int:
    """Distinct pairs (upper triangle, diagonal included) of the whole corpus's
    window counts, counted here in one process."""
    import scipy.sparse

    from qwem_lib.corpus.shards import count_corpus
    from qwem_lib.pipeline import EmbedConfig

    cfg = EmbedConfig(corpus=str(folder), vocab_size=args.vocab_size,
                      embed_dim=args.dim)
    _, counts = count_corpus(cfg, progress=False, cache=False)
    return int(scipy.sparse.triu(counts).nnz)


def memory_bound(baseline_gb: float, shard_tokens: int, upper: int) -> float:
    """README's per-worker bound, GB: a warmed-up worker (``baseline_gb``) plus 12
    bytes per token of the largest shard and 48 bytes per distinct pair of the
    whole corpus's upper triangle (``upper``).  A pass-2 task holds the shard's
    tokens and the counter's buffers (12 bytes per token), the shard's symmetric
    counts (24 bytes per distinct pair of its upper triangle) and their upper
    triangle (12), beside the partial sum the worker keeps (12 per pair of the
    corpus); an addition of two partial sums holds both, the one received and the
    result (48 at most).  A shard's pairs are at most the corpus's."""
    return baseline_gb + (12 * shard_tokens + 48 * upper) / 1e9


def compare(base: dict, run: dict) -> str:
    same_words = base["words"] == run["words"]
    a, b = np.array(base["eigvals"]), np.array(run["eigvals"])
    rel = float(np.max(np.abs(a - b) / np.abs(a)))
    ok = same_words and rel <= 1e-6
    return (f"vocabulary {'same' if same_words else 'DIFFERENT'}, eigenvalues "
            f"max rel diff {rel:.1e} -> {'OK' if ok else 'FAIL'}"), ok


def stages(report: dict, cores: int) -> str:
    """Stage seconds, and each pass's tokens per second per core."""
    st = report["stages"]
    rate = {k: report["n_tokens"] / (st[k] * cores) / 1e6 for k in
            ("read+tokenise", "count") if st.get(k)}
    return (", ".join(f"{k} {v:.1f}" for k, v in st.items())
            + f" s; {report['n_tokens'] / 1e6:.1f}M tokens, per core: pass 1 "
            f"{rate.get('read+tokenise', 0):.2f}M/s, pass 2 {rate.get('count', 0):.2f}M/s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="enwiki2015")
    p.add_argument("--parts", default="8", help="shard counts, e.g. 8 or 8,16")
    p.add_argument("--vocab-size", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kill", action="store_true",
                   help="also run on 3 workers and SIGKILL one mid-run")
    p.add_argument("--kill-after", type=float, default=15.0,
                   help="seconds into the run at which a busy worker is killed")
    p.add_argument("--separate-caches", action="store_true",
                   help="also run on workers with their own folders and caches, "
                   "with and without pass-2 locality")
    p.add_argument("--work", type=Path, help="folder for shards (kept) and outputs")
    args = p.parse_args()
    parts = [int(x) for x in args.parts.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="qwem-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine("numpy", "torch", "dask", "distributed"))
    print(f"corpus {args.corpus}, V = {args.vocab_size:,}, d = {args.dim}; "
          f"work folder {work}\n")

    def fresh(name: str) -> Path:
        path = work / "caches" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    ok = True
    rows = []
    baselines: list = []   # a warmed-up worker's peak, GB, per cluster started
    bounds: dict = {}      # shards -> (largest shard's words, distinct pairs)
    for n in parts:
        folder = shard(args.corpus, n, work)
        base = embed(folder, args, work / f"one-{n}.txt", fresh("one"))
        bounds[str(n)] = (largest_shard_tokens(folder),
                          distinct_pairs(folder, args))
        rows.append((f"{n} shards, one process", base, None, ""))
        cluster = Cluster(args.workers, work, fresh("workers"))
        try:
            baselines.append(cluster.warm_up())
            run = embed(folder, args, work / f"dask-{n}.txt", fresh("client"),
                        cluster.address)
            peaks = cluster.peaks()
        finally:
            cluster.close()
        text, good = compare(base, run)
        ok &= good
        rows.append((f"{n} shards, {args.workers} workers x 1 thread", run, peaks,
                     text))
        if args.separate_caches and n == parts[0]:
            for label, extra in (("locality", {}),
                                 ("no locality", {"QWEM_SHARD_LOCALITY": "0"})):
                cluster = Cluster(args.workers, work, fresh("workers"), separate=True)
                try:
                    baselines.append(cluster.warm_up())
                    run = embed(folder, args, work / f"sep-{n}.txt", fresh("client"),
                                cluster.address, env_extra=extra)
                    peaks = cluster.peaks()
                finally:
                    cluster.close()
                text, good = compare(base, run)
                ok &= good
                text += f"; pass 2 (count) {run['stages'].get('count', 0):.1f} s"
                rows.append((f"{n} shards, own caches, {label}", run, peaks, text))
        if args.kill and n == parts[0]:
            cluster = Cluster(3, work, fresh("workers"))
            killed: list = []
            try:
                baselines.append(cluster.warm_up())
                killer = threading.Thread(target=cluster.kill_a_busy_worker,
                                          args=(args.kill_after, killed))
                run = embed(folder, args, work / f"kill-{n}.txt", fresh("client"),
                            cluster.address, on_start=killer.start)
                killer.join()
                peaks = cluster.peaks()
            finally:
                cluster.close()
            text, good = compare(base, run)
            if not killed:
                text, good = "no worker was killed (the run ended first)", False
            else:
                text = f"killed {killed[0][0]} ({killed[0][1]} tasks); " + text
            ok &= good
            rows.append((f"{n} shards, 3 workers, one SIGKILLed", run, peaks, text))

    print(f"\n{'run':42s} {'wall s':>7s} {'ratio':>6s} {'client GB':>9s} "
          f"{'worker peaks GB':>18s}")
    base_wall = {}
    for name, rep, peaks, _ in rows:
        n = name.split()[0]
        base_wall.setdefault(n, rep["wall"])
        peak = ", ".join(f"{x:.2f}" for x in peaks) if peaks else "-"
        print(f"{name:42s} {rep['wall']:7.1f} {rep['wall'] / base_wall[n]:6.2f} "
              f"{rep['peak_rss_bytes'] / 1e9:9.2f} {peak:>18s}")
    print()
    cores = os.cpu_count() or 1
    for name, rep, peaks, text in rows:
        print(f"{name}: {stages(rep, min(len(peaks), cores) if peaks else cores)}")
        if text:
            print(f"    {text}")
    within = True
    if baselines:
        print(f"\nmemory bound per worker (README): a warmed-up worker "
              f"({max(baselines):.2f} GB at most) + 12 B per token of the largest "
              f"shard + 48 B per distinct pair of the corpus (upper triangle)")
        for name, _, peaks, _ in rows:
            n = name.split()[0]
            if not peaks or n not in bounds:
                continue
            tokens, pairs = bounds[n]
            bound = memory_bound(max(baselines), tokens, pairs)
            good = max(peaks) <= bound
            within &= good
            print(f"  {name}: largest shard {tokens / 1e6:.1f}M words, "
                  f"{pairs / 1e6:.1f}M distinct pairs; bound {bound:.3f} GB, "
                  f"peak {max(peaks):.3f} GB -> {'within' if good else 'EXCEEDED'}")
    print("\nall runs agree" if ok else "\nSOME RUNS DISAGREE")
    if not within:
        print("A WORKER EXCEEDED THE STATED MEMORY BOUND")
    return 0 if ok and within else 1


if __name__ == "__main__":
    sys.exit(main())
