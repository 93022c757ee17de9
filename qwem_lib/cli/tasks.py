"""``qwem tasks``: embeddings -> task-vector analysis per analogy category (spiked
Marchenko-Pastur fit, SNR, localisation; :mod:`qwem_lib.rmt`), as a table and JSON."""

from __future__ import annotations

import argparse

from ..runtime.errors import QwemError
from ._parser import FILE_HELP, add_format_option
from ._streams import check_sink


def add_parser(subparsers) -> None:
    """``qwem tasks`` and its options."""
    k = subparsers.add_parser(
        "tasks", help="task vectors of analogy categories as spiked random matrices",
        description="For each analogy category, the task vectors w_b - w_a of its "
        "unique in-vocabulary pairs, in the embeddings' principal axes (the "
        "eigen-features for `qwem embed` output), kept to their first d coordinates: "
        "the Marchenko-Pastur fit of the spectrum of (1/d) R R^T with its outliers, "
        "the SNR and the inverse participation ratio of the mean task vector.")
    k.add_argument("file", help=FILE_HELP)
    add_format_option(k)
    k.add_argument("--dims", default=None, metavar="D1,D2,...",
                   help="numbers of leading features (default: powers of 2 up to "
                   "the dimension, and the dimension)")
    k.add_argument("--questions", default=None, metavar="PATH",
                   help="analogy file in the Google format (default: the bundled "
                   "Google analogies)")
    k.add_argument("--out", metavar="JSON", help="also write the report here")
    k.set_defaults(func=run)


def _dims(text: str | None, dim: int) -> list[int]:
    """``--dims`` as a list, each in ``1..dim`` (default: powers of 2 below ``dim``,
    and ``dim``)."""
    if text is None:
        return sorted({2 ** k for k in range(1, dim.bit_length()) if 2 ** k < dim}
                      | {dim})
    try:
        dims = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise QwemError(f"--dims must be integers separated by commas, got "
                        f"{text!r}") from None
    bad = [d for d in dims if not 1 <= d <= dim]
    if not dims or bad:
        raise QwemError(f"--dims must lie in 1..{dim} (the embeddings' dimension), "
                        f"got {text!r}")
    return dims


def _print_table(reports: list[dict]) -> None:
    """One row per category and number of features."""
    print(f"{'category':30s} {'N':>3s} {'d':>5s} {'SNR':>6s} {'IPR':>6s} "
          f"{'d_eff':>7s} {'KS':>6s} {'out':>3s} {'spike/BBP':>9s}")
    for rep in reports:
        for row in rep["by_dim"]:
            f = row["fit"]
            if f is None:
                fit = f"{'-':>7s} {'-':>6s} {'-':>3s} {'-':>9s}"
            else:
                ratio = f"{f['spike'][0] / f['bbp']:9.2f}" if f["spike"] else "-"
                fit = (f"{f['d_eff']:7.1f} {f['ks']:6.3f} {len(f['outliers']):3d} "
                       f"{ratio:>9s}")
            ipr = "-" if row["ipr"] is None else f"{row['ipr']:.3f}"
            snr = "-" if row["snr"] is None else f"{row['snr']:.2f}"
            print(f"{rep['category'][:30]:30s} {rep['n_pairs']:3d} {row['d']:5d} "
                  f"{snr:>6s} {ipr:>6s} {fit}")


def run(args: argparse.Namespace) -> int:
    """Print the table of every category (and write the report to ``--out``)."""
    from ..corpus.data import eval_path
    from ..rmt import category_report, principal_axes, task_vectors
    from ..runtime._atomic import check_outputs, write_json
    from ..vectors import load_word2vec

    check_outputs([("--out", args.out)],
                  [("FILE", args.file),
                   ("--questions", args.questions or eval_path("questions-words"))])
    check_sink("--out", args.out)
    words, W = load_word2vec(args.file, args.format)
    dims = _dims(args.dims, W.shape[1])
    tasks = task_vectors(principal_axes(W), words, args.questions)
    if not tasks:
        raise QwemError(f"no analogy category has two pairs with both words in the "
                        f"{len(words):,}-word vocabulary of {args.file}; use larger "
                        "embeddings or another --questions file")
    reports = [category_report(tv, dims) for tv in tasks.values()]
    _print_table(reports)
    if args.out:
        write_json(args.out, {"file": str(args.file), "dims": dims,
                              "categories": reports}, indent=2)
    return 0
