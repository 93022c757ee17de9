"""A corpus of several files, counted one file at a time: here, or on a Dask cluster.

A full Wikipedia dump (4–5 billion tokens) does not fit in memory as one token array,
and reading it on one core takes most of a day.  Its statistics need neither: the
word counts and the window co-occurrence counts of a corpus are sums over its files,
as long as no window reaches from one file into the next.  So a corpus given as a
folder, a glob or several files (:func:`qwem_lib.corpus.data.resolve_corpora`) is
counted as a map-reduce over its files, the *shards*::

    pass 1  shard ─(read, normalise, tokenise)─▶ its words and counts ─▶ top-V vocabulary
    pass 2  shard ─(its tokens, mapped to the vocabulary)─▶ sparse counts ─▶ summed

Each shard's tokens are read once, in pass 1, and kept in the token cache of
:func:`qwem_lib.corpus.load_tokens` (keyed by the file's content), where pass 2 finds
them: on a cluster pass 2 sends each shard to the worker that read it (a loose
restriction: another worker takes it, and reads it again, if that one is gone), so the
workers' caches need not be shared.  Shards are sent as absolute paths.  A shard's
counts are symmetric, so only their upper triangle is kept, sent and summed
(:func:`qwem_lib.corpus.cooccurrence.upper_triangle`, 12 bytes per stored pair), and the
total is mirrored at the end.  A task holds one shard's tokens and one count matrix, so a
worker's memory is bounded by the largest shard's task plus the partial sum it holds
(at most the corpus's distinct pairs), whatever the number of shards; the client holds
the summed, mirrored counts.
The counts are exact: integer window weights give integer sums, which float64 adds
exactly in any order, so the result is the same bit for bit wherever and in whatever
order the shards are counted.

Without a cluster the shards are counted one after the other in this process (each
with all its threads).  With one (``cluster=``: a ``distributed.Client``, the address
of a running scheduler such as ``"tcp://host:8786"``, or ``"local:N"`` for N local
worker processes) every shard is a task on the cluster's workers.  Each worker adds
the counts it makes to a partial sum that it keeps (no transfer); at the end the
workers' partial sums are added two at a time and the client receives one matrix.
A worker that dies mid-task (killed, out of memory, its machine gone) costs only a
rerun of its tasks, which Dask schedules on the others.  Dask is optional (``pip
install -e '.[cluster]'`` in the checkout) and imported only when a cluster is used.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..runtime.errors import QwemError
from ..runtime.options import check_real
from . import data
from .subsampling import keep_probs
from .tokens import FileCounts, _resolve_scheme, read_file_counts
from .vocabulary import Vocabulary, _canonical_order

__all__ = ["Shard", "CorpusCounts", "Cluster", "check_address", "shards_of",
           "is_sharded", "connect", "count_vocabulary", "count_corpus"]

_LOCAL = "local:"
#: Seconds a run waits, by default, for the scheduler, its first worker, and a worker
#: after the cluster has lost every one.
LOST_AFTER = 60.0


@dataclass(frozen=True)
class Cluster:
    """Where to count, and how long to wait for it (``qwem … --cluster ADDRESS
    --cluster-timeout SECONDS``).

    Attributes
    ----------
    address : str
        ``"tcp://host:8786"``, ``"host:8786"`` or ``"local:N"`` (see :func:`connect`).
    timeout : float
        Seconds to wait for the scheduler and its first worker, and, during a run,
        for a worker after the cluster has lost every one (then the run stops with
        one line instead of waiting for ever).
    """

    address: str
    timeout: float = LOST_AFTER

    def __post_init__(self):
        object.__setattr__(self, "address", check_address(self.address))
        object.__setattr__(self, "timeout", check_real(
            self.timeout, "the cluster timeout", "--cluster-timeout", gt=0, lt=1e6,
            why="seconds"))


_MAX_LOCAL = 1024
_ADDRESS = re.compile(r"(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):"
                      r"([0-9]{1,5})/?")


def check_address(address) -> str:
    """``address`` if it names a Dask scheduler we can reach (``tcp://host:port``,
    ``tls://host:port``, ``host:port``) or local workers (``local:N``, 1 <= N <=
    1024), else one :class:`QwemError` line; checked before any cache is read."""
    if not isinstance(address, str) or not address.strip():
        raise QwemError(f"--cluster: give a scheduler address such as "
                        f"tcp://host:8786, or local:N; got {address!r}")
    address = address.strip()
    if address.startswith(_LOCAL):
        n = address[len(_LOCAL):]
        if not n.isdigit() or not 1 <= int(n) <= _MAX_LOCAL:
            raise QwemError(f"--cluster {address}: after 'local:' give the number of "
                            f"worker processes to start, 1 to {_MAX_LOCAL}, e.g. "
                            "local:4")
        return address
    m = _ADDRESS.fullmatch(address)
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise QwemError(f"--cluster {address!r} is not a Dask scheduler address: give "
                        "tcp://HOST:PORT (as `dask scheduler` prints it), HOST:PORT, "
                        "or local:N for N worker processes here")
    return address


@dataclass(frozen=True)
class Shard:
    """One file of a corpus and how to read it.

    ``index`` is its place in the corpus (files are read in sorted order); it
    seeds the file's subsampling draws.
    """

    path: str
    format: str
    scheme: str
    min_article_tokens: int
    index: int


@dataclass(frozen=True, eq=False)
class CorpusCounts:
    """What counting a sharded corpus gives besides the pair counts.

    Attributes
    ----------
    vocab : qwem_lib.corpus.Vocabulary
        The V most frequent words over all shards (the canonical order of
        :class:`~qwem_lib.corpus.Vocabulary`: counts descending, then the word).
    n_tokens : int
        Tokens read, over all shards.
    n_kept : int
        In-vocabulary tokens (the sum of ``vocab.counts``).
    source : str
        What was read.
    files : tuple of str
        The shards, in corpus order (absolute paths).
    placement : dict
        On a cluster: shard index -> the worker that read it (empty here).
    """

    vocab: Vocabulary
    n_tokens: int
    n_kept: int
    source: str
    files: tuple
    placement: dict = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Fraction of tokens that are in the vocabulary."""
        return self.n_kept / self.n_tokens if self.n_tokens else 0.0

    def __repr__(self) -> str:
        return (f"CorpusCounts({self.n_kept:,} of {self.n_tokens:,} tokens kept, "
                f"V={len(self.vocab)}, {len(self.files)} files)")


