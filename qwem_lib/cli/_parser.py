"""The command's parser: its class, the types of its numeric options, and the options
several commands share (the corpus statistics, the embeddings' format, the device).

Imports neither numpy nor torch: building the parser, ``--help`` and a usage error
load only this, :mod:`argparse` and :mod:`qwem_lib.runtime.options`.
"""

from __future__ import annotations

import argparse

from ..runtime.errors import QwemError
from ..runtime.options import (SCHEMES, VECTOR_FORMATS, parse_any_int, parse_int,
                               parse_real)

# What a refused value is called in its one line; argparse names the option before
# it: "argument --dim: the value must be an integer from 1 to 100,000, got 0".
_SUBJECT = "the value"

#: Help of the FILE argument of the commands that read embeddings.
FILE_HELP = ("embeddings: word2vec text or binary, or GloVe text, optionally gzip, "
             "bz2 or xz compressed (detected from the content)")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option and where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def integer(lo: int | None = None, hi: int | None = None, why: str = ""):
    """An argparse type: an integer, in ``lo..hi`` when they are given.

    Sizes are bounded here, before anything is allocated, so that an absurd one is one
    line, not minutes and gigabytes; an integer without bounds is checked where it is
    used.  ``why`` ends the line of a refused value (what a bound means).
    """
    def parse(text: str) -> int:
        try:
            if lo is None:
                return parse_any_int(text, _SUBJECT)
            return parse_int(text, _SUBJECT, lo=lo, hi=hi)
        except QwemError as exc:
            raise argparse.ArgumentTypeError(f"{exc}{why}") from None
    return parse


def real(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` are refused)."""
    try:
        return parse_real(text, _SUBJECT)
    except QwemError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_option(p: argparse.ArgumentParser) -> None:
    """``--device``: where the arrays live."""
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")


def add_format_option(p: argparse.ArgumentParser) -> None:
    """``--format``: how an embeddings file is read."""
    p.add_argument("--format", choices=VECTOR_FORMATS, default="auto",
                   help="embeddings format: word2vec text, word2vec binary or GloVe's "
                   "header-less text (default: detected from the content)")


def add_corpus_options(p: argparse.ArgumentParser) -> None:
    """Options shared by embed, train and theory: which corpus statistics."""
    p.add_argument("--corpus", required=True, nargs="+", metavar="CORPUS",
                   help="registry name (text8, wiki2015-text8, enwiki2015, sample) or "
                   "a file (.txt/.bz2/.gz/.xz; plain, WikiExtractor or MediaWiki XML); "
                   "a folder, a quoted glob or several files are one corpus, read in "
                   "sorted order, windows not crossing files")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="count the corpus's files on a Dask cluster: a scheduler's "
                   "address (tcp://host:8786) or local:N for N local worker processes "
                   "(needs Dask: pip install -e '.[cluster]' in the checkout)")
    p.add_argument("--cluster-timeout", type=real, default=None, metavar="SECONDS",
                   help="with --cluster: how long to wait for the scheduler, its "
                   "first worker, and a worker after the cluster has lost every one "
                   "(default 60; then the run stops with one line)")
    p.add_argument("--vocab-size", type=integer(), required=True, metavar="V")
    p.add_argument("--dim", type=integer(1, 100_000), required=True, metavar="D")
    p.add_argument("--window", type=integer(), default=16, metavar="L",
                   help="words on each side (default 16, the paper's)")
    p.add_argument("--scheme", choices=("auto",) + SCHEMES, default="auto",
                   help="text normalisation (default auto)")
    add_device_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
