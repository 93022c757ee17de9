"""A corpus of several files, counted file by file here and on a Dask cluster
(qwem_lib.corpus.shards): the counts against an independent per-file count, windows that
stop at file boundaries, the same result bit for bit on a cluster (also when a
worker is killed mid-run), and one-line errors for shards that cannot be read."""

import bz2
import collections
import gzip
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from qwem_lib import corpus, pipeline
from qwem_lib.cli import main
from qwem_lib.corpus import data, shards
from qwem_lib.corpus.cooccurrence import count_pairs_naive
from qwem_lib.pipeline import EmbedConfig, closed_form
from qwem_lib.runtime.errors import QwemError

pytestmark = pytest.mark.usefixtures("isolated_cache")

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def words_of(seed: int, n: int) -> list[str]:
    """Zipf-distributed words made of letters (so the paper scheme keeps them)."""
    rng = np.random.default_rng(seed)
    vocab = ["".join(rng.choice(list(LETTERS), size=rng.integers(2, 7)))
             for _ in range(300)]
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    return list(rng.choice(vocab, size=n, p=p / p.sum()))


def write(path, text: str):
    raw = text.encode()
    if path.suffix == ".gz":
        raw = gzip.compress(raw, mtime=0)
    elif path.suffix == ".bz2":
        raw = bz2.compress(raw)
    path.write_bytes(raw)
    return path


@pytest.fixture
def folder(tmp_path):
    """Four files (plain, gzip, bz2, plain) of one corpus, and their words."""
    root = tmp_path / "shards"
    root.mkdir()
    names = ["a.txt", "b.txt.gz", "c.txt.bz2", "d.txt"]
    texts = {}
    for i, name in enumerate(names):
        words = words_of(i, 3000 + 500 * i)
        lines = [" ".join(words[k:k + 40]) for k in range(0, len(words), 40)]
        write(root / name, "\n".join(lines) + "\n")
        texts[name] = words
    (root / ".hidden").write_text("never read\n")
    return root, texts


def reference(texts: dict, V: int, window: int):
    """Vocabulary from all words, counts summed over the files (naive loop)."""
    totals = collections.Counter(w for ws in texts.values() for w in ws)
    vocab = corpus.Vocabulary.from_counts(totals, V)
    C = np.zeros((V, V))
    for name in sorted(texts):
        ids = np.array([vocab.word_to_id.get(w, -1) for w in texts[name]], np.int64)
        C += count_pairs_naive(ids[ids >= 0], V, window)
    return vocab, C, sum(len(ws) for ws in texts.values())


# ----------------------------------------------------------------------------------
# Finding the files


def test_folder_glob_and_list_resolve_to_the_same_sorted_files(folder):
    root, texts = folder
    want = [root / n for n in sorted(texts)]
    assert [p for p, _ in data.resolve_corpora(root)] == want  # hidden file skipped
    assert [p for p, _ in data.resolve_corpora(str(root / "*.txt*"))] == want
    listed = [str(root / n) for n in reversed(sorted(texts))]
    assert [p for p, _ in data.resolve_corpora(listed)] == want
    assert data.resolve_corpora(str(root / "a.txt"))[0][0] == root / "a.txt"
    assert shards.is_sharded(root) and not shards.is_sharded(str(root / "a.txt"))
    assert [s.index for s in shards.shards_of(root)] == [0, 1, 2, 3]


def test_bad_corpus_lists_are_refused(folder, tmp_path):
    root, _ = folder
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(QwemError, match="holds no corpus files"):
        data.resolve_corpora(empty)
    with pytest.raises(QwemError, match="no corpus file matches"):
        data.resolve_corpora(str(tmp_path / "nothing*.txt"))
    with pytest.raises(QwemError, match="twice"):
        data.resolve_corpora([str(root / "a.txt"), str(root)])
    os.link(root / "a.txt", tmp_path / "hard.txt")       # one file, two names
    with pytest.raises(QwemError, match="twice"):
        data.resolve_corpora([str(root / "a.txt"), str(tmp_path / "hard.txt")])
    (tmp_path / "soft.txt").symlink_to(root / "d.txt")
    with pytest.raises(QwemError, match="twice"):
        data.resolve_corpora([str(tmp_path / "soft.txt"), str(root / "d.txt")])
    with pytest.raises(QwemError, match="one file"):
        corpus.load_tokens(root, 10)


# ----------------------------------------------------------------------------------
# Counting in this process


