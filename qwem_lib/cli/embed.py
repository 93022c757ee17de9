"""``qwem embed``: corpus -> word2vec-format embeddings, the top-d eigenvectors of M*,
PPMI or PMI scaled by sqrt(eigenvalue) (:func:`qwem_lib.pipeline.closed_form`)."""

from __future__ import annotations

import argparse
import contextlib
import time

from ..runtime.options import ENGINES, METHODS, WEIGHTINGS
from ._inputs import cluster, corpus, corpus_input
from ._parser import add_corpus_options, integer, real
from ._streams import check_sink, log


def add_parser(subparsers) -> None:
    """``qwem embed`` and its options."""
    e = subparsers.add_parser(
        "embed", help="closed-form embeddings of a corpus",
        description="Read a corpus, count windowed co-occurrences, build the target "
        "(M*, PPMI or PMI) and write its top-d eigenvectors scaled by "
        "sqrt(eigenvalue) in word2vec text format.")
    add_corpus_options(e)
    e.add_argument("--method", choices=METHODS, default="mstar")
    e.add_argument("--weighting", choices=WEIGHTINGS, default="linear",
                   help="pair weight by separation s: L+1-s (default) or 1")
    e.add_argument("--negatives", type=real, default=1.0, metavar="K",
                   help="weight k of the negative term (default 1)")
    e.add_argument("--neg-power", type=real, default=1.0, metavar="A",
                   help="negative distribution P_j^A (default 1; word2vec: 0.75)")
    e.add_argument("--subsample", type=real, default=0.0, metavar="T",
                   help="word2vec's frequent-word subsampling before counting, "
                   "threshold T (default 0: none; word2vec: 1e-4 to 1e-5)")
    e.add_argument("--subsample-draws", type=integer(), default=5, metavar="N",
                   help="subsamplings whose counts are summed (default 5)")
    e.add_argument("--weight-power", type=real, default=0.0, metavar="B",
                   help="factorise with pair weights g_i g_j, g_i ~ frequency^B "
                   "(default 0: Setting 3.1's constant weights)")
    e.add_argument("--min-article-tokens", default=0, metavar="N",
                   type=integer(0, 10**12, " (0: keep every article)"),
                   help="drop shorter articles (the paper: 500)")
    e.add_argument("--engine", choices=ENGINES, default="auto",
                   help="dense V x V statistics, or sparse counts and a matrix-free "
                   "eigensolver (memory grows with the observed pairs, not V^2); "
                   "default auto: sparse from V = 15,000 on")
    e.add_argument("--no-cache", action="store_true",
                   help="neither read nor write cached tokens and eigenpairs")
    e.add_argument("--timings", metavar="JSON", help="also write stage timings here")
    e.add_argument("--out", required=True, metavar="FILE",
                   help="output, word2vec text format")
    e.set_defaults(func=run)


def _config(args: argparse.Namespace):
    """The :class:`~qwem_lib.pipeline.EmbedConfig` of the options, validated."""
    from ..pipeline import EmbedConfig

    config = EmbedConfig(corpus=corpus(args), vocab_size=args.vocab_size,
                         embed_dim=args.dim, method=args.method,
                         context_len=args.window, weighting=args.weighting,
                         negatives=args.negatives, neg_power=args.neg_power,
                         scheme=args.scheme,
                         min_article_tokens=args.min_article_tokens,
                         subsample=args.subsample,
                         subsample_draws=args.subsample_draws,
                         weight_power=args.weight_power, engine=args.engine)
    config.validate()
    return config


def _describe(source) -> str:
    """A corpus for the first line: its name, or how many files."""
    if isinstance(source, tuple):
        return f"{len(source)} files ({source[0]}, ...)"
    return source


def run(args: argparse.Namespace) -> int:
    """Build the closed form and write it to ``--out`` (and ``--timings``)."""
    from pathlib import Path

    from ..pipeline import Stopwatch, closed_form
    from ..runtime._atomic import atomic_path, check_outputs
    from ..runtime.devices import default_device
    from ..vectors import check_words, save_word2vec

    t_start = time.perf_counter()
    config = _config(args)
    out = Path(args.out)
    outputs = [("--out", args.out), ("--timings", args.timings)]
    check_outputs(outputs, corpus_input(args, outputs))
    check_sink("--timings", args.timings)
    device = default_device(args.device)
    where = f", counted on {args.cluster}" if args.cluster else ""
    log(f"qwem embed: {config.method} of {_describe(config.corpus)}, "
        f"V={config.vocab_size}, d={config.embed_dim}, window={config.context_len}, "
        f"device={device}, {config.resolved_engine()} statistics{where}")
    watch = Stopwatch(device, echo=log)
    res = closed_form(config, device=device, progress=not args.quiet,
                      cache=not args.no_cache, watch=watch, cluster=cluster(args),
                      check_words=lambda words: check_words(words, "qwem embed"))
    if res.cached and args.cluster:
        log(f"  (read from the cache: the cluster {args.cluster} was not used)")
    # --out appears only once --timings is written too: a --timings that cannot
    # be written leaves no --out that looks complete
    with contextlib.ExitStack() as written:
        out_tmp = written.enter_context(atomic_path(out)) if args.timings else out
        with watch.stage("write"):
            save_word2vec(out_tmp, res.words, res.W)
        _report(args, config, res, watch, out, t_start)
    return 0


def _summary(config, res) -> None:
    """Tokens, eigenvalues and residuals of the result, on stderr."""
    n_neg = int((res.eigvals < 0).sum())
    log(f"  tokens: {res.n_tokens:,} read, {res.n_kept:,} in vocabulary "
        f"({res.n_kept / max(res.n_tokens, 1):.1%})")
    log(f"  eigenvalues: {float(res.eigvals[0]):.4g} ... "
        f"{float(res.eigvals[-1]):.4g}")
    lam1 = abs(float(res.eigvals[0])) or 1.0
    worst = float(res.residuals.max())
    log(f"  residuals: max ||Mv - lv|| = {worst:.3g} = {worst / lam1:.2g} x "
        "the top eigenvalue")
    if n_neg:
        log(f"  warning: {n_neg} of the top {config.embed_dim} eigenvalues are "
            "negative; those columns are zero (Theorem 1 needs them >= 0)")


def _report(args, config, res, watch, out, t_start) -> None:
    """``qwem embed``'s summary on stderr, and ``--timings``."""
    from ..runtime._atomic import write_json
    from ..runtime.memory import peak_rss_bytes

    _summary(config, res)
    total = time.perf_counter() - t_start
    peak = peak_rss_bytes()
    if peak is not None:
        log(f"  peak memory   {peak / 1e9:8.2f} GB")
    log(f"  {'total':<14s}{total:8.2f} s  -> {out}")
    if args.timings:
        options = {k: v for k, v in vars(args).items() if k != "func"}
        report = {"stages": watch.stages, "total": total, "peak_rss_bytes": peak,
                  "engine": config.resolved_engine(), "n_pairs": res.n_pairs,
                  "n_matvecs": res.n_matvecs,
                  "product_seconds": res.product_seconds, "n_tokens": res.n_tokens,
                  "n_kept": res.n_kept, "eigvals": res.eigvals.tolist(),
                  "residuals": res.residuals.tolist(), "options": options}
        write_json(args.timings, report, indent=2)
