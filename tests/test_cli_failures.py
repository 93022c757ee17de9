"""What ``qwem`` promises when things go wrong (README, "Failure behaviour"):
outputs never destroy inputs or special files, caches never serve results of other
data, settings or code, resumes continue only the same run, and every user error is
one line with exit status 2 while a bug keeps its traceback."""

import bz2
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _corpus_text import zipf_text  # tests/_corpus_text.py

from qwem_lib.cli import main
from qwem_lib.vectors import load_word2vec

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(zipf_text())
    return path


def embed(corpus, out, *extra, V="12", d="2"):
    return main(["embed", "--corpus", str(corpus), "--vocab-size", V, "--dim", d,
                 "--window", "3", "--out", str(out), "--quiet", *extra])


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("qwem")]
    assert "Traceback" not in err
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


# ----------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
def test_embed_refuses_to_write_over_its_corpus(corpus, tmp_path, capsys,
                                                monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.txt").symlink_to(corpus)
    out = {"same": corpus, "dot": "./corpus.txt", "symlink": "link.txt"}[spelling]
    before = corpus.read_bytes()
    assert embed("corpus.txt", out) == 2
    one_line_error(capsys, "is the input --corpus")
    assert corpus.read_bytes() == before


def test_embed_refuses_timings_equal_to_out(corpus, tmp_path, capsys):
    out = tmp_path / "e.txt"
    assert embed(corpus, out, "--timings", str(tmp_path / "." / "e.txt")) == 2
    one_line_error(capsys, "--out and --timings name the same file")
    assert not out.exists()


def test_eval_tasks_theory_refuse_their_inputs(corpus, tmp_path, capsys):
    from qwem_lib.corpus.data import eval_path

    emb = tmp_path / "e.txt"
    assert embed(corpus, emb) == 0
    before = emb.read_bytes()
    assert main(["eval", str(emb), "--out", str(emb)]) == 2
    one_line_error(capsys, "is the input FILE")
    assert main(["tasks", str(emb), "--out", str(emb)]) == 2
    one_line_error(capsys, "is the input FILE")
    questions = eval_path("questions-words")
    q_before = questions.read_bytes()
    assert main(["eval", str(emb), "--out", str(questions)]) == 2
    one_line_error(capsys, "is the input")
    assert main(["theory", "--corpus", str(corpus), "--vocab-size", "12", "--dim",
                 "2", "--window", "3", "--out", str(corpus), "--quiet"]) == 2
    one_line_error(capsys, "is the input --corpus")
    assert emb.read_bytes() == before and questions.read_bytes() == q_before


def test_train_refuses_a_corpus_inside_its_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "embeddings.txt").write_text(zipf_text())
    before = (run / "embeddings.txt").read_bytes()
    assert main(["train", "--corpus", str(run / "embeddings.txt"), "--vocab-size",
                 "12", "--dim", "2", "--window", "3", "--full-batch", "--out",
                 str(run), "--quiet", "--overwrite"]) == 2
    one_line_error(capsys, "is the input --corpus")
    assert (run / "embeddings.txt").read_bytes() == before


def test_special_files_are_written_into(corpus, tmp_path):
    assert embed(corpus, os.devnull, "--timings", os.devnull) == 2  # one file twice
    assert embed(corpus, os.devnull) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_output_mode_follows_the_umask_and_an_existing_file_keeps_its_own(corpus,
                                                                         tmp_path):
    old = os.umask(0o027)
    try:
        assert embed(corpus, tmp_path / "new.txt") == 0
        kept = tmp_path / "kept.txt"
        kept.write_text("an older output")
        kept.chmod(0o604)
        assert embed(corpus, kept) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o604
    assert load_word2vec(kept)[1].shape == (12, 2)               # overwritten