def test_counts_equal_an_independent_per_file_count(folder):
    root, texts = folder
    cfg = EmbedConfig(corpus=str(root), vocab_size=60, embed_dim=5, context_len=3)
    counts, C = shards.count_corpus(cfg, progress=False)
    vocab, want, n = reference(texts, 60, 3)
    assert counts.vocab == vocab
    assert counts.n_tokens == n and counts.n_kept == int(vocab.counts.sum())
    np.testing.assert_array_equal(C.toarray(), want)
    # ... which is not the count of the files joined: windows stop at file ends
    joined = [w for name in sorted(texts) for w in texts[name]]
    ids = np.array([vocab.word_to_id.get(w, -1) for w in joined], np.int64)
    assert not np.array_equal(count_pairs_naive(ids[ids >= 0], 60, 3), want)


def test_cached_and_uncached_reads_agree(folder):
    root, _ = folder
    cfg = EmbedConfig(corpus=str(root), vocab_size=60, embed_dim=5, context_len=3)
    _, first = shards.count_corpus(cfg, progress=False, cache=True)
    _, again = shards.count_corpus(cfg, progress=False, cache=True)  # from the cache
    _, uncached = shards.count_corpus(cfg, progress=False, cache=False)
    assert (first != again).nnz == 0 and (first != uncached).nnz == 0


def test_one_file_counted_as_a_shard_equals_the_usual_path(folder):
    """Shard 0 is drawn with a single-file corpus's seeds, so even subsampled
    counts agree with the whole-array path."""
    root, _ = folder
    path = str(root / "c.txt.bz2")
    for extra in ({}, {"subsample": 1e-2, "subsample_draws": 2}):
        cfg = EmbedConfig(corpus=path, vocab_size=60, embed_dim=5, context_len=3,
                          **extra)
        counts, C = shards.count_corpus(cfg, progress=False)
        toks = corpus.load_tokens(path, 60, progress=False)
        assert counts.vocab == toks.vocab and counts.n_kept == toks.n_kept
        dense = pipeline._count(toks.ids, cfg, torch.device("cpu"), False).numpy()
        np.testing.assert_array_equal(C.toarray(), dense)
    cfg = EmbedConfig(corpus=path, vocab_size=60, embed_dim=5, context_len=3,
                      weight_power=0.5)
    usual = closed_form(cfg, cache=False, progress=False)
    _, M = pipeline.statistics(cfg, progress=False, cache=False, cluster=None)
    counts, _ = shards.count_corpus(cfg, progress=False)
    torch.testing.assert_close(pipeline._row_scale(counts.vocab.counts, cfg),
                               pipeline.row_scale(
                                   corpus.load_tokens(path, 60).ids, cfg))
    assert usual.words == list(counts.vocab.words)


def test_engines_agree_on_a_folder(folder):
    root, _ = folder
    base = dict(corpus=str(root), vocab_size=80, embed_dim=6, context_len=3)
    dense = closed_form(EmbedConfig(**base, engine="dense"), cache=False,
                        progress=False)
    sparse = closed_form(EmbedConfig(**base, engine="sparse"), cache=False,
                         progress=False)
    assert dense.words == sparse.words
    torch.testing.assert_close(sparse.eigvals, dense.eigvals, rtol=1e-9, atol=0)


def test_an_unreadable_shard_is_one_line_naming_it(folder, tmp_path, capsys):
    root, _ = folder
    bad = root / "b.txt.gz"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated download
    cfg = EmbedConfig(corpus=str(root), vocab_size=20, embed_dim=3, context_len=3)
    with pytest.raises(QwemError, match="b.txt.gz"):
        shards.count_corpus(cfg, progress=False)
    out = tmp_path / "e.txt"
    assert main(["embed", "--corpus", str(root), "--vocab-size", "20", "--dim", "3",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "b.txt.gz" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not out.exists()


def test_without_dask_a_cluster_is_one_line(folder, monkeypatch):
    root, _ = folder
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    cfg = EmbedConfig(corpus=str(root), vocab_size=20, embed_dim=3, context_len=3)
    with pytest.raises(QwemError, match=r"pip install -e '\.\[cluster\]'"):
        shards.count_corpus(cfg, cluster="local:2", progress=False)


@pytest.mark.parametrize("address, message", [
    ("local:0", "number of worker processes"), ("local:x", "number of worker"),
    ("local:-1", "number of worker"), ("local:two", "number of worker"),
    ("local:", "number of worker"), ("local:5000", "1 to 1024"),
    ("", "scheduler address"), ("foo", "not a Dask scheduler address"),
    ("http://127.0.0.1:8786", "not a Dask scheduler address"),
    ("inproc://x", "not a Dask scheduler address"),
    ("host:99999", "not a Dask scheduler address"), (5, "scheduler address")])
def test_bad_cluster_addresses(folder, address, message):
    pytest.importorskip("distributed")
    cfg = EmbedConfig(corpus=str(folder[0]), vocab_size=20, embed_dim=3)
    with pytest.raises(QwemError, match=message):
        shards.count_corpus(cfg, cluster=address, progress=False)


def test_unreachable_scheduler_is_one_line():
    pytest.importorskip("distributed")
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(QwemError, match="cannot reach the Dask scheduler"):
        with shards.connect(f"tcp://127.0.0.1:{port}", timeout=2):
            pass


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 400 Bad Request\r\n"
                                   b"Content-Length: 0\r\n\r\n"])
