"""``qwem eval``: embeddings -> JSON report (Google analogies, MEN, WS353 and its
splits, with coverage; :func:`qwem_lib.evaluate.report`)."""

from __future__ import annotations

import argparse

from ._parser import FILE_HELP, add_device_option, add_format_option
from ._streams import check_sink


def add_parser(subparsers) -> None:
    """``qwem eval`` and its options."""
    v = subparsers.add_parser(
        "eval", help="benchmark scores of embeddings as JSON",
        description="Google analogies (paper and classic protocols, per category), "
        "MEN, WS353 and its splits, with coverage.")
    v.add_argument("file", help=FILE_HELP)
    add_format_option(v)
    add_device_option(v)
    v.add_argument("--out", metavar="JSON", help="also write the report here")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report of ``FILE`` as JSON (and write it to ``--out``)."""
    from ..corpus.data import EVAL_FILES, eval_path
    from ..evaluate import report
    from ..runtime._atomic import check_outputs, strict_json, write_text
    from ..runtime.devices import default_device
    from ..vectors import load_word2vec

    check_outputs([("--out", args.out)],
                  [("FILE", args.file)] + [("(evaluation set)", eval_path(name))
                                           for name in EVAL_FILES])
    check_sink("--out", args.out)
    device = default_device(args.device)
    words, W = load_word2vec(args.file, args.format)
    result = report(W, words, device=device)
    text = strict_json(result, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0
