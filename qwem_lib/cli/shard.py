"""``qwem shard``: one corpus file -> N compressed files cut at article boundaries
(:func:`qwem_lib.corpus.splitter.split_corpus`)."""

from __future__ import annotations

import argparse
import time

from ._parser import integer
from ._streams import log


def add_parser(subparsers) -> None:
    """``qwem shard`` and its options."""
    sh = subparsers.add_parser(
        "shard", help="split a corpus file into N compressed shards",
        description="Split one corpus file (plain, WikiExtractor or MediaWiki XML, "
        "compressed or not) into N gzip files of about equal size, cut between "
        "articles (lines for plain text), so that the folder, read as one corpus, "
        "gives the file's statistics; its files can then be counted in parallel "
        "(qwem embed --corpus DIR --cluster ...).")
    sh.add_argument("file", metavar="FILE",
                    help="the corpus file to split (or a registry name)")
    sh.add_argument("--parts", type=integer(1, 10**6), required=True, metavar="N",
                    help="number of shards")
    sh.add_argument("--out", required=True, metavar="DIR",
                    help="folder for the shards (created if missing)")
    sh.add_argument("--quiet", action="store_true", help="no progress bar")
    sh.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Split ``FILE`` into ``--parts`` files in ``--out``; print their paths."""
    from pathlib import Path

    from ..corpus.data import resolve_corpus
    from ..corpus.splitter import split_corpus

    t0 = time.perf_counter()
    path, _spec = resolve_corpus(args.file)  # a registry name or a file
    paths = split_corpus(path, args.parts, Path(args.out), progress=not args.quiet)
    size = sum(p.stat().st_size for p in paths)
    log(f"qwem shard: {args.file} -> {len(paths)} files in {args.out} "
        f"({size / 1e6:,.1f} MB, {time.perf_counter() - t0:.1f} s)")
    for path in paths:
        print(path)
    return 0