def test_a_service_that_is_not_dask_is_one_line(reply):
    """A peer that accepts the connection and then says nothing (it used to wait
    for ever) or answers HTTP (it used to ask for exabytes): one line, in time."""
    pytest.importorskip("distributed")
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if reply is not None:
                try:
                    conn.recv(65536)
                    conn.sendall(reply)
                    conn.close()
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(QwemError, match="Dask") as err:
            with shards.connect(f"tcp://127.0.0.1:{port}", timeout=1):
                pass
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert time.monotonic() - t0 < 30
    assert "\n" not in str(err.value)


def test_cluster_options_are_checked_before_any_cache_is_read(folder, capsys):
    """A bad --cluster is refused even when the result is already cached (it used
    to pass, exit 0, whenever the closed form came from the cache)."""
    root, _ = folder
    out = root.parent / "w.txt"
    assert run_embed([str(root)], out) == 0            # now cached
    for bad in ("local:0", "local:two", "foo", ""):
        assert run_embed([str(root)], out, "--cluster", bad) == 2, bad
        assert "--cluster" in capsys.readouterr().err
    assert run_embed([str(root)], out, "--cluster-timeout", "5") == 2
    assert "only with --cluster" in capsys.readouterr().err
    for bad in ("0", "-3", "1e9"):
        assert run_embed([str(root)], out, "--cluster", "local:1",
                         "--cluster-timeout", bad) == 2, bad
        assert "timeout" in capsys.readouterr().err


def test_shards_are_absolute_paths(folder, monkeypatch):
    """A relative folder is shipped to workers as absolute paths, which a worker
    in another working directory resolves to the same files."""
    root, _ = folder
    monkeypatch.chdir(root.parent)
    found = shards.shards_of(root.name)
    assert all(os.path.isabs(s.path) for s in found)
    assert [os.path.basename(s.path) for s in found] == sorted(
        ["a.txt", "b.txt.gz", "c.txt.bz2", "d.txt"])
    assert all(os.path.dirname(s.path) == str(root) for s in found)


