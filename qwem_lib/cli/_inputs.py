"""Inputs of the commands that read a corpus: the corpus as the library takes it, the
cluster that counts it, its files on disk (which no output may replace), and its
statistics up to M* for ``qwem train`` and ``qwem theory``."""

from __future__ import annotations

import argparse

from ..runtime.errors import QwemError
from ._streams import log


def corpus(args: argparse.Namespace):
    """``--corpus`` as the library takes it: one name or path, or a tuple."""
    return args.corpus[0] if len(args.corpus) == 1 else tuple(args.corpus)


def cluster(args: argparse.Namespace):
    """``--cluster`` with ``--cluster-timeout`` (a
    :class:`qwem_lib.corpus.shards.Cluster`), or None."""
    if args.cluster_timeout is not None and not args.cluster:
        raise QwemError("--cluster-timeout applies only with --cluster ADDRESS")
    if args.cluster is None:
        return None
    from ..corpus.shards import LOST_AFTER, Cluster

    timeout = LOST_AFTER if args.cluster_timeout is None else args.cluster_timeout
    if not (timeout > 0) or timeout == float("inf"):
        raise QwemError(f"--cluster-timeout must be a positive number of seconds, got "
                        f"{args.cluster_timeout!r}")
    return Cluster(args.cluster, float(timeout))


def _refuse_outputs_in_corpus_folders(args: argparse.Namespace, outputs) -> None:
    """An output may not go into a folder given as the corpus: the next run would
    read it as one of the corpus's files."""
    from pathlib import Path

    for item in args.corpus:
        folder = Path(item).expanduser()
        if not folder.is_dir():
            continue
        for flag, out in outputs:
            if out is not None and Path(out).expanduser().resolve().parent \
                    == folder.resolve():
                raise QwemError(f"{flag} {out} is inside the corpus folder {item}, "
                                "whose files are all read as the corpus: write it "
                                "somewhere else")


def corpus_input(args: argparse.Namespace, outputs=()) -> list:
    """``[("--corpus", path), ...]``: the corpus's files on disk, which no output
    may replace (an output inside a folder given as the corpus is refused here)."""
    from ..corpus.data import resolve_corpora

    _refuse_outputs_in_corpus_folders(args, outputs)
    try:
        files = resolve_corpora(corpus(args), download=False)
    except QwemError:  # not on disk (yet): nothing to protect; reading reports it
        return []
    return [("--corpus", path) for path, _spec in files]


def mstar_inputs(args: argparse.Namespace, *, eigen: bool):
    """Corpus statistics for train/theory: tokens, P_ij, unigram, M*, device.

    ``eigen``: the caller computes top eigenpairs of M* (in the memory check)."""
    from ..pipeline import EmbedConfig, Stopwatch, pair_statistics, require_memory
    from ..runtime.devices import default_device
    from ..targets import m_star

    config = EmbedConfig(corpus=corpus(args), vocab_size=args.vocab_size,
                         embed_dim=args.dim, context_len=args.window,
                         scheme=args.scheme)
    device = default_device(args.device)
    require_memory(config, device, keep_pairs=True, eigen=eigen)
    watch = Stopwatch(device, echo=log)
    tokens, P, u = pair_statistics(config, device=device, progress=not args.quiet,
                                   watch=watch, cluster=cluster(args))
    with watch.stage("M*"):
        M = m_star(P, u)
    return tokens, P, u, M, device
