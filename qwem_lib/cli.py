"""The ``qwem`` command: closed-form embeddings and their evaluation.

``qwem embed``  corpus -> word2vec-format embeddings (svd of M*, PPMI or PMI)
``qwem eval``   embeddings -> JSON report (analogies, MEN, WS353, coverage)

Errors caused by input print one line, ``qwem: error: ...``, and exit with status 2;
no partial output file is left behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import QwemError

__all__ = ["main", "build_parser"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="qwem", description="word2vec as matrix factorisation of M* "
        "(Karkada et al., NeurIPS 2025): closed-form embeddings and evaluation.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("embed", help="closed-form embeddings of a corpus",
                       description="Read a corpus, count windowed co-occurrences, build "
                       "the target (M*, PPMI or PMI) and write its top-d eigenvectors "
                       "scaled by sqrt(eigenvalue) in word2vec text format.")
    e.add_argument("--corpus", required=True,
                   help="registry name (text8, wiki2015-text8, enwiki2015, sample) or "
                   "a file (.txt/.bz2/.gz/.xz; plain, WikiExtractor or MediaWiki XML)")
    e.add_argument("--vocab-size", type=_int, required=True, metavar="V")
    e.add_argument("--dim", type=_int, required=True, metavar="D")
    e.add_argument("--method", choices=("mstar", "ppmi", "pmi"), default="mstar")
    e.add_argument("--window", type=_int, default=16, metavar="L",
                   help="words on each side (default 16, the paper's)")
    e.add_argument("--weighting", choices=("linear", "uniform"), default="linear",
                   help="pair weight by separation s: L+1-s (default) or 1")
    e.add_argument("--negatives", type=float, default=1.0, metavar="K",
                   help="weight k of the negative term (default 1)")
    e.add_argument("--neg-power", type=float, default=1.0, metavar="A",
                   help="negative distribution P_j^A (default 1; word2vec: 0.75)")
    e.add_argument("--scheme", choices=("auto", "paper", "text8", "none"),
                   default="auto", help="text normalisation (default auto)")
    e.add_argument("--min-article-tokens", type=int, default=0, metavar="N",
                   help="drop shorter articles (the paper: 500)")
    e.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    e.add_argument("--no-cache", action="store_true",
                   help="neither read nor write cached tokens and eigenpairs")
    e.add_argument("--timings", metavar="JSON", help="also write stage timings here")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.add_argument("--out", required=True, metavar="FILE",
                   help="output, word2vec text format")
    e.set_defaults(func=_cmd_embed)

    v = sub.add_parser("eval", help="benchmark scores of embeddings as JSON",
                       description="Google analogies (paper and classic protocols, "
                       "per category), MEN, WS353 and its splits, with coverage.")
    v.add_argument("file", help="embeddings in word2vec text format")
    v.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    v.add_argument("--out", metavar="JSON", help="also write the report here")
    v.set_defaults(func=_cmd_eval)
    return p


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._atomic import atomic_path
    from .pipeline import EmbedConfig, Stopwatch, closed_form, default_device
    from .vectors import save_word2vec

    t_start = time.perf_counter()
    config = EmbedConfig(corpus=args.corpus, vocab_size=args.vocab_size,
                         embed_dim=args.dim, method=args.method,
                         context_len=args.window, weighting=args.weighting,
                         negatives=args.negatives, neg_power=args.neg_power,
                         scheme=args.scheme,
                         min_article_tokens=args.min_article_tokens)
    config.validate()
    out = Path(args.out)
    if out.is_dir():
        raise QwemError(f"--out {out} is a folder; give a file name")
    device = default_device(args.device)
    _log(f"qwem embed: {config.method} of {config.corpus}, V={config.vocab_size}, "
         f"d={config.embed_dim}, window={config.context_len}, device={device}")
    watch = Stopwatch(device, echo=_log)
    res = closed_form(config, device=device, progress=not args.quiet,
                      cache=not args.no_cache, watch=watch)
    with watch.stage("write"):
        save_word2vec(out, res.words, res.W)
    n_neg = int((res.eigvals < 0).sum())
    _log(f"  tokens: {res.n_tokens:,} read, {res.n_kept:,} in vocabulary "
         f"({res.n_kept / max(res.n_tokens, 1):.1%})")
    _log(f"  eigenvalues: {float(res.eigvals[0]):.4g} ... "
         f"{float(res.eigvals[-1]):.4g}")
    if n_neg:
        _log(f"  warning: {n_neg} of the top {config.embed_dim} eigenvalues are "
             "negative; those columns are zero (Theorem 1 needs them >= 0)")
    total = time.perf_counter() - t_start
    _log(f"  {'total':<14s}{total:8.2f} s  -> {out}")
    if args.timings:
        options = {k: v for k, v in vars(args).items() if k != "func"}
        report = {"stages": watch.stages, "total": total, "options": options}
        with atomic_path(args.timings) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ._atomic import atomic_path
    from .evaluate import report
    from .pipeline import default_device
    from .vectors import load_word2vec

    words, W = load_word2vec(args.file)
    result = report(W, words, device=default_device(args.device))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qwem`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except QwemError as exc:
        print(f"qwem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qwem: interrupted; no partial output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
