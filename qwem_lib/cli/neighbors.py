"""``qwem neighbors``: embeddings -> the nearest words to words or analogy expressions
(3CosAdd; :func:`qwem_lib.evaluate.neighbors`)."""

from __future__ import annotations

import argparse

from ..runtime.errors import QwemError
from ._parser import FILE_HELP, add_device_option, add_format_option, integer


def add_parser(subparsers) -> None:
    """``qwem neighbors`` and its options."""
    n = subparsers.add_parser(
        "neighbors", help="nearest words to words or analogy expressions",
        description="For each QUERY, a word or an expression in one quoted argument "
        "such as 'king - man + woman', the k words whose embeddings have the largest "
        "cosine with the sum of the positive minus the negative words' unit "
        "embeddings (3CosAdd; the query words themselves are left out, as in the "
        "analogy protocol). Words are matched case-insensitively.")
    n.add_argument("file", help=FILE_HELP)
    n.add_argument("query", nargs="+", metavar="QUERY",
                   help="a word, or terms joined by ' + ' and ' - '")
    n.add_argument("-k", type=integer(), default=10, metavar="K",
                   help="neighbours per query (default 10)")
    add_format_option(n)
    add_device_option(n)
    n.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the ``-k`` nearest words of each query, in a block per query."""
    from ..evaluate import neighbors
    from ..runtime.devices import default_device
    from ..vectors import load_word2vec

    if args.k < 1:
        raise QwemError(f"-k must be at least 1, got {args.k}")
    device = default_device(args.device)
    words, W = load_word2vec(args.file, args.format)
    # every query answered (or refused) before anything is printed
    answers = [neighbors(W, words, query, k=args.k, device=device)
               for query in args.query]
    for n, (query, top) in enumerate(zip(args.query, answers)):
        if n:
            print()
        print(query.strip())
        width = max((len(w) for w, _ in top), default=0)
        for rank, (word, cos) in enumerate(top, start=1):
            print(f"{rank:4d}  {word:<{width}s}  {cos:.4f}")
    return 0