def test_unwritable_out_is_refused_before_the_work(corpus, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert embed(corpus, tmp_path / "afile" / "e.txt") == 2
    err = capsys.readouterr().err
    assert "cannot write --out" in err and "tokens:" not in err     # no work done
    assert embed(corpus, tmp_path) == 2
    one_line_error(capsys, "is a folder")


# ----------------------------------------------------------------------------------
# caches
# ----------------------------------------------------------------------------------

def test_same_relative_name_in_two_folders_is_two_corpora(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, seed in ((a, 1), (b, 2)):
        folder.mkdir()
        (folder / "corpus.txt").write_text(zipf_text(seed))
    monkeypatch.chdir(a)
    assert embed("corpus.txt", tmp_path / "ea.txt") == 0
    monkeypatch.chdir(b)
    assert embed("corpus.txt", tmp_path / "eb.txt") == 0
    direct = tmp_path / "eb-nocache.txt"
    assert embed("corpus.txt", direct, "--no-cache") == 0
    assert (tmp_path / "ea.txt").read_bytes() != (tmp_path / "eb.txt").read_bytes()
    assert (tmp_path / "eb.txt").read_bytes() == direct.read_bytes()


def test_edited_corpus_with_its_old_size_and_time_is_read_again(corpus, tmp_path):
    assert embed(corpus, tmp_path / "before.txt") == 0
    st = os.stat(corpus)
    edited = zipf_text(7)
    edited = (edited + " " * len(corpus.read_text()))[: st.st_size]  # same size
    corpus.write_text(edited)
    os.utime(corpus, ns=(st.st_atime_ns, st.st_mtime_ns))             # as cp -p
    assert os.stat(corpus).st_size == st.st_size
    assert embed(corpus, tmp_path / "after.txt") == 0
    assert embed(corpus, tmp_path / "direct.txt", "--no-cache") == 0
    after = (tmp_path / "after.txt").read_bytes()
    assert after != (tmp_path / "before.txt").read_bytes()
    assert after == (tmp_path / "direct.txt").read_bytes()


def test_damaged_cache_entries_are_reported_and_recomputed(corpus, tmp_path, capsys):
    from qwem_lib.runtime.cache import cache_dir

    assert embed(corpus, tmp_path / "first.txt") == 0
    entries = sorted(p for p in cache_dir().rglob("*.npz"))
    assert {p.parent.name for p in entries} >= {"closed_form", "tokens"}
    for p in entries:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    capsys.readouterr()
    assert embed(corpus, tmp_path / "second.txt") == 0
    err = capsys.readouterr().err
    assert err.count("qwem: warning: damaged cache entry") == len(entries)
    assert "Traceback" not in err
    assert (tmp_path / "second.txt").read_bytes() == \
        (tmp_path / "first.txt").read_bytes()


def test_unwritable_cache_warns_and_the_command_still_writes(corpus, tmp_path,
                                                            monkeypatch, capsys):
    (tmp_path / "blocker").write_text("")
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "blocker" / "cache"))
    from qwem_lib.runtime import cache
    cache._unwritable.clear()
    assert embed(corpus, tmp_path / "e.txt") == 0
    err = capsys.readouterr().err
    assert "qwem: warning: cannot write to the cache" in err
    assert load_word2vec(tmp_path / "e.txt")[1].shape == (12, 2)


# ----------------------------------------------------------------------------------
# training runs and resumes
# ----------------------------------------------------------------------------------

def train(corpus, out, *extra, window="3"):
    return main(["train", "--corpus", str(corpus), "--vocab-size", "12", "--dim", "2",
                 "--window", window, "--full-batch", "--init-scale", "1e-4",
                 "--checkpoints", "4", "--out", str(out), "--quiet", *extra])


