"""``qwem data``: the named corpora (:mod:`qwem_lib.corpus.data`), where each is on
this machine, and how to get it (:mod:`qwem_lib.corpus.provenance`)."""

from __future__ import annotations

import argparse
import time

from ._streams import log


def add_parser(subparsers) -> None:
    """``qwem data`` and its actions: list, fetch, path."""
    da = subparsers.add_parser(
        "data", help="the named corpora: list, fetch, path",
        description="The corpora the book and the examples name (sample, text8, "
        "wiki2015-text8, enwiki2015): where each is on this machine, and how to get "
        "it.  'fetch' downloads text8, rebuilds enwiki2015 from its public source "
        "and derives wiki2015-text8 from it, each checked by sha256, into the "
        "cache's corpora folder.")
    act = da.add_subparsers(dest="action", required=True, metavar="ACTION")
    act.add_parser("list", help="every named corpus: where it is, how to get it")
    fe = act.add_parser("fetch", help="download or rebuild a named corpus")
    fe.add_argument("name", metavar="NAME")
    fe.add_argument("--mirror", metavar="URL",
                    help="base address replacing the source's (https://... or "
                    "file://...), for machines that reach the data through a copy")
    fe.add_argument("--quiet", action="store_true", help="no progress bar")
    pa = act.add_parser("path", help="print the file of a named corpus (exit 2 when "
                        "it is not on this machine)")
    pa.add_argument("name", metavar="NAME")
    da.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List the named corpora, print one's file, or fetch one."""
    from ..corpus import data, provenance

    if args.action == "list":
        for name, spec in data.CORPORA.items():
            path, how = provenance.status(name)
            print(f"{name:<15} {str(path) if path else 'not on this machine':<60} "
                  f"{how}")
        return 0
    if args.action == "path":
        provenance.status(args.name)               # an unknown name: one line
        print(data.resolve_corpus(args.name, download=False)[0])
        return 0
    t0 = time.perf_counter()
    path = provenance.fetch(args.name, mirror=args.mirror, progress=not args.quiet)
    log(f"qwem data: {args.name} is {path} ({path.stat().st_size / 1e6:,.1f} MB, "
        f"{time.perf_counter() - t0:.1f} s)")
    print(path)
    return 0