def shards_of(corpus, scheme: str = "auto", min_article_tokens: int = 0, *,
              download: bool = True) -> list[Shard]:
    """The shards of a corpus (a name, file, folder, glob, or a list of them).

    ``scheme="auto"`` is resolved per file as :func:`qwem_lib.corpus.load_tokens`
    does; plain-text files have no articles, so ``min_article_tokens`` is 0 for them.
    """
    shards = []
    for index, (path, spec) in enumerate(data.resolve_corpora(corpus,
                                                              download=download)):
        fmt = spec.format
        # absolute: a worker on another machine (or in another folder) must not
        # resolve a relative path against its own working directory
        shards.append(Shard(os.fspath(Path(path).absolute()), fmt,
                            _resolve_scheme(scheme, spec),
                            0 if fmt == "plain" else int(min_article_tokens), index))
    return shards


def is_sharded(corpus) -> bool:
    """Whether ``corpus`` names more than one file (a folder, a glob, a list)."""
    return len(data.resolve_corpora(corpus)) > 1


# --------------------------------------------------------------------------------------
# The tasks (module-level functions: a Dask worker imports them from qwem_lib)


def _worker():
    """The Dask worker running this task, or None (not on a cluster)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # no Dask, or not in a worker's task
        return None


def _task_threads() -> int:
    """Threads for a task's compiled kernels: the Dask worker's threads when run on
    one (a worker started with ``--nthreads 1`` gets one), else torch's."""
    worker = _worker()
    if worker is not None:
        return max(1, int(getattr(getattr(worker, "state", worker), "nthreads", 1)))
    import torch

    return torch.get_num_threads()


