"""The ``qwem`` command: closed-form embeddings and their evaluation.

``qwem embed``  corpus -> word2vec-format embeddings (svd of M*, PPMI or PMI)
``qwem eval``   embeddings -> JSON report (analogies, MEN, WS353, coverage)
``qwem train``  QWEM or SGNS training from small init, with history and checkpoints;
                ``--loss sgns --reweight word2vec`` streams over the corpus as word2vec
                does (dynamic window, subsampling, k negatives from P^{3/4})
``qwem theory`` the closed-form timescales and singular-value curves of training
``qwem tasks``  embeddings -> task-vector analysis per analogy category (spiked
                Marchenko-Pastur fit, SNR, localisation), as a table and JSON
``qwem neighbors``  embeddings -> nearest words to words or analogy expressions
``qwem shard``  one corpus file -> N compressed files cut at article boundaries
``qwem data``   the named corpora: where each is on this machine, how to get it

A corpus may be several files (a folder, a glob or a list after ``--corpus``): they are
counted file by file, windows never crossing from one into the next, and with
``--cluster`` on a Dask cluster (``qwem_lib.corpus.shards``).

Embeddings are read in word2vec text or binary format or GloVe's text, compressed
(gzip, bz2, xz) or not, detected from the content (``--format`` forces one).

Errors caused by input print one line, ``qwem: error: ...``, and exit with status 2;
no partial output file is left behind, and no output replaces an input (checked before
any work).  A bug in qwem itself keeps its traceback and exits with status 1.

Each command is a module of this package (``embed``, ``eval``, ``train``, ``theory``,
``tasks``, ``neighbors``, ``shard``, ``data``) with ``add_parser(subparsers)`` and
``run(args) -> int``; they share the parser's class and common options
(``_parser``), the corpus and M* inputs (``_inputs``) and the handling of standard
streams and failures (``_streams``).  Building the parser, ``--help`` and a usage
error import neither numpy nor torch: what is heavy is imported inside ``run``.
"""

from __future__ import annotations

import argparse

from . import data, embed, neighbors, shard, tasks, theory, train
from . import eval as evaluation
from ._parser import Parser
from ._streams import run_command, safe_streams

__all__ = ["main", "build_parser"]

#: The commands, in the order ``qwem --help`` lists them: each module adds its
#: parser (``add_parser(subparsers)``) and runs it (``run(args) -> int``).
COMMANDS = (embed, evaluation, train, theory, tasks, neighbors, shard, data)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from .. import __version__

    p = Parser(prog="qwem", description="word2vec as matrix factorisation of M* "
               "(Karkada et al., NeurIPS 2025): closed-form embeddings and "
               "evaluation.")
    p.add_argument("--version", action="version", version=f"qwem {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qwem`` console script."""
    safe_streams()
    args = build_parser().parse_args(argv)
    return run_command(args)
