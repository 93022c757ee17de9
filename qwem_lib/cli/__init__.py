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

A corpus may be several files (a folder, a glob or a list after ``--corpus``): they are
counted file by file, windows never crossing from one into the next, and with
``--cluster`` on a Dask cluster (``qwem_lib.corpus.shards``).

Embeddings are read in word2vec text or binary format or GloVe's text, compressed
(gzip, bz2, xz) or not, detected from the content (``--format`` forces one).

Errors caused by input print one line, ``qwem: error: ...``, and exit with status 2;
no partial output file is left behind, and no output replaces an input (checked before
any work).  A bug in qwem itself keeps its traceback and exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import sys
import time
import warnings

from ..runtime.errors import QwemError

__all__ = ["main", "build_parser"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _bounded(lo: int, hi: int, why: str = ""):
    """An argparse type: an integer in ``lo..hi`` (sizes are checked before anything
    is allocated, so an absurd one is one line, not minutes and gigabytes)."""
    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {lo:,} to {hi:,}{why}, got {text!r}")
        return value
    return parse


_MAX_THREADS = 1024


def _float(text: str) -> float:
    """A finite number (``nan`` and ``inf`` are refused by the parser)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option and where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = _Parser(
        prog="qwem", description="word2vec as matrix factorisation of M* "
        "(Karkada et al., NeurIPS 2025): closed-form embeddings and evaluation.")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"qwem {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("embed", help="closed-form embeddings of a corpus",
                       description="Read a corpus, count windowed co-occurrences, build "
                       "the target (M*, PPMI or PMI) and write its top-d eigenvectors "
                       "scaled by sqrt(eigenvalue) in word2vec text format.")
    _corpus_args(e)
    e.add_argument("--method", choices=("mstar", "ppmi", "pmi"), default="mstar")
    e.add_argument("--weighting", choices=("linear", "uniform"), default="linear",
                   help="pair weight by separation s: L+1-s (default) or 1")
    e.add_argument("--negatives", type=_float, default=1.0, metavar="K",
                   help="weight k of the negative term (default 1)")
    e.add_argument("--neg-power", type=_float, default=1.0, metavar="A",
                   help="negative distribution P_j^A (default 1; word2vec: 0.75)")
    e.add_argument("--subsample", type=_float, default=0.0, metavar="T",
                   help="word2vec's frequent-word subsampling before counting, "
                   "threshold T (default 0: none; word2vec: 1e-4 to 1e-5)")
    e.add_argument("--subsample-draws", type=_int, default=5, metavar="N",
                   help="subsamplings whose counts are summed (default 5)")
    e.add_argument("--weight-power", type=_float, default=0.0, metavar="B",
                   help="factorise with pair weights g_i g_j, g_i ~ frequency^B "
                   "(default 0: Setting 3.1's constant weights)")
    e.add_argument("--min-article-tokens", default=0, metavar="N",
                   type=_bounded(0, 10**12, " (0: keep every article)"),
                   help="drop shorter articles (the paper: 500)")
    e.add_argument("--engine", choices=("auto", "dense", "sparse"), default="auto",
                   help="dense V x V statistics, or sparse counts and a matrix-free "
                   "eigensolver (memory grows with the observed pairs, not V^2); "
                   "default auto: sparse from V = 15,000 on")
    e.add_argument("--no-cache", action="store_true",
                   help="neither read nor write cached tokens and eigenpairs")
    e.add_argument("--timings", metavar="JSON", help="also write stage timings here")
    e.add_argument("--out", required=True, metavar="FILE",
                   help="output, word2vec text format")
    e.set_defaults(func=_cmd_embed)

    v = sub.add_parser("eval", help="benchmark scores of embeddings as JSON",
                       description="Google analogies (paper and classic protocols, "
                       "per category), MEN, WS353 and its splits, with coverage.")
    v.add_argument("file", help=_FILE_HELP)
    _format_arg(v)
    v.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    v.add_argument("--out", metavar="JSON", help="also write the report here")
    v.set_defaults(func=_cmd_eval)

    t = sub.add_parser("train", help="train embeddings (QWEM or SGNS) on a corpus",
                       description="Gradient descent from small initialisation on the "
                       "expected loss (--full-batch) or SGD on sampled word pairs "
                       "(--batch-size). --loss sgns --reweight word2vec is word2vec "
                       "itself: skip-gram with negative sampling streamed over the "
                       "corpus, with the dynamic window, frequent-word subsampling and "
                       "negatives from P^{3/4} (add --full-batch for gradient descent "
                       "on its expected loss instead). Writes DIR/embeddings.txt, "
                       "DIR/history.json, DIR/config.json and DIR/checkpoint.npz "
                       "(for --resume).")
    _corpus_args(t)
    t.add_argument("--loss", choices=("qwem", "sgns"), default="qwem")
    t.add_argument("--reweight", choices=("setting31", "word2vec", "uniform"),
                   default="setting31")
    t.add_argument("--init-scale", type=_float, default=None, metavar="S",
                   help="init entries N(0, (S/sqrt(d))^2) (default 1e-8; word2vec: "
                   "0.1 tied, word2vec's uniform(-0.5/d, 0.5/d) untied)")
    t.add_argument("--lr", default="auto",
                   help="learning rate, or auto (stable, from M*'s spectrum; "
                   "word2vec: 0.025, decayed linearly to 0)")
    t.add_argument("--steps", default="auto",
                   help="steps, or auto (until the d-th mode is learned)")
    t.add_argument("--max-steps", type=_bounded(1, 10**9), default=1_000_000)
    batch = t.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=_bounded(1, 10**8), metavar="B",
                       help="positive (and negative) pairs per SGD step; word2vec "
                       "on a GPU: centre words per step (default 64)")
    batch.add_argument("--full-batch", action="store_true",
                       help="gradient descent on the expected loss (default, except "
                       "for word2vec)")
    t.add_argument("--word-basis", action="store_true",
                   help="full-batch QWEM under Setting 3.1: take the steps on W itself "
                   "(two V x V x d products a step) instead of in M*'s eigenbasis "
                   "(the same trajectory at V x d x d a step, after one cached "
                   "eigendecomposition of M*)")
    t.add_argument("--seed", type=_int, default=0)
    t.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="default float64 (word2vec: float32)")
    t.add_argument("--checkpoints", type=_bounded(1, 100_000), default=None,
                   metavar="N",
                   help="log-spaced checkpoints (default 50; word2vec: 30)")
    t.add_argument("--analogy", action="store_true",
                   help="record analogy accuracy at each checkpoint (slow)")
    again = t.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in DIR from DIR/checkpoint.npz (the same "
                       "corpus and settings are required)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the files of an earlier run in DIR (by default a "
                       "folder holding another run's files is refused)")
    w = t.add_argument_group("word2vec (--loss sgns --reweight word2vec)")
    w.add_argument("--negatives", type=_int, default=None, metavar="K",
                   help="negatives per positive pair (default 5)")
    w.add_argument("--subsample", type=_float, default=None, metavar="T",
                   help="frequent-word subsampling threshold, 0 for none "
                   "(default 1e-4)")
    w.add_argument("--epochs", type=_bounded(1, 10**6), default=None, metavar="E",
                   help="passes over the corpus (default 1)")
    w.add_argument("--neg-power", type=_float, default=None, metavar="A",
                   help="negatives drawn from count^A (default 0.75)")
    w.add_argument("--untied", action="store_true",
                   help="separate context vectors, as in word2vec.c and gensim "
                   "(default: tied, as in the paper)")
    w.add_argument("--threads", type=_bounded(1, _MAX_THREADS), default=None,
                   metavar="N",
                   help="CPU threads of the compiled kernel (default: all cores); "
                   "with 1 a run is reproducible bit for bit, with more (Hogwild) "
                   "only statistically; --resume needs the same N")
    w.add_argument("--pair-negatives", action="store_true",
                   help="draw K negatives for every pair, as word2vec.c (default: "
                   "K per centre word, shared by its window's pairs; CPU only)")
    t.add_argument("--out", required=True, metavar="DIR")
    t.set_defaults(func=_cmd_train)

    h = sub.add_parser("theory", help="predicted timescales and training curves",
                       description="Top-d eigenvalues of M*, the timescales "
                       "tau_k = ln(lambda_k / s0^2) / lambda_k and half-learned times "
                       "for init scale S (s0^2 = S^2), and the closed-form curves "
                       "s_k^2(t) on a log-spaced time grid, as JSON.")
    _corpus_args(h)
    h.add_argument("--init-scale", type=_float, default=1e-8, metavar="S")
    h.add_argument("--points", type=_bounded(2, 10**6), default=200,
                   help="time points of the predicted curves (default 200)")
    h.add_argument("--out", metavar="JSON", help="write the predictions here")
    h.set_defaults(func=_cmd_theory)

    k = sub.add_parser("tasks", help="task vectors of analogy categories as spiked "
                       "random matrices",
                       description="For each analogy category, the task vectors "
                       "w_b - w_a of its unique in-vocabulary pairs, in the "
                       "embeddings' principal axes (the eigen-features for `qwem "
                       "embed` output), kept to their first d coordinates: the "
                       "Marchenko-Pastur fit of the spectrum of (1/d) R R^T with "
                       "its outliers, the SNR and the inverse participation ratio "
                       "of the mean task vector.")
    k.add_argument("file", help=_FILE_HELP)
    _format_arg(k)
    k.add_argument("--dims", default=None, metavar="D1,D2,...",
                   help="numbers of leading features (default: powers of 2 up to "
                   "the dimension, and the dimension)")
    k.add_argument("--questions", default=None, metavar="PATH",
                   help="analogy file in the Google format (default: the bundled "
                   "Google analogies)")
    k.add_argument("--out", metavar="JSON", help="also write the report here")
    k.set_defaults(func=_cmd_tasks)

    n = sub.add_parser("neighbors", help="nearest words to words or analogy "
                       "expressions",
                       description="For each QUERY, a word or an expression in one "
                       "quoted argument such as 'king - man + woman', the k words "
                       "whose embeddings have the largest cosine with the sum of the "
                       "positive minus the negative words' unit embeddings (3CosAdd; "
                       "the query words themselves are left out, as in the analogy "
                       "protocol). Words are matched case-insensitively.")
    n.add_argument("file", help=_FILE_HELP)
    n.add_argument("query", nargs="+", metavar="QUERY",
                   help="a word, or terms joined by ' + ' and ' - '")
    n.add_argument("-k", type=_int, default=10, metavar="K",
                   help="neighbours per query (default 10)")
    _format_arg(n)
    n.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    n.set_defaults(func=_cmd_neighbors)

    sh = sub.add_parser("shard", help="split a corpus file into N compressed shards",
                        description="Split one corpus file (plain, WikiExtractor or "
                        "MediaWiki XML, compressed or not) into N gzip files of about "
                        "equal size, cut between articles (lines for plain text), so "
                        "that the folder, read as one corpus, gives the file's "
                        "statistics; its files can then be counted in parallel "
                        "(qwem embed --corpus DIR --cluster ...).")
    sh.add_argument("file", metavar="FILE",
                    help="the corpus file to split (or a registry name)")
    sh.add_argument("--parts", type=_bounded(1, 10**6), required=True, metavar="N",
                    help="number of shards")
    sh.add_argument("--out", required=True, metavar="DIR",
                    help="folder for the shards (created if missing)")
    sh.add_argument("--quiet", action="store_true", help="no progress bar")
    sh.set_defaults(func=_cmd_shard)

    da = sub.add_parser("data", help="the named corpora: list, fetch, path",
                        description="The corpora the book and the examples name "
                        "(sample, text8, wiki2015-text8, enwiki2015): where each is on "
                        "this machine, and how to get it.  'fetch' downloads text8, "
                        "rebuilds enwiki2015 from its public source and derives "
                        "wiki2015-text8 from it, each checked by sha256, into the "
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
    da.set_defaults(func=_cmd_data)
    return p


_FILE_HELP = ("embeddings: word2vec text or binary, or GloVe text, optionally gzip, "
              "bz2 or xz compressed (detected from the content)")


def _format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("auto", "text", "binary", "glove"),
                   default="auto",
                   help="embeddings format: word2vec text, word2vec binary or GloVe's "
                   "header-less text (default: detected from the content)")


def _corpus_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by embed, train and theory: which corpus statistics."""
    p.add_argument("--corpus", required=True, nargs="+", metavar="CORPUS",
                   help="registry name (text8, wiki2015-text8, enwiki2015, sample) or "
                   "a file (.txt/.bz2/.gz/.xz; plain, WikiExtractor or MediaWiki XML); "
                   "a folder, a quoted glob or several files are one corpus, read in "
                   "sorted order, windows not crossing files")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="count the corpus's files on a Dask cluster: a scheduler's "
                   "address (tcp://host:8786) or local:N for N local worker processes "
                   "(needs Dask: pip install -e '.[cluster]' in the checkout)")
    p.add_argument("--cluster-timeout", type=_float, default=None, metavar="SECONDS",
                   help="with --cluster: how long to wait for the scheduler, its "
                   "first worker, and a worker after the cluster has lost every one "
                   "(default 60; then the run stops with one line)")
    p.add_argument("--vocab-size", type=_int, required=True, metavar="V")
    p.add_argument("--dim", type=_bounded(1, 100_000), required=True, metavar="D")
    p.add_argument("--window", type=_int, default=16, metavar="L",
                   help="words on each side (default 16, the paper's)")
    p.add_argument("--scheme", choices=("auto", "paper", "text8", "none"),
                   default="auto", help="text normalisation (default auto)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _auto_or(text: str, kind):
    if text == "auto":
        return "auto"
    try:
        return kind(text)
    except ValueError:
        raise QwemError(f"expected a number or 'auto', got {text!r}") from None


def _mstar_inputs(args: argparse.Namespace, *, eigen: bool):
    """Corpus statistics for train/theory: tokens, P_ij, unigram, M*, device.

    ``eigen``: the caller computes top eigenpairs of M* (in the memory check)."""
    from ..pipeline import EmbedConfig, Stopwatch, pair_statistics, require_memory
    from ..runtime.devices import default_device
    from ..targets import m_star

    config = EmbedConfig(corpus=_corpus(args), vocab_size=args.vocab_size,
                         embed_dim=args.dim, context_len=args.window,
                         scheme=args.scheme)
    device = default_device(args.device)
    require_memory(config, device, keep_pairs=True, eigen=eigen)
    watch = Stopwatch(device, echo=_log)
    tokens, P, u = pair_statistics(config, device=device, progress=not args.quiet,
                                   watch=watch, cluster=_cluster(args))
    with watch.stage("M*"):
        M = m_star(P, u)
    return tokens, P, u, M, device


def _cluster(args: argparse.Namespace):
    """``--cluster`` with ``--cluster-timeout`` (a :class:`qwem_lib.corpus.shards.Cluster`),
    or None."""
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


def _corpus(args: argparse.Namespace):
    """``--corpus`` as the library takes it: one name or path, or a tuple."""
    return args.corpus[0] if len(args.corpus) == 1 else tuple(args.corpus)


def _corpus_input(args: argparse.Namespace, outputs=()) -> list:
    """``[("--corpus", path), ...]``: the corpus's files on disk (an output must
    not replace any of them).  An output may not go into a folder given as the
    corpus either: the next run would read it as one of the corpus's files."""
    from pathlib import Path

    from ..corpus.data import resolve_corpora

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
    try:
        files = resolve_corpora(_corpus(args), download=False)
    except QwemError:  # not on disk (yet): nothing to protect; reading reports it
        return []
    return [("--corpus", path) for path, _spec in files]


def _describe(corpus) -> str:
    if isinstance(corpus, tuple):
        return f"{len(corpus)} files ({corpus[0]}, ...)"
    return corpus


def _run_info(args: argparse.Namespace) -> dict:
    """What a checkpoint of ``qwem train`` must match to be resumed: the corpus's
    content and the statistics' settings."""
    from ..corpus.data import corpus_identity

    return {"corpus": corpus_identity(_corpus(args)), "scheme": args.scheme,
            "vocab_size": args.vocab_size, "window": args.window}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _check_sink(flag: str, path) -> None:
    """Refuse, before any work, an output that is a device which accepts no bytes
    (/dev/full: every write fails with 'no space left'), which would fail only after
    the run, with the other outputs written."""
    if path is None:
        return
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return                   # not there (yet): check_outputs judged the folder
    if stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) \
            == (1, 7):           # Linux's /dev/full, whatever it is called
        raise QwemError(f"cannot write {flag} {path}: it is a device that is always "
                        "full (/dev/full); choose a file, or /dev/null to discard it")


