"""The ``qwem`` command end to end on tiny corpora, and its handling of bad input."""

import bz2
import json
import subprocess
import sys

import numpy as np
import pytest
from _corpus_text import zipf_text  # tests/_corpus_text.py

from qwem_lib.cli import main
from qwem_lib.vectors import load_word2vec

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def corpus(tmp_path):
    text = zipf_text(0, size=4000)
    path = tmp_path / "tiny.txt.bz2"
    path.write_bytes(bz2.compress(text.encode()))
    return path, text.split()


def _independent_mstar(tokens, vocab, L):
    """Counts by a plain double loop, then M* from its definition (numpy)."""
    index = {w: i for i, w in enumerate(vocab)}
    ids = [index[t] for t in tokens if t in index]
    V = len(vocab)
    C = np.zeros((V, V))
    for t in range(len(ids)):
        for s in range(1, L + 1):
            if t + s < len(ids):
                C[ids[t], ids[t + s]] += L + 1 - s
                C[ids[t + s], ids[t]] += L + 1 - s
    P = C / C.sum()
    u = P.sum(1)
    Q = np.outer(u, u)
    return 2 * (P - Q) / (P + Q)


def test_embed_matches_independent_closed_form(corpus, tmp_path, capsys):
    path, tokens = corpus
    out = tmp_path / "emb.txt"
    timings = tmp_path / "t.json"
    assert main(["embed", "--corpus", str(path), "--vocab-size", "20", "--dim", "4",
                 "--window", "3", "--out", str(out), "--timings", str(timings),
                 "--quiet"]) == 0
    first = out.read_text().splitlines()[0]
    assert first == "20 4"
    words, W = load_word2vec(out)
    # Vocabulary: the 20 most frequent words, ties broken alphabetically.
    counts = {w: tokens.count(w) for w in set(tokens)}
    expected = sorted(counts, key=lambda w: (-counts[w], w))[:20]
    assert words == expected
    M = _independent_mstar(tokens, words, 3)
    lam = np.linalg.eigvalsh(M)[::-1][:4]
    assert np.all(lam > 0)
    # Squared column norms are the top eigenvalues; W W^T is the best rank-4 fit.
    np.testing.assert_allclose((W**2).sum(0), lam, rtol=1e-7)
    w_all, U = np.linalg.eigh(M)
    best = (U[:, -4:] * w_all[-4:]) @ U[:, -4:].T
    np.testing.assert_allclose(W @ W.T, best, atol=1e-6)
    stages = json.loads(timings.read_text())["stages"]
    assert {"read+tokenise", "count", "target", "eigen", "write"} <= set(stages)
    err = capsys.readouterr().err
    assert "total" in err and "eigen" in err


@pytest.mark.parametrize("method", ["ppmi", "pmi"])
def test_embed_other_methods(corpus, tmp_path, method):
    path, tokens = corpus
    out = tmp_path / f"{method}.txt"
    assert main(["embed", "--corpus", str(path), "--vocab-size", "15", "--dim", "3",
                 "--method", method, "--window", "2", "--out", str(out),
                 "--quiet"]) == 0
    words, W = load_word2vec(out)
    assert W.shape == (15, 3)


def test_eval_prints_json(corpus, tmp_path, capsys):
    path, _ = corpus
    out = tmp_path / "e.txt"
    main(["embed", "--corpus", str(path), "--vocab-size", "20", "--dim", "4",
          "--out", str(out), "--quiet"])
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("analogy_paper", "analogy_classic", "men", "ws353", "ws353_sim",
                "ws353_rel"):
        assert key in report
    assert report["vocab_size"] == 20 and report["dim"] == 4