def test_new_run_refuses_a_folder_of_another_run(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(corpus, run) == 0
    old = (run / "embeddings.txt").read_bytes()
    assert train(corpus, run, window="2") == 2
    one_line_error(capsys, "--resume", "--overwrite")
    assert (run / "embeddings.txt").read_bytes() == old
    assert train(corpus, run, "--overwrite", window="2") == 0
    assert json.loads((run / "config.json").read_text())["window"] == 2


def test_overwrite_with_a_bad_new_run_keeps_the_old_run(corpus, tmp_path, capsys):
    """--overwrite deletes the old run only when the new one is about to write:
    every bad argument, input or device is refused first, with the old run intact."""
    import torch

    run = tmp_path / "run"
    assert train(corpus, run) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    w2v = ["--loss", "sgns", "--reweight", "word2vec"]
    bad = [["--lr", "0"], ["--steps", "0"], ["--seed", "-1"], ["--init-scale", "-1"]]
    cases = [(corpus, extra) for extra in bad]
    cases += [(tmp_path / "missing.txt", [])]
    if not torch.cuda.is_available():
        cases += [(corpus, ["--device", "cuda"])]
    for corpus_path, extra in cases:
        assert train(corpus_path, run, "--overwrite", *extra) == 2, extra
        one_line_error(capsys)
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before, extra
    # --dim = V, and word2vec with --steps or --cluster
    for argv in (["--dim", "12"],):
        assert main(["train", "--corpus", str(corpus), "--vocab-size", "12",
                     "--window", "3", "--full-batch", "--out", str(run), "--quiet",
                     "--overwrite", *argv]) == 2
        one_line_error(capsys)
    for extra in (["--steps", "5"], ["--cluster", "local:1"]):
        assert main(["train", "--corpus", str(corpus), "--vocab-size", "12", "--dim",
                     "2", "--out", str(run), "--quiet", "--overwrite", *w2v,
                     *extra]) == 2, extra
        one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert train(corpus, run, "--overwrite", window="2") == 0   # a good one replaces


def test_resume_with_other_settings_or_corpus_is_refused(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(corpus, run) == 0
    assert train(corpus, run, "--resume", window="2") == 2
    one_line_error(capsys, "window")
    other = tmp_path / "other.txt"
    other.write_text(zipf_text(5))
    assert train(other, run, "--resume") == 2
    one_line_error(capsys, "corpus")
    assert train(corpus, run, "--resume", "--lr", "0.001") == 2
    one_line_error(capsys, "lr")
    assert train(corpus, run, "--resume") == 0                   # the same run


def test_word2vec_resume_with_another_window_is_refused(corpus, tmp_path, capsys):
    run = tmp_path / "w2v"
    args = ["train", "--corpus", str(corpus), "--vocab-size", "12", "--dim", "2",
            "--loss", "sgns", "--reweight", "word2vec", "--threads", "1",
            "--checkpoints", "3", "--out", str(run), "--quiet"]
    assert main(args + ["--window", "3"]) == 0
    assert main(args + ["--window", "4", "--resume"]) == 2
    one_line_error(capsys, "window")


def test_damaged_checkpoint_is_one_line(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(corpus, run) == 0
    ck = run / "checkpoint.npz"
    ck.write_bytes(ck.read_bytes()[:300])
    assert train(corpus, run, "--resume") == 2
    one_line_error(capsys, "checkpoint")


# ----------------------------------------------------------------------------------
# bad values
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flag,value", [("--negatives", "inf"), ("--negatives", "nan"),
                                        ("--neg-power", "-inf"),
                                        ("--window", "1e8"), ("--vocab-size", "ten")])
def test_unparsable_or_non_finite_numbers_are_one_line(corpus, tmp_path, capsys,
                                                       flag, value):
    args = {"--vocab-size": "12", "--dim": "2", "--window": "3"}
    args[flag] = value
    with pytest.raises(SystemExit) as exc:
        main(["embed", "--corpus", str(corpus), "--out", str(tmp_path / "e.txt"),
              *[x for kv in args.items() for x in kv]])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and flag in err
    assert not (tmp_path / "e.txt").exists()


def test_theory_bad_values(corpus, tmp_path, capsys):
    base = ["theory", "--corpus", str(corpus), "--vocab-size", "12", "--window", "3",
            "--quiet"]
    assert main(base + ["--dim", "2", "--init-scale", "0"]) == 2
    one_line_error(capsys, "--init-scale")
    with pytest.raises(SystemExit) as exit_:          # refused by the parser
        main(base + ["--dim", "2", "--points", "-1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--points" in err[0]


def test_theory_past_the_positive_eigenvalues_is_refused_with_their_count(
        corpus, tmp_path, capsys):
    from qwem_lib.pipeline import EmbedConfig, pair_statistics
    from qwem_lib.targets import m_star

    _, P, u = pair_statistics(EmbedConfig(str(corpus), 12, 2, context_len=3),
                              progress=False)
    n_pos = int((np.linalg.eigvalsh(m_star(P, u).numpy()) > 0).sum())
    assert n_pos < 11
    out = tmp_path / "t.json"
    assert main(["theory", "--corpus", str(corpus), "--vocab-size", "12", "--window",
                 "3", "--dim", str(n_pos + 1), "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, f"only {n_pos} of the top {n_pos + 1}", f"--dim <= {n_pos}")
    assert not out.exists()
    assert main(["theory", "--corpus", str(corpus), "--vocab-size", "12", "--window",
                 "3", "--dim", str(n_pos), "--out", str(out), "--quiet"]) == 0
    json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))


def test_eval_json_is_strict(corpus, tmp_path, capsys):
    emb = tmp_path / "e.txt"
    assert embed(corpus, emb) == 0
    assert main(["eval", str(emb), "--out", str(tmp_path / "r.json")]) == 0
    for source in (capsys.readouterr().out, (tmp_path / "r.json").read_text()):
        json.loads(source, parse_constant=lambda c: pytest.fail(f"token {c}"))


def test_utf16_corpus_gives_the_embeddings_of_its_utf8_twin(corpus, tmp_path):
    twin = tmp_path / "corpus16.txt"
    twin.write_bytes(corpus.read_text().encode("utf-16"))           # with its BOM
    assert embed(corpus, tmp_path / "e8.txt") == 0
    assert embed(twin, tmp_path / "e16.txt") == 0
    assert (tmp_path / "e8.txt").read_bytes() == (tmp_path / "e16.txt").read_bytes()


def test_random_bytes_are_not_a_corpus(tmp_path, capsys):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(np.random.default_rng(0).bytes(200_000))
    assert embed(junk, tmp_path / "e.txt") == 2
    one_line_error(capsys, "junk.txt")
    assert not (tmp_path / "e.txt").exists()


def test_a_bug_keeps_its_traceback_and_exits_1(corpus, tmp_path):
    """Only user errors become one line: an internal error is not dressed up."""
    code = ("import sys, qwem_lib.pipeline as p\n"
            "def broken(*a, **k): raise ZeroDivisionError('a bug')\n"
            "p.closed_form = broken\n"
            "from qwem_lib.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "embed", "--corpus",
                           str(corpus), "--vocab-size", "12", "--dim", "2", "--out",
                           str(tmp_path / "e.txt")], capture_output=True, text=True,
                          env={**os.environ, "QWEM_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ZeroDivisionError: a bug" in proc.stderr
    assert not Path(tmp_path / "e.txt").exists()


@pytest.mark.parametrize("argv, option", [
    (["shard", "CORPUS", "--parts", "1000000000", "--out", "OUT"], "--parts"),
    (["train", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "2", "--loss",
      "sgns", "--reweight", "word2vec", "--threads", "10000000", "--out", "OUT"],
     "--threads"),
    (["train", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "2",
      "--checkpoints", "1000000000", "--out", "OUT"], "--checkpoints"),
    (["train", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "2",
      "--checkpoints", "0", "--out", "OUT"], "--checkpoints"),
    (["train", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "2",
      "--batch-size", "1000000000000", "--out", "OUT"], "--batch-size"),
    (["train", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "2", "--loss",
      "sgns", "--reweight", "word2vec", "--batch-size", "0", "--out", "OUT"],
     "--batch-size"),
    (["train", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "30000000",
      "--loss", "sgns", "--reweight", "word2vec", "--out", "OUT"], "--dim"),
    (["theory", "--corpus", "CORPUS", "--vocab-size", "12", "--dim", "2",
      "--points", "1000000000"], "--points"),
])
def test_absurd_sizes_are_one_line_before_any_work(corpus, tmp_path, capsys, argv,
                                                   option):
    """Sizes from options are checked before anything is allocated (they used to
    take minutes and gigabytes, or end in a traceback)."""
    argv = [str(corpus) if a == "CORPUS" else str(tmp_path / "out") if a == "OUT"
            else a for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0] and "must be an integer" in err[0]
    assert not (tmp_path / "out").exists()


def test_more_parts_than_bytes_is_one_line(tmp_path, capsys):
    small = tmp_path / "small.txt"
    small.write_text("a b c\n")
    assert main(["shard", str(small), "--parts", "100", "--out",
                 str(tmp_path / "s")]) == 2
    assert "empty shards" in one_line_error(capsys)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("w2v", [False, True])
def test_a_word_the_writer_cannot_store_is_refused_before_training(tmp_path, capsys,
                                                                   w2v):
    """--scheme none keeps a stray byte in a word: refused in one line before the
    run (it used to train, then fail with a traceback in the writer, leaving a
    checkpoint and no embeddings)."""
    path = tmp_path / "stray.txt"
    path.write_bytes(zipf_text().replace("the ", "th\xffe ").encode("latin-1"))
    run = tmp_path / "run"
    argv = ["train", "--corpus", str(path), "--vocab-size", "12", "--dim", "2",
            "--window", "3", "--scheme", "none", "--out", str(run), "--quiet"]
    argv += (["--loss", "sgns", "--reweight", "word2vec"] if w2v else
             ["--full-batch", "--init-scale", "1e-4", "--checkpoints", "4"])
    assert main(argv) == 2
    assert "not UTF-8" in one_line_error(capsys)
    assert not run.exists() or not any(run.iterdir())


def test_embed_refuses_a_word_it_cannot_write_before_the_eigensolver(
        tmp_path, capsys, monkeypatch):
    """qwem embed checks the vocabulary as soon as it is known: a stray byte kept by
    --scheme none is refused in one line before the target and the eigensolver
    (it used to be found by the writer, after all the work)."""
    from qwem_lib import pipeline

    def never(*args, **kwargs):
        raise AssertionError("the eigensolver ran")

    monkeypatch.setattr(pipeline, "_top_eigenpairs", never)
    path = tmp_path / "stray.txt"
    path.write_bytes(zipf_text().replace("the ", "th\xffe ").encode("latin-1"))
    out = tmp_path / "w.txt"
    assert main(["embed", "--corpus", str(path), "--vocab-size", "12", "--dim", "2",
                 "--window", "3", "--scheme", "none", "--out", str(out),
                 "--quiet"]) == 2
    line = one_line_error(capsys)
    assert "qwem embed" in line and "not UTF-8" in line
    assert not out.exists()


def test_an_output_ending_in_a_slash_and_an_empty_corpus_are_one_line(corpus, tmp_path,
                                                                     capsys):
    """`--out new/` used to write a file named new; `--corpus ''` read the
    current folder."""
    assert embed(corpus, str(tmp_path / "new") + "/") == 2
    assert "names a folder" in one_line_error(capsys)
    assert not (tmp_path / "new").exists()
    assert main(["embed", "--corpus", "", "--vocab-size", "12", "--dim", "2",
                 "--out", str(tmp_path / "w.txt"), "--quiet"]) == 2
    assert "empty corpus name" in one_line_error(capsys)
    assert not (tmp_path / "w.txt").exists()


def test_shards_into_their_input_folder_are_refused(tmp_path, capsys):
    """The folder would then hold the input and its shards: read as one corpus,
    the text would be counted twice."""
    src = tmp_path / "c.txt"
    src.write_text(zipf_text(size=20000))
    assert main(["shard", str(src), "--parts", "2", "--out", str(tmp_path)]) == 2
    assert "a folder of their own" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_probabilities_must_be_finite_and_non_negative():
    import torch

    from qwem_lib.corpus import normalise
    from qwem_lib.runtime.errors import QwemError
    from qwem_lib.targets import m_star, pair_probs

    C = torch.tensor([[2.0, 1.0], [1.0, 4.0]])
    P, u = pair_probs(C)
    m_star(P, u)                                   # fine
    for bad in (float("nan"), -0.1, float("inf")):
        Q = P.clone()
        Q[0, 1] = Q[1, 0] = bad
        with pytest.raises(QwemError, match="finite, non-negative"):
            m_star(Q, u)
    for bad in (5, None, 1.5):
        with pytest.raises(QwemError, match="takes text"):
            normalise(bad)