def _read(shard: Shard, cache: bool) -> FileCounts:
    if not Path(shard.path).is_file():
        where = "" if _worker() is None else " on the machine of a Dask worker"
        raise QwemError(f"corpus file {shard.path} cannot be found{where}; every "
                        "worker must see the corpus files at the same path (a shared "
                        "file system, or a copy at that path)")
    try:
        return read_file_counts(shard.path, shard.format, shard.scheme,
                                shard.min_article_tokens, cache=cache)
    except OSError as exc:  # e.g. permission denied, an I/O error of the disk
        raise QwemError(f"cannot read {shard.path} ({exc.strerror or exc}); check "
                        "the file, or remove it from the corpus") from None


def words_task(shard: Shard, cache: bool = True):
    """Pass 1 for one shard: ``(words, counts, n_tokens)``: all its distinct words,
    joined by newlines into one bytes object (one object, not a list of a million,
    is what a cluster sends quickly), and their counts (int64)."""
    counted = _read(shard, cache)
    return b"\n".join(counted.words), counted.counts, counted.n_tokens


def pairs_task(shard: Shard, vocab_words: bytes, window: int, weighting,
               keep: np.ndarray | None, draws: int, cache: bool = True):
    """Pass 2 for one shard: its window counts over the vocabulary ``vocab_words``
    (the words in id order, joined by newlines): the upper triangle (diagonal
    included) of the symmetric ``(V, V)`` counts, a scipy CSR matrix.  Half the
    entries are all that is sent and summed; :func:`count_corpus` mirrors the sum.

    With ``keep`` (each word's keep probability), ``draws`` subsamplings of the
    shard's tokens are counted and summed; draw ``d`` of the shard at ``index`` uses
    the seed ``[draws, d, index]`` (``[draws, d]`` for the first shard, the seed of a
    single-file corpus).
    """
    from .cooccurrence import add_counts, count_pairs_sparse, upper_triangle

    counted = _read(shard, cache)
    vocab_words = vocab_words.split(b"\n")
    V = len(vocab_words)
    to_id = {w: i for i, w in enumerate(vocab_words)}
    lut = np.fromiter((to_id.get(w, -1) for w in counted.words), np.int32,
                      len(counted.words))
    del to_id
    ids = lut[counted.ids] if len(lut) else np.zeros(0, np.int32)
    del counted
    ids = ids[ids >= 0]
    threads = _task_threads()
    if keep is None:
        C = count_pairs_sparse(ids, V, window, weighting, n_threads=threads)
        return upper_triangle(C, n_threads=threads)
    total = None
    p = keep[ids]
    for draw in range(draws):
        seed = [draws, draw] if shard.index == 0 else [draws, draw, shard.index]
        kept = ids[np.random.default_rng(seed).random(len(ids)) < p]
        C = count_pairs_sparse(kept, V, window, weighting, n_threads=threads)
        total = C if total is None else add_counts(total, C, n_threads=threads)
    return upper_triangle(total, n_threads=threads)


def add_task(a, b):
    """The sum of two shards' (or partial sums') counts (exact)."""
    from .cooccurrence import add_counts

    return add_counts(a, b, n_threads=_task_threads())


# --------------------------------------------------------------------------------------
# Running them: in this process, or on a Dask cluster


def _dask():
    try:
        import distributed
    except ImportError:
        raise QwemError("a cluster needs Dask's distributed scheduler, which is not "
                        "installed: pip install -e '.[cluster]' in the qwem-book "
                        "checkout (or pip install 'dask[distributed]')") from None
    return distributed