def _bad(tmp_path, capsys, args, match):
    out = tmp_path / "never.txt"
    code = main(["embed", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("qwem: error:") and match in last, err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_missing_file(tmp_path, capsys):
    _bad(tmp_path, capsys, ["--corpus", str(tmp_path / "nope.txt"),
                            "--vocab-size", "5", "--dim", "2"], "nope.txt")


def test_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _bad(tmp_path, capsys, ["--corpus", str(empty), "--vocab-size", "5",
                            "--dim", "2"], "empty.txt")


def test_corrupt_compressed_file(tmp_path, capsys):
    bad = tmp_path / "bad.txt.bz2"
    bad.write_bytes(b"BZh9" + b"\x00garbage" * 100)
    _bad(tmp_path, capsys, ["--corpus", str(bad), "--vocab-size", "5",
                            "--dim", "2"], "bad.txt.bz2")


def test_vocabulary_larger_than_corpus(corpus, tmp_path, capsys):
    path, _ = corpus
    _bad(tmp_path, capsys, ["--corpus", str(path), "--vocab-size", "500",
                            "--dim", "2"], "distinct words")


def test_dim_not_below_vocab(corpus, tmp_path, capsys):
    path, _ = corpus
    _bad(tmp_path, capsys, ["--corpus", str(path), "--vocab-size", "10",
                            "--dim", "10"], "--dim")


@pytest.mark.parametrize("window", ["0", "-3"])
def test_bad_window(corpus, tmp_path, capsys, window):
    path, _ = corpus
    _bad(tmp_path, capsys, ["--corpus", str(path), "--vocab-size", "10",
                            "--dim", "2", "--window", window], "window")


def test_console_script_exit_code(tmp_path):
    # The installed entry point, as a user runs it.
    proc = subprocess.run([sys.executable, "-m", "qwem_lib.cli", "embed", "--corpus",
                           str(tmp_path / "missing.txt"), "--vocab-size", "5", "--dim",
                           "2", "--out", str(tmp_path / "o.txt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "qwem: error:" in proc.stderr and "missing.txt" in proc.stderr


def test_train_full_batch_learns_top_eigenvalues(corpus, tmp_path):
    # QWEM under Setting 3.1 from small init converges to Theorem 1's minimiser:
    # the squared singular values of the learned W are M*'s top eigenvalues.
    path, tokens = corpus
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(path), "--vocab-size", "20", "--dim", "3",
                 "--window", "3", "--init-scale", "1e-6", "--full-batch",
                 "--checkpoints", "8", "--out", str(out), "--quiet"]) == 0
    words, W = load_word2vec(out / "embeddings.txt")
    M = _independent_mstar(tokens, words, 3)
    lam = np.linalg.eigvalsh(M)[::-1][:3]
    s2 = np.linalg.svd(W, compute_uv=False) ** 2
    np.testing.assert_allclose(s2, lam, rtol=1e-3)
    history = json.loads((out / "history.json").read_text())
    n = len(history["step"])
    assert n >= 2 and all(len(history[k]) == n
                          for k in ("t", "loss", "singular_values", "analogy"))
    assert history["t"] == sorted(history["t"]) and history["t"][0] == 0
    assert json.loads((out / "config.json").read_text())["train"]["loss"] == "qwem"


def test_theory_prints_timescales(corpus, tmp_path, capsys):
    path, tokens = corpus
    out = tmp_path / "theory.json"
    assert main(["theory", "--corpus", str(path), "--vocab-size", "20", "--dim", "3",
                 "--window", "3", "--init-scale", "1e-4", "--out", str(out),
                 "--quiet"]) == 0
    report = json.loads(out.read_text())
    lam = np.array(report["eigvals"])
    # tau_k = ln(lambda_k / s0^2) / lambda_k, s0^2 = scale^2 (arXiv 2502.09863)
    np.testing.assert_allclose(report["tau"], np.log(lam / 1e-8) / lam, rtol=1e-12)
    assert len(report["t"]) == len(report["s2"])
    assert "tau_k" in capsys.readouterr().out


def test_train_bad_lr(corpus, tmp_path, capsys):
    path, _ = corpus
    code = main(["train", "--corpus", str(path), "--vocab-size", "20", "--dim", "3",
                 "--lr", "fast", "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2 and "auto" in capsys.readouterr().err


def test_train_word2vec_streams(corpus, tmp_path):
    """--loss sgns --reweight word2vec runs word2vec itself, in QWEM's formats."""
    path, _ = corpus
    out = tmp_path / "w2v"
    assert main(["train", "--corpus", str(path), "--vocab-size", "20", "--dim", "4",
                 "--window", "3", "--loss", "sgns", "--reweight", "word2vec",
                 "--negatives", "2", "--subsample", "1e-3", "--epochs", "2",
                 "--untied", "--batch-size", "8", "--checkpoints", "5", "--quiet",
                 "--out", str(out)]) == 0
    words, W = load_word2vec(out / "embeddings.txt")
    assert W.shape == (20, 4) and np.isfinite(W).all()
    meta = json.loads((out / "config.json").read_text())
    assert meta["model"] == "word2vec"
    cfg = meta["train"]
    assert (cfg["window"], cfg["negatives"], cfg["subsample"], cfg["epochs"],
            cfg["tied"], cfg["batch_size"]) == (3, 2, 1e-3, 2, False, 8)
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["step"]) == len(hist["singular_values"]) >= 2
    assert hist["step"][0] == 0 and hist["step"][-1] == meta["steps"]
    # the last checkpoint's singular values are those of the written embeddings
    np.testing.assert_allclose(hist["singular_values"][-1],
                               np.linalg.svd(W, compute_uv=False), rtol=1e-4)
    assert (out / "checkpoint.npz").exists()
    assert meta["engine"] == "kernel"


def test_train_word2vec_threads_and_resume(corpus, tmp_path):
    """--threads 1 is reproducible bit for bit, also through --resume; a resume on
    another thread count is refused with one line."""
    path, _ = corpus
    args = ["train", "--corpus", str(path), "--vocab-size", "20", "--dim", "4",
            "--window", "3", "--loss", "sgns", "--reweight", "word2vec", "--epochs",
            "3", "--pair-negatives", "--threads", "1", "--checkpoints", "6",
            "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (meta["threads"], meta["train"]["shared_negatives"]) == (1, False)
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "embeddings.txt").read_text()
    assert a == (tmp_path / "b" / "embeddings.txt").read_text()
    # resuming the finished run on two threads: the checkpoint says how it ran
    assert main(args[:-3] + ["--threads", "2", "--quiet", "--resume", "--out",
                             str(tmp_path / "a")]) == 2


def test_train_word2vec_flags_rejected_for_qwem(corpus, tmp_path, capsys):
    path, _ = corpus
    code = main(["train", "--corpus", str(path), "--vocab-size", "20", "--dim", "3",
                 "--untied", "--epochs", "3", "--quiet", "--out",
                 str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--untied and --epochs apply to word2vec only" in err
    code = main(["train", "--corpus", str(path), "--vocab-size", "20", "--dim", "3",
                 "--threads", "2", "--quiet", "--out", str(tmp_path / "y")])
    assert code == 2 and "--threads apply to word2vec only" in capsys.readouterr().err


def test_embed_subsample_flag(corpus, tmp_path):
    """--subsample reaches the statistics: a huge threshold keeps every token, so
    the embeddings equal those without subsampling (summed counts normalise)."""
    path, _ = corpus
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    common = ["embed", "--corpus", str(path), "--vocab-size", "20", "--dim", "3",
              "--quiet", "--no-cache"]
    assert main(common + ["--out", str(a)]) == 0
    assert main(common + ["--subsample", "1e9", "--subsample-draws", "2",
                          "--out", str(b)]) == 0
    _, Wa = load_word2vec(a)
    _, Wb = load_word2vec(b)
    np.testing.assert_allclose(np.abs(Wa), np.abs(Wb), atol=1e-5)


def _tasks_files(tmp_path):
    """Embeddings of a synthetic analogy category with a spike, and its questions."""
    from qwem_lib.vectors import save_word2vec

    rng = np.random.default_rng(0)
    N, D = 30, 32
    A = rng.standard_normal((N, D))
    mu = rng.standard_normal(D)
    mu *= np.sqrt(6.0 * D / N) / np.linalg.norm(mu)        # spike strength 6
    R = rng.standard_normal((N, D)) + mu
    words = [f"a{n}" for n in range(N)] + [f"b{n}" for n in range(N)]
    emb = save_word2vec(tmp_path / "emb.txt", words, np.vstack([A, A + R]))
    q = tmp_path / "q.txt"
    q.write_text(": syn\n" + "".join(f"a{n} b{n} a{n + 1} b{n + 1}\n"
                                     for n in range(N - 1)))
    return emb, q


def test_tasks_reports_the_spike(tmp_path, capsys):
    emb, q = _tasks_files(tmp_path)
    out = tmp_path / "tasks.json"
    assert main(["tasks", str(emb), "--questions", str(q), "--dims", "8,32",
                 "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "syn" in table and "SNR" in table
    rep = json.loads(out.read_text())
    assert rep["dims"] == [8, 32]
    (cat,) = rep["categories"]
    assert cat["category"] == "syn" and cat["n_pairs"] == 30
    full = cat["by_dim"][-1]
    assert full["d"] == 32 and len(full["fit"]["outliers"]) == 1
    assert full["fit"]["spike"][0] > full["fit"]["bbp"]
    assert full["snr"] > 3


def test_tasks_default_dims_and_bad_input(tmp_path, capsys):
    emb, q = _tasks_files(tmp_path)
    assert main(["tasks", str(emb), "--questions", str(q)]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("syn")]
    assert [int(ln.split()[2]) for ln in rows] == [2, 4, 8, 16, 32]
    assert main(["tasks", str(emb), "--questions", str(q), "--dims", "64"]) == 2
    assert "1..32" in capsys.readouterr().err
    empty = tmp_path / "none.txt"
    empty.write_text(": other\nx y z w\n")
    assert main(["tasks", str(emb), "--questions", str(empty)]) == 2
    assert "no analogy category" in capsys.readouterr().err


def test_closed_pipe_is_quiet(tmp_path):
    """`qwem tasks ... | head -1`: no traceback when the reader stops early."""
    emb, _ = _tasks_files(tmp_path)
    q = tmp_path / "many.txt"       # 2,000 small categories: far more than a pipe holds
    q.write_text("".join(f": c{i}\na0 b0 a1 b1\na2 b2 a0 b0\n" for i in range(2000)))
    cmd = (f"{sys.executable} -m qwem_lib.cli tasks {emb} --questions {q} "
           f"--dims 2,4,8,16,32 | head -1")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert proc.stdout.startswith("category")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# ------------------------------------------------- embedding formats, neighbours, misc


@pytest.fixture
def benchmark_vectors(tmp_path):
    """Random float32 vectors for every word of the bundled analogy file (so the
    scores are not trivial) written by gensim in several formats."""
    from qwem_lib.evaluate import load_analogies
    from qwem_lib.vectors import save_word2vec, to_keyedvectors

    words = sorted({w.lower() for qs in load_analogies().values() for q in qs
                    for w in q})
    rng = np.random.default_rng(7)
    W = rng.standard_normal((len(words), 16)).astype(np.float32).astype(np.float64)
    W[:, 0] += 3.0 * np.arange(len(words)) % 2      # some structure to score
    kv = to_keyedvectors(words, W)
    files = {"ours": save_word2vec(tmp_path / "v.txt", words, W)}
    for name, kw in (("binary", dict(binary=True)), ("text.gz", dict(binary=False)),
                     ("glove", dict(binary=False, write_header=False))):
        files[name] = tmp_path / f"v.{name}"
        kv.save_word2vec_format(str(files[name]), **kw)
    return words, W, files


def test_eval_reads_every_format_with_the_same_scores(benchmark_vectors, capsys):
    words, W, files = benchmark_vectors
    reports = {}
    for name, f in files.items():
        assert main(["eval", str(f), "--device", "cpu"]) == 0, name
        reports[name] = json.loads(capsys.readouterr().out)
    ref = reports["ours"]
    assert ref["analogy_paper"]["n"] > 1000 and ref["vocab_size"] == len(words)

    def scores(rep):
        return [rep["analogy_paper"]["accuracy"], rep["analogy_classic"]["accuracy"],
                rep["men"]["spearman"], rep["ws353"]["spearman"]]

    for name, rep in reports.items():
        assert rep["vocab_size"] == len(words) and rep["dim"] == 16
        np.testing.assert_allclose(scores(rep), scores(ref), atol=1e-6, err_msg=name)
    # --format forces the reader: GloVe's file is not word2vec text
    assert main(["eval", str(files["glove"]), "--format", "text"]) == 2
    assert "line 1 should be the header" in capsys.readouterr().err


def test_tasks_reads_a_binary_file(benchmark_vectors, capsys):
    _, _, files = benchmark_vectors
    assert main(["tasks", str(files["binary"]), "--dims", "4,16"]) == 0
    out = capsys.readouterr().out
    assert "capital-common-countries" in out


def test_neighbors_match_gensim_most_similar(benchmark_vectors, capsys):
    from qwem_lib.evaluate import neighbors
    from qwem_lib.vectors import to_keyedvectors

    words, W, files = benchmark_vectors
    kv = to_keyedvectors(words, W)
    for query, pos, neg in (("king", ["king"], []),
                            ("king - man + woman", ["king", "woman"], ["man"]),
                            ("- man + woman", ["woman"], ["man"])):
        ours = neighbors(W, words, query, k=8)
        ref = kv.most_similar(positive=pos, negative=neg, topn=8)
        assert [w for w, _ in ours] == [w for w, _ in ref], query
        np.testing.assert_allclose([c for _, c in ours], [c for _, c in ref],
                                   atol=1e-5)
        assert not set(pos + neg) & {w for w, _ in ours}
    assert main(["neighbors", str(files["binary"]), "king", "king - man + woman",
                 "-k", "3"]) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["king", "king - man + woman"]
    for b, (pos, neg) in zip(blocks, ((["king"], []), (["king", "woman"], ["man"]))):
        lines = b.splitlines()[1:]
        ref = kv.most_similar(positive=pos, negative=neg, topn=3)
        assert [ln.split()[1] for ln in lines] == [w for w, _ in ref]
        assert [ln.split()[0] for ln in lines] == ["1", "2", "3"]
        np.testing.assert_allclose([float(ln.split()[2]) for ln in lines],
                                   [c for _, c in ref], atol=6e-5)


@pytest.mark.parametrize("args, match", [
    (["zzzunknown"], "not in the vocabulary"),
    (["king - "], "cannot read the query|no positive word|not in the vocabulary"),
    (["- king"], "no positive word"),
    (["king", "-k", "0"], "-k must be at least 1"),
])
def test_neighbors_bad_queries_exit_2(benchmark_vectors, capsys, args, match):
    _, _, files = benchmark_vectors
    assert main(["neighbors", str(files["ours"])] + args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                   # nothing answered when one query fails
    assert captured.err.startswith("qwem: error: ") and captured.err.count("\n") == 1
    assert __import__("re").search(match, captured.err)


def test_neighbors_on_closed_form_embeddings_of_the_sample(tmp_path, capsys):
    out = tmp_path / "sample.txt"
    assert main(["embed", "--corpus", "sample", "--vocab-size", "3000", "--dim", "50",
                 "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["neighbors", str(out), "king", "king - man + woman"]) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert len(blocks) == 2
    for block in blocks:
        lines = block.splitlines()
        assert len(lines) == 11
        cos = [float(ln.split()[2]) for ln in lines[1:]]
        assert cos == sorted(cos, reverse=True) and all(-1 <= c <= 1 for c in cos)
        assert "king" not in {ln.split()[1] for ln in lines[1:]}


def test_version_and_python_dash_m():
    import tomllib
    from pathlib import Path

    import qwem_lib

    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert meta["version"] == qwem_lib.__version__
    assert meta["license"] == "MIT"              # an SPDX string, not a table
    run = subprocess.run([sys.executable, "-m", "qwem_lib", "--version"],
                         capture_output=True, text=True, cwd=root)
    assert run.returncode == 0 and run.stdout.strip() == f"qwem {qwem_lib.__version__}"
    run = subprocess.run([sys.executable, "-m", "qwem_lib", "--help"],
                         capture_output=True, text=True, cwd=root)
    assert run.returncode == 0
    for command in ("embed", "eval", "train", "theory", "tasks", "neighbors"):
        assert command in run.stdout


def test_embed_prints_each_stage_once(corpus, tmp_path, capsys):
    path, _ = corpus
    assert main(["embed", "--corpus", str(path), "--vocab-size", "20", "--dim", "4",
                 "--out", str(tmp_path / "e.txt"), "--quiet"]) == 0
    err = capsys.readouterr().err
    stages = [ln.split()[0] for ln in err.splitlines()
              if ln.startswith("  ") and ln.rstrip().endswith(" s")]
    assert len(stages) == len(set(stages)), err
    assert {"read+tokenise", "count", "target", "eigen", "write"} <= set(stages)
