"""Speed (and, optionally, quality) of our streaming word2vec, qwem_lib.word2vec.

Trains skip-gram with negative sampling on a corpus and prints the words read per
second (raw in-vocabulary tokens, subsampled ones included, as word2vec counts them)
by wall clock and per CPU-second of this process (the fairer figure on a shared
machine), plus the machine and its load.  With ``--evaluate`` it also prints the
analogy accuracy (paper's protocol) and the MEN / WS353 Spearman correlations.

Usage::

    . .venv/bin/activate
    python bench/sgns_speed.py                                  # bundled sample
    QWEM_DATA=../shared/data python bench/sgns_speed.py \\
        --corpus wiki2015-text8 --fraction 0.1                  # a tenth of an epoch
    python bench/sgns_speed.py --batch-size 256 --untied --evaluate

Options: ``--corpus`` (name or path, default ``sample``), ``--vocab-size`` (10000),
``--dim`` (200), ``--window`` (10), ``--negatives`` (5), ``--subsample`` (1e-4),
``--epochs`` (1), ``--lr`` (0.025), ``--batch-size`` (the config's default),
``--untied``, ``--no-step-cap``, ``--init-scale``, ``--fraction`` (train on the
first fraction of the token stream), ``--threads`` (torch threads, default 1),
``--device`` (cpu), ``--evaluate``, ``--seed``, ``--progress``.

Results
-------
Measured 2026-11-22 on 2 cores (Intel Xeon, AVX2/FMA), torch 2.13.0+cpu with one
thread, while other jobs kept the load average at 3-8: wall-clock figures are
roughly halved by the sharing, so compare the per-CPU-second column (itself a few
tens of per cent lower under load).  Corpus ``wiki2015-text8`` (15.3M
in-vocabulary tokens), V = 10,000, d = 200, L = 10, k = 5, t = 1e-4, lr = 0.025,
one epoch; analogy = paper's protocol (5,908 analogies in this vocabulary); gensim
4.4.0 ``Word2Vec(sg=1)`` with the same settings on the same token stream
(10,000-token sentences) as the reference.  "plain" is ``step_cap=False``.

===============================  ========  ===========  =======  =====  =====
run                              words/s   words/CPU-s  analogy  MEN    WS353
===============================  ========  ===========  =======  =====  =====
ours, untied, plain, batch 32      32,000       61,000    0.295  .659   .645
ours, untied, plain, batch 64      52,000       81,000    0.298  .660   .640
ours, untied, plain, batch 128     60,000       80,000    0.031  .204   .229
ours, untied, plain, batch 256     60,000       89,000    0.011  .234   .194
ours, untied, plain, batch 1024    NaN at step 203
ours, untied, step cap, batch 64   35,000       40,000    0.302  .662   .648
ours, untied, step cap, batch 256  31,000       47,000    0.279  .657   .634
ours, tied, plain, batch 64        64,000       89,000    0.270  .686   .675
ours, tied, plain, batch 256      136,000      138,000    0.262  .687   .672
gensim, 2 workers                  74,000       76,000    0.298  .642   .624
gensim, 1 worker                   72,000       85,000    0.289  .644   .621
===============================  ========  ===========  =======  =====  =====

Plain batches of 128 and more blow up for untied weights, and with 5 epochs so
does batch 64 (loss per pair 9.7 at step 95,232, 0.8 epochs): frequent negatives
get one summed, overshooting step (module docstring of ``qwem_lib.word2vec``).
``train_word2vec`` stops such runs with an error; the default ``step_cap=True``
prevents them (the 5-epoch run at batch 64 went on stably past 1.2 epochs, loss per
pair 2.62; it was not run to the end).  The cap costs ~2.5x a plain step's CPU
time once the vectors are large enough for it to act.  On the bundled ``sample``
(1.8M tokens, V = 10,000, d = 200, plain batch 64): 88,000 words per CPU-second
tied, 95,000 untied.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None) -> int:
    from qwem_lib.corpus import load_tokens
    from qwem_lib.errors import QwemError
    from qwem_lib.word2vec import Word2VecConfig, train_word2vec

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="sample")
    p.add_argument("--vocab-size", type=int, default=10000)
    p.add_argument("--dim", type=int, default=200)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--subsample", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--untied", action="store_true")
    p.add_argument("--no-step-cap", action="store_true",
                   help="plain summed SGD (Word2VecConfig.step_cap=False)")
    p.add_argument("--init-scale", type=float, default=None)
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--evaluate", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    try:
        tokens = load_tokens(a.corpus, a.vocab_size, progress=False)
        ids = tokens.ids
        if not 0 < a.fraction <= 1:
            raise QwemError(f"--fraction must be in (0, 1], got {a.fraction}")
        ids = ids[: max(2, int(round(a.fraction * len(ids))))]
        V = len(tokens.vocab)
        extra = {} if a.batch_size is None else {"batch_size": a.batch_size}
        cfg = Word2VecConfig(embed_dim=a.dim, window=a.window, negatives=a.negatives,
                             subsample=a.subsample, epochs=a.epochs, lr=a.lr,
                             tied=not a.untied, init_scale=a.init_scale, seed=a.seed,
                             step_cap=not a.no_step_cap, **extra)
        # A prefix of the stream may miss rare words; train_word2vec insists that
        # every id occurs, so renumber the ones that do.
        present = np.bincount(ids, minlength=V) > 0
        if not present.all():
            keep = np.flatnonzero(present)
            remap = np.full(V, -1, np.int64)
            remap[keep] = np.arange(len(keep))
            ids = remap[ids].astype(np.int32)
            words = [tokens.vocab.words[i] for i in keep]
        else:
            words = list(tokens.vocab.words)
        load0 = _load()
        t0, c0 = time.perf_counter(), time.process_time()
        res = train_word2vec(cfg, ids, len(words), device=a.device,
                             progress=a.progress, n_checkpoints=1)
        if a.device != "cpu" and torch.cuda.is_available():
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        load1 = _load()
    except QwemError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    n_words = len(ids) * cfg.epochs
    print(f"machine      {_cpu_model()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} with {torch.get_num_threads()} thread(s), "
          f"device {a.device}")
    print(f"load average {load0} (before)  {load1} (after)")
    print(f"corpus       {a.corpus}: {len(ids):,} tokens x {cfg.epochs} epoch(s), "
          f"V = {len(words):,}")
    print(f"config       d={cfg.embed_dim} L={cfg.window} k={cfg.negatives} "
          f"t={cfg.subsample:g} lr={cfg.lr:g} batch={cfg.batch_size} "
          f"{'tied' if cfg.tied else 'untied'} "
          f"{'step cap' if cfg.step_cap else 'plain SGD'}")
    print(f"time         {wall:.1f} s wall, {cpu:.1f} s CPU, {res.steps:,} steps")
    print(f"speed        {n_words / wall:,.0f} words/s (wall), "
          f"{n_words / cpu:,.0f} words per CPU-second")
    print(f"loss         {res.history.loss[0]:.4f} -> {res.history.loss[-1]:.4f} "
          f"(per positive pair, fixed evaluation sample); flow time "
          f"{res.history.t[-1]:.4g}")
    if a.evaluate:
        from qwem_lib.evaluate import analogy_paper, similarity
        acc = analogy_paper(res.W, words, device=a.device)
        men = similarity(res.W, words, "men")
        ws = similarity(res.W, words, "ws353")
        print(f"analogy      {acc.accuracy:.4f} ({acc.correct}/{acc.n}, paper's "
              f"protocol)")
        print(f"similarity   MEN {men.spearman:.3f} (n={men.n}), WS353 "
              f"{ws.spearman:.3f} (n={ws.n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