@contextmanager
def connect(cluster, *, timeout: float = 20.0) -> Iterator:
    """A ``distributed.Client`` for ``cluster``, closed on exit (with the cluster
    when this started one).

    Parameters
    ----------
    cluster : str, Cluster or distributed.Client
        ``"local:N"``: start N worker processes here, one thread each (the
        scheduler runs in this process).  An address (``"tcp://host:8786"``,
        ``"host:8786"``): a running scheduler, as started by ``dask scheduler`` and
        ``dask worker ADDRESS``, dask-jobqueue (Slurm, PBS, …) or a Kubernetes
        operator.  A Client: used as it is (and not closed).
    timeout : float
        Seconds to wait for the scheduler, and for its first worker.
    """
    distributed = _dask()
    if isinstance(cluster, distributed.Client):
        yield cluster
        return
    if isinstance(cluster, Cluster):
        cluster, timeout = cluster.address, cluster.timeout
    cluster = check_address(cluster)
    local = None
    if cluster.startswith(_LOCAL):
        n = cluster[len(_LOCAL):]
        import logging

        # no dashboard; the scheduler's HTTP server (health checks) on a free port,
        # not 8787 (taken: a warning of several lines)
        local = distributed.LocalCluster(
            n_workers=int(n), threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        target = local
    else:
        target = cluster
    client = None
    try:
        client = _client(distributed, target, cluster, timeout)
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise QwemError(f"the Dask scheduler at {cluster} has no workers "
                            f"after {timeout:g} s; start some with `dask worker "
                            f"{cluster}`") from None
        yield client
    finally:
        if local is None:
            if client is not None:
                client.close()
        else:
            _close_quietly(client, local)


#: Loggers that report a local cluster's shutdown as errors (a worker's heartbeat
#: to a scheduler that has just closed: CommClosedError, with a traceback).
_SHUTDOWN_LOGGERS = ("distributed", "tornado", "asyncio")


def _shutdown_loggers() -> list:
    """The loggers of :data:`_SHUTDOWN_LOGGERS` and those below them that have a
    level of their own (Dask's configuration sets some, e.g.
    ``tornado.application``)."""
    import logging

    names = set(_SHUTDOWN_LOGGERS)
    names.update(name for name, logger in list(logging.root.manager.loggerDict.items())
                 if isinstance(logger, logging.Logger) and logger.level
                 and name.split(".")[0] in _SHUTDOWN_LOGGERS)
    return [logging.getLogger(name) for name in sorted(names)]


def _quiet_shutdown() -> None:
    """Run on each worker of a local cluster about to be closed: the shutdown's
    connection errors are not worth a traceback on the user's terminal."""
    import logging

    for logger in _shutdown_loggers():
        logger.setLevel(logging.CRITICAL)


def _close_quietly(client, local) -> None:
    """Close the client, then the local cluster this process started, without the
    shutdown noise of ``distributed`` (a worker's heartbeat to the scheduler that
    has just closed is logged as an error with a traceback, in the workers and
    here).  Real errors of the run have been raised by then; the loggers' levels
    here are restored after."""
    import contextlib
    import logging

    if client is not None:
        with contextlib.suppress(Exception):  # workers already gone: nothing to quiet
            client.run(_quiet_shutdown, on_error="ignore")
    loggers = _shutdown_loggers()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        if client is not None:
            client.close()
        local.close()
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _client(distributed, target, address: str, timeout: float):
    """``distributed.Client(target)``, or one line within about ``timeout`` seconds.

    The client is made in a thread of its own and waited for with a deadline:
    Dask's own timeout covers connecting, not a peer that accepts the connection and
    then never speaks Dask (an HTTP server kept it waiting for ever), and a peer that
    answers something else can make it fail in odd ways (a 400 reply read as a
    message length asked for exabytes)."""
    import threading

    box: dict = {}

    def make():
        try:
            box["client"] = distributed.Client(target, timeout=timeout)
        except BaseException as exc:          # reported in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=make, name="qwem-connect", daemon=True)
    thread.start()
    thread.join(timeout + 10)
    fix = (f"start one (`dask scheduler`, then `dask worker {address}` on each "
           "machine), check the address, or use --cluster local:N")
    if "client" in box:
        return box["client"]
    if thread.is_alive():
        raise QwemError(f"no Dask scheduler answered at {address} within "
                        f"{timeout + 10:g} s (something listens there, but it does not "
                        f"speak Dask's protocol); {fix}")
    exc = box.get("error")
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise exc
    raise QwemError(f"cannot reach the Dask scheduler at {address} "
                    f"({type(exc).__name__}: {str(exc)[:200] or 'no message'}); "
                    f"{fix}") from None


def _failed(exc: BaseException, shard: Shard | None) -> QwemError | None:
    """A QwemError for a cluster failure that is not a bug (a task that kept killing
    its workers), or None."""
    if type(exc).__name__ == "KilledWorker":
        what = f"counting {shard.path}" if shard else "summing the counts"
        return QwemError(f"{what} was lost with the worker running it several times "
                         f"over ({exc}); the workers probably run out of memory: "
                         "give them more, or split the corpus into smaller shards "
                         "(qwem shard)")
    return None


def _watch_workers(client, lost_after: float, pending, lost: list):
    """A thread that cancels the run's waiting tasks (``pending``, an
    ``as_completed``) once the cluster has had no worker for ``lost_after`` seconds
    (a cancelled task then ends the run's loop); returns the event that stops it."""
    import threading
    import time

    stop = threading.Event()

    def watch():
        since = None
        while not stop.wait(min(1.0, lost_after / 4)):
            try:
                n = len(client.nthreads())
            except Exception:  # the scheduler itself is gone: as lost
                n = 0
            if n:
                since = None
                continue
            since = since or time.monotonic()
            if time.monotonic() - since >= lost_after:
                lost.append(lost_after)
                with pending.lock:
                    waiting = list(pending.futures)
                try:
                    client.cancel(waiting)
                except Exception:  # the scheduler is gone too: its futures end anyway
                    pass
                return

    threading.Thread(target=watch, name="qwem-watch-workers", daemon=True).start()
    return stop


def _locality() -> bool:
    """Pass 2 goes where pass 1 read the shard (its tokens are cached there);
    ``QWEM_SHARD_LOCALITY=0`` turns that off (bench/cluster.py measures both)."""
    return os.environ.get("QWEM_SHARD_LOCALITY", "1").strip() != "0"


def _submit_all(client, fn, shards: list[Shard], args: tuple, prefer: dict | None):
    """``fn(shard, *args)`` submitted for every shard, on the worker ``prefer`` names
    for it if it can; the futures, in the shards' order."""
    futures = []
    for shard in shards:
        where = (prefer or {}).get(shard.index)
        place = ({"workers": [where], "allow_other_workers": True}
                 if where is not None else {})
        futures.append(client.submit(fn, shard, *args, pure=False, **place))
    return futures


def _submit_add(client, pending, a, b, where=None) -> None:
    """The sum of ``a`` and ``b`` submitted (on ``where`` if it can, before any
    shard still waiting) and added to ``pending``."""
    place = {} if where is None else {"workers": [where], "allow_other_workers": True}
    pending.add(client.submit(add_task, a, b, priority=10, pure=False, **place))


def _check_finished(fut, shard: Shard | None, lost: list) -> None:
    """Nothing if the task ``fut`` (of ``shard``, None for a sum) finished; else
    the one line that says why not: every worker lost, the task's own error, or a
    shut-down scheduler or client."""
    if fut.status == "finished":
        return
    if lost:
        raise QwemError(f"the Dask cluster has had no worker for {lost[0]:g} s "
                        "(all lost, none came back); start workers (`dask worker "
                        "ADDRESS`) and run again, or wait longer with "
                        "--cluster-timeout")
    try:
        fut.result()
    except Exception as exc:  # the task's own error, re-raised here
        raise _failed(exc, shard) or exc
    raise QwemError(f"a task on the cluster was {fut.status}: the scheduler or the "
                    "client was shut down; run again")


def _add_across(client, pending, held: dict) -> None:
    """Add the workers' partial sums (``held``, one per worker) two at a time; one
    left over stays in ``held``."""
    partial = list(held.values())
    held.clear()
    for a, b in zip(partial[0::2], partial[1::2]):
        _submit_add(client, pending, a, b)
    if len(partial) % 2:
        held[None] = partial[-1]


def _gather(client, pending, of_shard: dict, bar, sink, lost: list):
    """Wait for the tasks of ``pending`` as they finish: each shard's result to
    ``sink``, or into its worker's partial sum, and the partial sums added until
    one is left.  Returns ``(sum or None, placement)``."""
    held: dict = {}  # worker address -> the partial sum it holds
    placement: dict = {}
    while True:
        for fut in pending:
            shard = of_shard.get(fut.key)
            _check_finished(fut, shard, lost)
            where = next(iter(client.who_has([fut]).get(fut.key, ())), None)
            if shard is not None:
                bar.update(1)
                placement[shard.index] = where
            if sink is not None:
                sink(fut.result())
                continue
            if where in held:
                _submit_add(client, pending, held.pop(where), fut, where)
            else:
                held[where] = fut
            del fut
        if len(held) <= 1:
            break
        _add_across(client, pending, held)
    total = next(iter(held.values())).result() if held else None
    return total, placement


def _on_cluster(client, fn, shards: list[Shard], args: tuple, bar, sink=None,
                prefer: dict | None = None, lost_after: float = 60.0):
    """Run ``fn(shard, *args)`` for every shard on the cluster.

    With ``sink``: pass each result to it as it comes (on the client).  Without:
    sum the results on the workers as they finish.  A result is first added to the
    partial sum held by the worker that computed it (no transfer; the additions go
    before any shard still waiting, ``priority``), so that a worker holds one
    partial sum beside the shard it counts; when every shard is done, the workers'
    partial sums are added two at a time (the only transfers) and the total comes to
    the client.

    ``prefer``: shard index -> the worker to run it on if it can (where pass 1 left
    the shard's tokens in that worker's cache; another worker takes it if that one
    is gone or busy, ``allow_other_workers``).  A cluster without any worker for
    ``lost_after`` seconds stops the run with one line.

    Returns ``(sum or None, placement)``, placement: shard index -> the worker that
    ran it.
    """
    distributed = _dask()
    futures = _submit_all(client, fn, shards, args, prefer)
    of_shard = {f.key: s for f, s in zip(futures, shards)}
    pending = distributed.as_completed(futures)
    del futures  # as_completed drops each future once returned: its memory frees
    lost: list = []
    stop = _watch_workers(client, lost_after, pending, lost)
    try:
        return _gather(client, pending, of_shard, bar, sink, lost)
    finally:
        stop.set()
        left = list(pending.futures)
        if left:
            client.cancel(left)


def _in_process(fn, shards: list[Shard], args: tuple, bar, sink=None):
    total = None
    for shard in shards:
        result = fn(shard, *args)
        bar.update(1)
        if sink is not None:
            sink(result)
        else:
            total = result if total is None else add_task(total, result)
        del result
    return total, {}


def _run(client, fn, shards, args, bar, sink=None, prefer=None,
         lost_after: float = 60.0):
    """``fn(shard, *args)`` for every shard: each result to ``sink``, or summed;
    returns ``(sum or None, placement)`` (see :func:`_on_cluster`)."""
    if client is None:
        return _in_process(fn, shards, args, bar, sink)
    return _on_cluster(client, fn, shards, args, bar, sink, prefer, lost_after)


class _WordTotals:
    """Word counts summed over the shards as they come (in any order: the sums
    are the same)."""

    def __init__(self):
        self.counts: dict[bytes, int] = {}
        self.n_tokens = 0

    def add(self, result) -> None:
        words, counts, n = result
        words = words.split(b"\n") if len(counts) else []
        total = self.counts
        get = total.get
        for word, c in zip(words, counts.tolist()):
            total[word] = get(word, 0) + c
        self.n_tokens += int(n)

    def arrays(self) -> tuple[list[bytes], np.ndarray]:
        words = list(self.counts)
        return words, np.fromiter(self.counts.values(), np.int64, len(words))


def _top(words: list[bytes], counts: np.ndarray, vocab_size: int) -> np.ndarray:
    """Indices of the ``vocab_size`` first words in the canonical order (counts
    descending, then the word), as :func:`qwem_lib._canonical_order` would
    rank them among all words."""
    if vocab_size < len(words):  # only words at least as frequent as the V-th can be
        nth = np.partition(counts, len(counts) - vocab_size)[len(counts) - vocab_size]
        candidates = np.flatnonzero(counts >= nth)
    else:
        candidates = np.arange(len(words))
    order = _canonical_order([words[i] for i in candidates], counts[candidates])
    return candidates[order[:vocab_size]]


def _progress(progress: bool, total: int, desc: str):
    from ..runtime.progress import bar

    return bar(progress, total=total, desc=desc, unit="file")


def count_vocabulary(shards: list[Shard], vocab_size: int, *, client=None,
                     progress: bool = False, cache: bool = True,
                     lost_after: float = 60.0) -> CorpusCounts:
    """Pass 1: the top-``vocab_size`` vocabulary of the shards, with token counts.

    ``client``: a ``distributed.Client`` (see :func:`connect`), or None to read
    the shards here one after the other.  ``counts.placement`` says which worker
    read each shard (pass 2 goes there: its tokens are in that worker's cache).
    """
    totals = _WordTotals()
    with _progress(progress, len(shards), "pass 1/2: words") as bar:
        _, placement = _run(client, words_task, shards, (cache,), bar,
                            sink=totals.add, lost_after=lost_after)
    words, counts = totals.arrays()
    n_tokens = totals.n_tokens
    if n_tokens == 0:
        raise QwemError(f"the corpus ({len(shards)} files, e.g. {shards[0].path}) has "
                        "no tokens after normalisation; check the files and their "
                        "format, or lower min_article_tokens")
    if vocab_size > len(words):
        raise QwemError(f"the corpus has only {len(words):,} distinct words; choose "
                        f"--vocab-size ≤ {len(words):,} or a larger corpus")
    top = _top(words, counts, vocab_size)
    errors = ("surrogateescape" if any(s.scheme == "none" for s in shards)
              else "strict")
    vocab = Vocabulary(tuple(words[i].decode("utf-8", errors) for i in top),
                       counts[top])
    first = shards[0]
    source = (f"{len(shards)} files ({first.path}, …; format={first.format}, "
              f"scheme={first.scheme}, min_article_tokens={first.min_article_tokens})")
    return CorpusCounts(vocab, n_tokens, int(vocab.counts.sum()), source,
                        tuple(s.path for s in shards), placement)


def count_corpus(config, *, cluster=None, progress: bool = True, cache: bool = True,
                 stage=None):
    """Vocabulary and window counts of ``config.corpus``, shard by shard.

    Parameters
    ----------
    config : qwem_lib.pipeline.EmbedConfig
        Corpus (one or several files), V, scheme, article filter, window,
        weighting and subsampling.
    cluster : str or distributed.Client, optional
        Where the shards are counted (see :func:`connect`); None: here.
    progress : bool
        Bars over the shards of each pass (fed by the scheduler on a cluster).
    cache : bool
        Read and fill the token cache (pass 2 reads each shard's tokens from it;
        without it each shard is read twice).
    stage : callable, optional
        ``stage(name)`` gives a context manager around each pass (``"read+tokenise"``,
        ``"count"``), e.g. :meth:`qwem_lib.pipeline.Stopwatch.stage`.

    Returns
    -------
    counts : CorpusCounts
    C : (V, V) scipy.sparse.csr_matrix, float64
        The symmetric window counts, summed over the shards (windows do not cross
        files), equal bit for bit wherever the shards were counted.
    """
    shards = shards_of(config.corpus, config.scheme, config.min_article_tokens)
    stage = stage or (lambda name: nullcontext())
    if cluster is None:
        return _count(shards, config, None, progress, cache, stage)
    lost_after = cluster.timeout if isinstance(cluster, Cluster) else LOST_AFTER
    with connect(cluster) as client:
        return _count(shards, config, client, progress, cache, stage, lost_after)


def _count(shards, config, client, progress: bool, cache: bool, stage,
           lost_after: float = 60.0):
    from .cooccurrence import mirror_upper

    with stage("read+tokenise"):
        counts = count_vocabulary(shards, config.vocab_size, client=client,
                                  progress=progress, cache=cache,
                                  lost_after=lost_after)
    vocab_words = b"\n".join(w.encode("utf-8", "surrogateescape")
                              for w in counts.vocab.words)
    keep = (keep_probs(counts.vocab.counts, config.subsample).numpy()
            if config.subsample else None)
    args = (vocab_words, config.context_len, config.weighting, keep,
            config.subsample_draws, cache)
    with stage("count"), _progress(progress, len(shards), "pass 2/2: pairs") as bar:
        upper, _ = _run(client, pairs_task, shards, args, bar,
                        prefer=counts.placement if _locality() else None,
                        lost_after=lost_after)
        C = mirror_upper(upper)
    return counts, C