# ----------------------------------------------------------------------------------
# On a Dask cluster (real worker processes)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three single-threaded worker processes (with nannies, which restart a
    killed worker) and a client; the workers cache in their own folder."""
    distributed = pytest.importorskip("distributed")
    import logging

    os.environ["QWEM_CACHE"] = str(tmp_path_factory.mktemp("worker-cache"))
    try:
        local = distributed.LocalCluster(n_workers=3, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.CRITICAL)
    finally:
        del os.environ["QWEM_CACHE"]
    client = distributed.Client(local)
    yield client
    client.close()
    local.close()


@pytest.mark.slow
def test_cluster_gives_the_same_counts_bit_for_bit(folder, cluster):
    root, texts = folder
    for extra in ({}, {"subsample": 1e-2, "subsample_draws": 3}):
        cfg = EmbedConfig(corpus=str(root), vocab_size=60, embed_dim=5,
                          context_len=3, **extra)
        here_counts, here = shards.count_corpus(cfg, progress=False)
        there_counts, there = shards.count_corpus(cfg, cluster=cluster,
                                                  progress=False)
        assert there_counts.vocab == here_counts.vocab
        assert there_counts.n_tokens == here_counts.n_tokens
        np.testing.assert_array_equal(there.toarray(), here.toarray())
        if not extra:
            np.testing.assert_array_equal(here.toarray(), reference(texts, 60, 3)[1])
    cfg = EmbedConfig(corpus=str(root), vocab_size=60, embed_dim=5, context_len=3)
    a = closed_form(cfg, cache=False, progress=False)
    b = closed_form(cfg, cache=False, progress=False, cluster=cluster)
    assert a.words == b.words and torch.equal(a.eigvals, b.eigvals)


@pytest.mark.slow
def test_cluster_reports_an_unreadable_shard_by_name(folder, cluster):
    root, _ = folder
    bad = root / "c.txt.bz2"
    bad.write_bytes(bad.read_bytes()[:100])
    cfg = EmbedConfig(corpus=str(root), vocab_size=20, embed_dim=3, context_len=3)
    with pytest.raises(QwemError, match="c.txt.bz2"):
        shards.count_corpus(cfg, cluster=cluster, progress=False, cache=False)


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_the_same_result(tmp_path, cluster):
    root = tmp_path / "many"
    root.mkdir()
    texts = {}
    for i in range(9):
        words = words_of(10 + i, 60_000)
        write(root / f"part{i}.txt", " ".join(words) + "\n")
        texts[f"part{i}.txt"] = words
    cfg = EmbedConfig(corpus=str(root), vocab_size=120, embed_dim=5, context_len=5)
    _, here = shards.count_corpus(cfg, progress=False, cache=False)
    pids = cluster.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = [addr for addr, tasks in cluster.processing().items()
                    if tasks and addr in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    counts, there = shards.count_corpus(cfg, cluster=cluster, progress=False,
                                        cache=False)
    killer.join()
    assert killed, "no worker was busy: the test did not kill one"
    np.testing.assert_array_equal(there.toarray(), here.toarray())
    vocab, _, _ = reference(texts, 120, 5)
    assert counts.vocab == vocab
    cluster.wait_for_workers(3, timeout=60)  # the nanny restarts the killed worker


def _scheduler(stealing: bool = True):
    distributed = pytest.importorskip("distributed")
    import logging

    import dask

    with dask.config.set({"distributed.scheduler.work-stealing": stealing}):
        local = distributed.LocalCluster(n_workers=0, processes=True,
                                         dashboard_address=None,
                                         silence_logs=logging.CRITICAL)
    client = distributed.Client(local)
    yield local.scheduler_address, client
    client.close()
    local.close()


@pytest.fixture
def scheduler():
    """A scheduler without workers (in this process): its address and a client."""
    yield from _scheduler()


@pytest.fixture
def scheduler_without_stealing():
    """The same, with Dask's work stealing off: a task preferring a worker then
    runs there while that worker lives (with stealing, an idle worker may take
    it: a second parse of that shard, the same counts)."""
    yield from _scheduler(stealing=False)


def start_worker(address, cwd, cache):
    """A `dask worker` process without a nanny (killed, it stays dead), in its own
    working directory and with its own cache, as on another machine."""
    import subprocess
    import sys

    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QWEM_CACHE=str(cache))
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
         "1", "--no-nanny", "--no-dashboard", "--local-directory", str(cwd)],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _quiet_bar():
    return shards._progress(False, 1, "test")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # another
# cluster of this module holds Dask's default HTTP port: nothing to act on
def test_a_scheduler_without_workers_is_one_line(scheduler):
    address, _ = scheduler
    t0 = time.monotonic()
    with pytest.raises(QwemError, match="has no workers after 1 s"):
        with shards.connect(shards.Cluster(address, timeout=1)):
            pass
    assert time.monotonic() - t0 < 15


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # another
# cluster of this module holds Dask's default HTTP port: nothing to act on
def test_a_task_that_keeps_killing_its_worker_is_one_line(folder):
    """KilledWorker (allowed-failures = 0, a task that kills its worker): one line
    naming the shard and the likely cause."""
    distributed = pytest.importorskip("distributed")
    import logging

    import dask

    root, _ = folder
    found = shards.shards_of(str(root))[:1]

    def kill(shard, *args):     # nested: pickled by value for the worker
        import os as _os
        _os._exit(1)

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.CRITICAL)
    try:
        with distributed.Client(local) as client, _quiet_bar() as bar:
            with pytest.raises(QwemError, match="lost with the worker running it"
                               ) as err:
                shards._on_cluster(client, kill, found, (), bar)
    finally:
        local.close()
    assert found[0].path in str(err.value) and "memory" in str(err.value)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # another
# cluster of this module holds Dask's default HTTP port: nothing to act on
def test_losing_every_worker_stops_the_run_in_one_line(folder, scheduler, tmp_path):
    address, client = scheduler
    root, _ = folder
    worker = start_worker(address, tmp_path / "w", tmp_path / "c")
    try:
        client.wait_for_workers(1, timeout=60)

        def slow(shard, *args):
            import time as _time
            _time.sleep(120)

        def kill_soon():
            time.sleep(1.0)
            worker.kill()

        threading.Thread(target=kill_soon).start()
        t0 = time.monotonic()
        with _quiet_bar() as bar, pytest.raises(QwemError, match="no worker for 2 s"):
            shards._on_cluster(client, slow, shards.shards_of(str(root)), (), bar,
                               lost_after=2)
        assert time.monotonic() - t0 < 40
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # another
# cluster of this module holds Dask's default HTTP port: nothing to act on
def test_workers_elsewhere_with_their_own_caches_count_a_relative_folder(
        folder, scheduler_without_stealing, tmp_path, monkeypatch):
    """Two workers, each in its own working directory with its own cache (as on
    two machines sharing the corpus's file system): a relative folder corpus gives
    the one-process counts bit for bit, and pass 2 runs where pass 1 cached each
    shard's tokens, so every shard is parsed once in all.  Work stealing is off:
    with it, a worker that finds itself idle may take a shard another worker has
    cached (CI saw one shard parsed twice), which is load balancing, not a miss."""
    address, client = scheduler_without_stealing
    root, texts = folder
    workers = [start_worker(address, tmp_path / f"w{i}", tmp_path / f"cache{i}")
               for i in range(2)]
    try:
        client.wait_for_workers(2, timeout=60)
        monkeypatch.chdir(root.parent)       # the client names the folder relatively
        cfg = EmbedConfig(corpus=root.name, vocab_size=60, embed_dim=5,
                          context_len=3)
        here_counts, here = shards.count_corpus(cfg, progress=False, cache=False)
        counts, there = shards.count_corpus(cfg, cluster=client, progress=False)
        np.testing.assert_array_equal(there.toarray(), here.toarray())
        assert counts.vocab == here_counts.vocab
        assert set(counts.placement) == {0, 1, 2, 3}
        assert len(set(counts.placement.values())) == 2       # both workers read
        tokens = [len(list((tmp_path / f"cache{i}" / "tokens").glob("*.npz")))
                  if (tmp_path / f"cache{i}" / "tokens").is_dir() else 0
                  for i in range(2)]
        assert sum(tokens) == 4 and min(tokens) >= 1, tokens   # each shard once
    finally:
        for w in workers:
            w.kill()
            w.wait()


# ----------------------------------------------------------------------------------
# The command line


def run_embed(corpus_args, out, *extra):
    return main(["embed", "--corpus", *corpus_args, "--vocab-size", "40", "--dim",
                 "4", "--window", "3", "--out", str(out), "--quiet", *extra])


def test_qwem_shard_then_embed_the_folder(tmp_path, capsys):
    lines = [" ".join(words_of(i, 200)) for i in range(30)]
    source = write(tmp_path / "corpus.txt.bz2", "\n".join(lines) + "\n")
    folder = tmp_path / "shards"
    assert main(["shard", str(source), "--parts", "3", "--out", str(folder),
                 "--quiet"]) == 0
    files = sorted(folder.iterdir())
    assert [p.name for p in files] == [f"corpus-{i:05d}-of-00003.txt.gz"
                                       for i in range(3)]
    assert capsys.readouterr().out.split() == [str(p) for p in files]
    outs = [tmp_path / f"e{i}.txt" for i in range(3)]
    assert run_embed([str(folder)], outs[0]) == 0
    assert run_embed([str(folder / "*.gz")], outs[1]) == 0
    assert run_embed([str(p) for p in reversed(files)], outs[2]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()
    # the folder's counts are those of its files, each counted alone
    texts = {p.name: [w for b in corpus.iter_words(p) for w in b] for p in files}
    vocab, C, _ = reference({k: [w.decode() for w in v] for k, v in texts.items()},
                            40, 3)
    counts, got = shards.count_corpus(
        EmbedConfig(corpus=str(folder), vocab_size=40, embed_dim=4, context_len=3),
        progress=False)
    assert counts.vocab == vocab
    np.testing.assert_array_equal(got.toarray(), C)


def test_outputs_may_not_go_into_the_corpus_folder(folder, capsys):
    root, _ = folder
    assert run_embed([str(root)], root / "e.txt") == 2
    assert "inside the corpus folder" in capsys.readouterr().err
    assert not (root / "e.txt").exists()


def test_word2vec_streaming_wants_one_file(folder, tmp_path, capsys):
    root, _ = folder
    code = main(["train", "--corpus", str(root), "--vocab-size", "20", "--dim", "3",
                 "--loss", "sgns", "--reweight", "word2vec", "--out",
                 str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "one file" in err and "Traceback" not in err
