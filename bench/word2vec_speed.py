"""Our word2vec (``qwem train``, the compiled CPU kernel) against gensim's, in one run.

Both train skip-gram with negative sampling on the same token stream and vocabulary
with the same settings (defaults: ``wiki2015-text8``, V = 10,000, d = 200, window
10, k = 5, sample 1e-4, 5 epochs, untied, 2 threads each), one after the other:

- **ours**: the whole ``qwem train --loss sgns --reweight word2vec --untied ...``
  command, run as a subprocess and timed from outside (start-up, imports, reading
  the cached tokens, training, writing the vectors); the token cache is warmed
  first, so tokenising the corpus is not counted.  Its own log gives the seconds of
  the training alone.
- **gensim**: ``Word2Vec(sg=1, hs=0)`` with ``build_vocab_from_freq`` on our counts,
  fed our in-vocabulary token stream as 10,000-word sentences
  (:func:`qwem_lib.compare.gensim_sentences`); only its ``train()`` call is timed.

Words/s = in-vocabulary tokens × epochs / seconds (tokens read before subsampling,
as word2vec counts them), for both.  Each result is evaluated with the paper's
analogy protocol and the MEN and WS353 similarity sets.  It exits with status 1
unless our whole command is no slower than gensim's ``train()`` and our analogy
accuracy and MEN correlation are within 1.5 points and 0.015 of gensim's.

Usage::

    . .venv/bin/activate
    python bench/word2vec_speed.py                   # ~10 min on 2 cores
    python bench/word2vec_speed.py --pair-negatives  # also word2vec.c's negatives
    python bench/word2vec_speed.py --corpus sample --epochs 1   # a quick look

Run it on an otherwise idle machine: both programs use every core they are given.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    try:
        return "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load n/a"


def machine() -> str:
    import gensim
    import numba
    import numpy
    import torch
    return (f"{_cpu_model()}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}, numpy {numpy.__version__}, numba "
            f"{numba.__version__}, torch {torch.__version__}, gensim "
            f"{gensim.__version__}")


def ours(args, n_tokens: int, pair_negatives: bool) -> dict:
    """The whole ``qwem train`` command, timed from outside."""
    qwem = Path(sys.executable).with_name("qwem")
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(qwem), "train", "--corpus", args.corpus, "--vocab-size",
               str(args.vocab_size), "--dim", str(args.dim), "--window",
               str(args.window), "--loss", "sgns", "--reweight", "word2vec",
               "--untied", "--negatives", str(args.negatives), "--subsample",
               str(args.subsample), "--epochs", str(args.epochs), "--threads",
               str(args.threads), "--device", "cpu", "--quiet", "--out", out]
        if pair_negatives:
            cmd.append("--pair-negatives")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"qwem train failed:\n{proc.stderr}")
        m = re.search(r"train\s+([\d.]+) s", proc.stderr)
        from qwem_lib.vectors import load_word2vec
        words, W = load_word2vec(Path(out) / "embeddings.txt")
    return dict(seconds=seconds, train_seconds=float(m.group(1)) if m else None,
                words=words, W=W)


def gensim_train(args, ids, vocab_words) -> dict:
    """gensim's Word2Vec on our stream; only ``train()`` is timed."""
    import numpy as np
    from gensim.models import Word2Vec

    from qwem_lib.compare import gensim_sentences
    from qwem_lib.kernels.sgns_cpu import MIN_LR_RATIO

    counts = np.bincount(ids, minlength=len(vocab_words))
    sentences = gensim_sentences(ids, vocab_words)
    model = Word2Vec(vector_size=args.dim, window=args.window,
                     negative=args.negatives, ns_exponent=0.75,
                     sample=args.subsample, alpha=0.025,
                     min_alpha=0.025 * MIN_LR_RATIO, sg=1, hs=0, min_count=1,
                     workers=args.threads, seed=1)
    model.build_vocab_from_freq(dict(zip(vocab_words, counts.tolist())))
    t0 = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), total_words=int(len(ids)),
                epochs=args.epochs)
    seconds = time.perf_counter() - t0
    order = [model.wv.key_to_index[w] for w in vocab_words]
    return dict(seconds=seconds, train_seconds=seconds, words=list(vocab_words),
                W=np.asarray(model.wv.vectors, dtype=np.float64)[order])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="wiki2015-text8")
    p.add_argument("--vocab-size", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=200)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--subsample", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2,
                   help="threads of each (gensim's workers)")
    p.add_argument("--pair-negatives", action="store_true",
                   help="also run ours with k negatives per pair (word2vec.c)")
    args = p.parse_args(argv)

    if "QWEM_DATA" not in os.environ:  # the shared data folder beside the repository
        shared = Path(__file__).resolve().parents[2] / "shared" / "data"
        if shared.is_dir():
            os.environ["QWEM_DATA"] = str(shared)

    import numpy as np

    from qwem_lib import evaluate
    from qwem_lib.corpus import load_tokens

    print(machine())
    print(f"corpus {args.corpus}, V = {args.vocab_size:,}, d = {args.dim}, window "
          f"{args.window}, k = {args.negatives}, sample {args.subsample:g}, "
          f"{args.epochs} epochs, untied, {args.threads} threads each")
    tokens = load_tokens(args.corpus, args.vocab_size, progress=False)  # warm cache
    ids = np.asarray(tokens.ids)
    words = list(tokens.vocab.words)
    n_words = len(ids) * args.epochs
    print(f"{len(ids):,} tokens in the vocabulary; {n_words:,} words to read\n")

    jobs = [("ours (qwem train)", lambda: ours(args, len(ids), False))]
    if args.pair_negatives:
        jobs.append(("ours, pair negatives", lambda: ours(args, len(ids), True)))
    jobs.append(("gensim (train())", lambda: gensim_train(args, ids, words)))
    rows = {}
    for name, job in jobs:
        print(f"[{time.strftime('%H:%M:%S')}] {name} ... ({load()})", flush=True)
        r = job()
        r["analogy"] = evaluate.analogy_paper(r["W"], r["words"]).accuracy
        r["men"] = evaluate.similarity(r["W"], r["words"], "men").spearman
        r["ws353"] = evaluate.similarity(r["W"], r["words"], "ws353").spearman
        rows[name] = r
        print(f"    {r['seconds']:7.1f} s, analogy {r['analogy']:.3f}", flush=True)
    print(f"[{time.strftime('%H:%M:%S')}] done ({load()})\n")

    print(f"{'run':<24}{'wall s':>8}{'train s':>9}{'words/s':>11}{'analogy':>9}"
          f"{'MEN':>7}{'WS353':>7}")
    for name, r in rows.items():
        print(f"{name:<24}{r['seconds']:8.1f}{r['train_seconds']:9.1f}"
              f"{n_words / r['train_seconds']:11,.0f}{r['analogy']:9.3f}"
              f"{r['men']:7.3f}{r['ws353']:7.3f}")
    print("(words/s from the training seconds; ours' wall time is the whole "
          "command)\n")
    ref, mine = rows["gensim (train())"], rows["ours (qwem train)"]
    faster = mine["seconds"] <= ref["seconds"]
    d_acc, d_men = mine["analogy"] - ref["analogy"], mine["men"] - ref["men"]
    print(f"whole qwem train / gensim train(): {mine['seconds'] / ref['seconds']:.3f}"
          f" -> {'met' if faster else 'not met'} (<= 1)")
    print(f"analogy ours - gensim {d_acc:+.4f}, MEN {d_men:+.4f}, WS353 "
          f"{mine['ws353'] - ref['ws353']:+.4f} -> "
          f"{'met' if abs(d_acc) <= 0.015 and abs(d_men) <= 0.015 else 'not met'}"
          " (|analogy| <= 0.015, |MEN| <= 0.015)")
    ok = faster and abs(d_acc) <= 0.015 and abs(d_men) <= 0.015
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