def _short(path, limit: int = 80) -> str:
    """A path for a message: at most ``limit`` characters, its start and its end."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2 - 3]}...{text[-(limit // 2):]} ({len(text):,} characters)"


def _option_of(args, filename) -> str:
    """The option (or argument) whose value ``filename`` comes from, or ''."""
    name = os.fsdecode(filename) if isinstance(filename, (bytes, os.PathLike)) \
        else str(filename)
    found, best = "", 0
    for key, value in vars(args).items():
        if key in ("func", "command", "action"):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and len(item) > best \
                    and (item in name or name in item):
                found, best = key, len(item)     # the longest match
    if not found:
        return ""
    return ("FILE" if found == "file" else "--" + found.replace("_", "-")) + " "


def _path_error(args, exc: OSError) -> str:
    """One line for an OSError on a path the user named."""
    what = _option_of(args, exc.filename)
    where = _short(exc.filename)
    if exc.errno == errno.ENAMETOOLONG:
        return (f"{what}{where}: the name is too long (a file or folder name may hold "
                "at most 255 bytes on most file systems); choose a shorter name")
    return (f"cannot use {what}{where}: {exc.strerror or exc}; check the path and "
            "its permissions")


def _safe_streams() -> None:
    """Printing never fails on the characters printed: under an encoding that cannot
    hold them (PYTHONIOENCODING=ascii, a C locale) σ or × are written as escapes."""
    import codecs

    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        try:
            unicode = codecs.lookup(encoding or "ascii").name in ("utf-8", "utf-16",
                                                                   "utf-32")
        except LookupError:
            unicode = False
        if not unicode and getattr(stream, "errors", None) == "strict" \
                and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


class _StdoutError(Exception):
    """Writing to standard output failed (a full disk, /dev/full, an I/O error)."""

    def __init__(self, cause: OSError):
        super().__init__(cause)
        self.cause = cause


class _Stdout:
    """``sys.stdout`` during :func:`main`: the same stream, but a failed write or
    flush is told apart from the other OSErrors of a command (:class:`_StdoutError`);
    a closed pipe stays a :class:`BrokenPipeError`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _StdoutError(exc) from None

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _StdoutError(exc) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _drop_stdout() -> None:
    """Point standard output at devnull, so that the interpreter's last flush of the
    bytes it could not write does not fail (and print a traceback) a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a file descriptor (a test's
        pass                                         # capture): nothing to drop
    finally:
        os.close(devnull)


def _cmd_embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..pipeline import EmbedConfig, Stopwatch, closed_form
    from ..runtime._atomic import atomic_path, check_outputs
    from ..runtime.devices import default_device
    from ..vectors import check_words, save_word2vec

    t_start = time.perf_counter()
    config = EmbedConfig(corpus=_corpus(args), vocab_size=args.vocab_size,
                         embed_dim=args.dim, method=args.method,
                         context_len=args.window, weighting=args.weighting,
                         negatives=args.negatives, neg_power=args.neg_power,
                         scheme=args.scheme,
                         min_article_tokens=args.min_article_tokens,
                         subsample=args.subsample,
                         subsample_draws=args.subsample_draws,
                         weight_power=args.weight_power, engine=args.engine)
    config.validate()
    out = Path(args.out)
    outputs = [("--out", args.out), ("--timings", args.timings)]
    check_outputs(outputs, _corpus_input(args, outputs))
    _check_sink("--timings", args.timings)
    device = default_device(args.device)
    where = f", counted on {args.cluster}" if args.cluster else ""
    _log(f"qwem embed: {config.method} of {_describe(config.corpus)}, "
         f"V={config.vocab_size}, d={config.embed_dim}, window={config.context_len}, "
         f"device={device}, {config.resolved_engine()} statistics{where}")
    watch = Stopwatch(device, echo=_log)
    res = closed_form(config, device=device, progress=not args.quiet,
                      cache=not args.no_cache, watch=watch, cluster=_cluster(args),
                      check_words=lambda words: check_words(words, "qwem embed"))
    if res.cached and args.cluster:
        _log(f"  (read from the cache: the cluster {args.cluster} was not used)")
    # --out appears only once --timings is written too: a --timings that cannot
    # be written leaves no --out that looks complete
    with contextlib.ExitStack() as written:
        out_tmp = written.enter_context(atomic_path(out)) if args.timings else out
        with watch.stage("write"):
            save_word2vec(out_tmp, res.words, res.W)
        _embed_report(args, config, res, watch, out, t_start)
    return 0


def _embed_report(args, config, res, watch, out, t_start) -> None:
    """``qwem embed``'s summary on stderr, and ``--timings``."""
    from ..runtime._atomic import write_json
    from ..runtime.memory import peak_rss_bytes

    n_neg = int((res.eigvals < 0).sum())
    _log(f"  tokens: {res.n_tokens:,} read, {res.n_kept:,} in vocabulary "
         f"({res.n_kept / max(res.n_tokens, 1):.1%})")
    _log(f"  eigenvalues: {float(res.eigvals[0]):.4g} ... "
         f"{float(res.eigvals[-1]):.4g}")
    lam1 = abs(float(res.eigvals[0])) or 1.0
    worst = float(res.residuals.max())
    _log(f"  residuals: max ||Mv - lv|| = {worst:.3g} = {worst / lam1:.2g} x "
         "the top eigenvalue")
    if n_neg:
        _log(f"  warning: {n_neg} of the top {config.embed_dim} eigenvalues are "
             "negative; those columns are zero (Theorem 1 needs them >= 0)")
    total = time.perf_counter() - t_start
    peak = peak_rss_bytes()
    if peak is not None:
        _log(f"  peak memory   {peak / 1e9:8.2f} GB")
    _log(f"  {'total':<14s}{total:8.2f} s  -> {out}")
    if args.timings:
        options = {k: v for k, v in vars(args).items() if k != "func"}
        report = {"stages": watch.stages, "total": total, "peak_rss_bytes": peak,
                  "engine": config.resolved_engine(), "n_pairs": res.n_pairs,
                  "n_matvecs": res.n_matvecs,
                  "product_seconds": res.product_seconds, "n_tokens": res.n_tokens,
                  "n_kept": res.n_kept, "eigvals": res.eigvals.tolist(),
                  "residuals": res.residuals.tolist(), "options": options}
        write_json(args.timings, report, indent=2)


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..corpus.data import EVAL_FILES, eval_path
    from ..evaluate import report
    from ..runtime._atomic import check_outputs, strict_json, write_text
    from ..runtime.devices import default_device
    from ..vectors import load_word2vec

    check_outputs([("--out", args.out)],
                  [("FILE", args.file)] + [("(evaluation set)", eval_path(name))
                                           for name in EVAL_FILES])
    _check_sink("--out", args.out)
    device = default_device(args.device)
    words, W = load_word2vec(args.file, args.format)
    result = report(W, words, device=device)
    text = strict_json(result, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0


def _or(value, default):
    return default if value is None else value


def _streams(args: argparse.Namespace) -> bool:
    """Does ``qwem train`` run word2vec itself (streaming over the corpus)?"""
    return args.loss == "sgns" and args.reweight == "word2vec" and not args.full_batch


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..runtime._atomic import check_outputs
    from ..runtime.history import RUN_FILES, run_dir_lock

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise QwemError(f"--out {out} is a file; give a folder")
    if args.resume and not (out / RUN_FILES[0]).is_file():
        raise QwemError(f"--resume: there is no checkpoint to resume in {out} (no "
                        f"{RUN_FILES[0]}); to start a new run there, leave out "
                        "--resume")
    outputs = [("--out", out / name) for name in RUN_FILES]
    check_outputs(outputs, _corpus_input(args, outputs))
    with run_dir_lock(out):          # one process at a time writes a run folder
        return _train_locked(args, out)


def _train_locked(args: argparse.Namespace, out) -> int:
    """``qwem train`` in its run folder ``out``, which this process has locked."""
    from ..runtime.history import check_run_dir

    # an old run is deleted (with --overwrite) only by the trainer, once the new
    # run's every input has been checked and it is about to write
    check_run_dir(out, resume=args.resume, overwrite=args.overwrite)
    if _streams(args):
        return _train_word2vec(args, out)
    from ..runtime._atomic import write_json
    from ..train import TrainConfig, train
    from ..vectors import check_words, save_word2vec

    w2v_only = [flag for flag, given in (
        ("--untied", args.untied), ("--epochs", args.epochs is not None),
        ("--threads", args.threads is not None),
        ("--pair-negatives", args.pair_negatives),
        ("--negatives", args.negatives is not None),
        ("--subsample", args.subsample is not None),
        ("--neg-power", args.neg_power is not None)) if given]
    if w2v_only:
        raise QwemError(f"{' and '.join(w2v_only)} apply to word2vec only "
                        "(--loss sgns --reweight word2vec, without --full-batch)")
    config = TrainConfig(loss=args.loss, reweight=args.reweight, embed_dim=args.dim,
                         init_scale=1e-8 if args.init_scale is None
                         else args.init_scale, lr=_auto_or(args.lr, float),
                         steps=_auto_or(args.steps, int),
                         batch_size=None if args.full_batch else args.batch_size,
                         seed=args.seed, dtype=args.dtype or "float64",
                         n_checkpoints=_or(args.checkpoints, 50),
                         max_steps=args.max_steps,
                         basis="word" if args.word_basis else "auto")
    _log(f"qwem train: {config.loss} loss, {config.reweight} reweighting, "
         f"V={args.vocab_size}, d={args.dim}, "
         f"{'full batch' if config.batch_size is None else config.batch_size}")
    tokens, P, u, M, device = _mstar_inputs(args, eigen=False)
    words = list(tokens.vocab.words)
    check_words(words, "qwem train")          # before the run, not at its end
    t0 = time.perf_counter()
    res = train(config, P, u, M_star=M, words=words if args.analogy else None,
                device=device, out_dir=out, resume=args.resume, overwrite=True,
                run_info=_run_info(args), progress=not args.quiet)
    _log(f"  train         {time.perf_counter() - t0:8.2f} s  ({res.steps:,} steps, "
         f"lr {res.lr:.4g}, flow time {res.history.t[-1]:.4g})")
    save_word2vec(out / "embeddings.txt", words, res.W)
    meta = {"train": config.to_dict(), "corpus": _corpus(args),
            "vocab_size": args.vocab_size, "window": args.window,
            "scheme": args.scheme, "lr": res.lr, "steps": res.steps,
            "dt_per_step": res.dt, "source": tokens.source}
    write_json(out / "config.json", meta, indent=2)
    res.history.save(out / "history.json")
    _log(f"  -> {out}/embeddings.txt, history.json, config.json")
    return 0


def _train_word2vec(args: argparse.Namespace, out) -> int:
    """``qwem train --loss sgns --reweight word2vec``: word2vec over the token stream."""
    from ..corpus.tokens import load_tokens
    from ..kernels.sgns_cpu import default_threads
    from ..runtime._atomic import write_json
    from ..runtime.devices import default_device
    from ..vectors import check_words, save_word2vec
    from ..word2vec import Word2VecConfig, train_word2vec

    if args.steps != "auto":
        raise QwemError("word2vec runs for --epochs passes over the corpus; "
                        "--steps does not apply")
    if args.cluster is not None or args.cluster_timeout is not None:
        raise QwemError("--cluster counts a corpus's statistics (qwem embed, theory, "
                        "and train without word2vec's streaming); word2vec itself "
                        "trains in this process")
    config = Word2VecConfig(
        embed_dim=args.dim, window=args.window, negatives=_or(args.negatives, 5),
        subsample=_or(args.subsample, 1e-4), neg_power=_or(args.neg_power, 0.75),
        epochs=_or(args.epochs, 1),
        lr=0.025 if args.lr == "auto" else _auto_or(args.lr, float),
        shared_negatives=not args.pair_negatives,
        batch_size=_or(args.batch_size, 64), tied=not args.untied,
        init_scale=args.init_scale, seed=args.seed,
        dtype=args.dtype or "float32")
    device = default_device(args.device)
    how = (f"{args.threads or default_threads()} thread(s)" if device.type == "cpu"
           else f"batch {config.batch_size}, device={device}")
    _log(f"qwem train: word2vec (SGNS, {'tied' if config.tied else 'untied'}), "
         f"V={args.vocab_size}, d={args.dim}, window {config.window}, "
         f"k={config.negatives}, subsample {config.subsample:g}, "
         f"{config.epochs} epoch(s), {how}")
    t0 = time.perf_counter()
    tokens = load_tokens(_corpus(args), args.vocab_size, scheme=args.scheme,
                         progress=not args.quiet)
    _log(f"  read+tokenise {time.perf_counter() - t0:8.2f} s  "
         f"({len(tokens.ids):,} tokens in vocabulary)")
    words = list(tokens.vocab.words)
    check_words(words, "qwem train")          # before the run, not at its end
    t0 = time.perf_counter()
    res = train_word2vec(config, tokens.ids, args.vocab_size,
                         words=words if args.analogy else None, device=device,
                         threads=args.threads, out_dir=out, resume=args.resume,
                         overwrite=True, run_info=_run_info(args),
                         progress=not args.quiet,
                         n_checkpoints=_or(args.checkpoints, 30))
    seconds = time.perf_counter() - t0
    rate = "" if args.resume else \
        f"{config.epochs * len(tokens.ids) / seconds:,.0f} words/s, "
    _log(f"  train         {seconds:8.2f} s  ({res.steps:,} steps, {rate}"
         f"final loss per pair {res.history.loss[-1]:.4f})")
    save_word2vec(out / "embeddings.txt", words, res.W)
    meta = {"train": config.to_dict(), "model": "word2vec", "corpus": _corpus(args),
            "vocab_size": args.vocab_size, "window": args.window,
            "scheme": args.scheme, "lr": res.lr, "steps": res.steps,
            "dt_per_step": res.dt, "checkpoint_words": res.checkpoint_words,
            "engine": res.engine, "threads": res.threads, "source": tokens.source}
    write_json(out / "config.json", meta, indent=2)
    _log(f"  -> {out}/embeddings.txt, history.json, config.json")
    return 0


def _cmd_theory(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..dynamics import init_scale_to_s2, mode_trajectory, timescales
    from ..runtime._atomic import check_outputs, write_json
    from ..spectral import top_eigh
    from ..train import TrainConfig

    if not args.init_scale > 0:
        raise QwemError(f"--init-scale must be > 0 (training starts from small "
                        f"random weights; the paper's is 1e-8), got {args.init_scale:g}")
    TrainConfig(init_scale=args.init_scale)  # S^2 neither under- nor overflows
    if args.points < 2:
        raise QwemError(f"--points must be at least 2, got {args.points}")
    check_outputs([("--out", args.out)], _corpus_input(args, [("--out", args.out)]))
    _check_sink("--out", args.out)
    _tokens, _P, _u, M, _device = _mstar_inputs(args, eigen=True)
    del _P, _u
    eig = top_eigh(M, args.dim, work_dtype=torch.float32)
    lam = eig.eigvals.cpu().numpy()
    n_pos = int((lam > 0).sum())
    if n_pos < len(lam):
        raise QwemError(f"only {n_pos} of the top {len(lam)} eigenvalues of M* are "
                        "positive, and a mode with lambda <= 0 is never learned (its "
                        f"timescale is infinite); choose --dim <= {n_pos}")
    s2_0 = init_scale_to_s2(args.init_scale, args.dim, args.vocab_size)
    ts = timescales(lam, s2_0)
    tau = np.asarray(ts.tau, dtype=float)
    t_grid = np.geomspace(tau[0] / 100, 2 * tau[-1], args.points)
    curves = mode_trajectory(t_grid, lam, s2_0).cpu().numpy()
    print(f"{'k':>4} {'lambda_k':>10} {'tau_k':>10} {'t_half':>10}")
    for k in range(len(lam)):
        print(f"{k + 1:4d} {lam[k]:10.4g} {tau[k]:10.4g} {float(ts.t_half[k]):10.4g}")
    if args.out:
        report = {"init_scale": args.init_scale, "s2_0": s2_0,
                  "eigvals": lam.tolist(), "tau": tau.tolist(),
                  "t_half": np.asarray(ts.t_half, dtype=float).tolist(),
                  "t": t_grid.tolist(), "s2": curves.tolist()}
        write_json(args.out, report)
    return 0


def _dims(text: str | None, dim: int) -> list[int]:
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


def _cmd_tasks(args: argparse.Namespace) -> int:
    from ..corpus.data import eval_path
    from ..rmt import category_report, principal_axes, task_vectors
    from ..runtime._atomic import check_outputs, write_json
    from ..vectors import load_word2vec

    check_outputs([("--out", args.out)],
                  [("FILE", args.file),
                   ("--questions", args.questions or eval_path("questions-words"))])
    _check_sink("--out", args.out)
    words, W = load_word2vec(args.file, args.format)
    dims = _dims(args.dims, W.shape[1])
    tasks = task_vectors(principal_axes(W), words, args.questions)
    if not tasks:
        raise QwemError(f"no analogy category has two pairs with both words in the "
                        f"{len(words):,}-word vocabulary of {args.file}; use larger "
                        "embeddings or another --questions file")
    reports = [category_report(tv, dims) for tv in tasks.values()]
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
    if args.out:
        write_json(args.out, {"file": str(args.file), "dims": dims,
                              "categories": reports}, indent=2)
    return 0


def _cmd_neighbors(args: argparse.Namespace) -> int:
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


def _cmd_shard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..corpus.data import resolve_corpus
    from ..corpus.splitter import split_corpus

    t0 = time.perf_counter()
    path, _spec = resolve_corpus(args.file)  # a registry name or a file
    paths = split_corpus(path, args.parts, Path(args.out), progress=not args.quiet)
    size = sum(p.stat().st_size for p in paths)
    _log(f"qwem shard: {args.file} -> {len(paths)} files in {args.out} "
         f"({size / 1e6:,.1f} MB, {time.perf_counter() - t0:.1f} s)")
    for path in paths:
        print(path)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
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
    _log(f"qwem data: {args.name} is {path} ({path.stat().st_size / 1e6:,.1f} MB, "
         f"{time.perf_counter() - t0:.1f} s)")
    print(path)
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings of qwem (and the libraries it calls) as one line each."""
    print(f"qwem: warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qwem`` console script."""
    _safe_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    stdout = sys.stdout
    try:
        sys.stdout = _Stdout(stdout)
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                code = args.func(args)
            sys.stdout.flush()      # a failing stdout (a full disk) is reported here
        finally:
            sys.stdout = stdout
        return code
    except _StdoutError as exc:
        _drop_stdout()
        print(f"qwem: error: cannot write to standard output: "
              f"{exc.cause.strerror or exc.cause}; send it to a file with free space "
              "(or a pipe)", file=sys.stderr)
        return 2
    except QwemError as exc:
        print(f"qwem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qwem: interrupted; no partial output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `qwem tasks ... | head`): stop quietly.  Point
        # stdout at devnull so that the interpreter's final flush does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.filename is None:           # not a path: a bug, with its traceback
            raise
        print(f"qwem: error: {_path_error(args, exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
