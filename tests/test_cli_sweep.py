"""Defects of an adversarial sweep of the ``qwem`` command: every bad input is one line
on stderr (``qwem: error: ...``, or argparse's ``qwem COMMAND: error: ...`` for a value
refused by the parser), exit status 2, no traceback, and nothing complete-looking
left on disk."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _corpus_text import zipf_text  # tests/_corpus_text.py

from qwem_lib.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")

LONG = "x" * 300        # a file name over 255 bytes: ENAMETOOLONG


def _text(seed=0):
    return zipf_text(seed, size=3000)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(_text())
    return path


@pytest.fixture
def vectors(tmp_path):
    """A tiny embeddings file whose words are not ASCII."""
    path = tmp_path / "emb.txt"
    path.write_text("4 2\nσ 1 0\n× 0.9 0.1\na 0.1 1\nb 0.5 0.5\n", encoding="utf-8")
    return path


def _stats(corpus):
    return ["--corpus", str(corpus), "--scheme", "none", "--vocab-size", "12",
            "--dim", "2", "--window", "3", "--quiet"]


W2V = ["--loss", "sgns", "--reweight", "word2vec", "--threads", "1"]


def _one_line(err: str, *fragments, parser: bool = False) -> str:
    """``err`` is exactly one line, ``qwem: error: ...`` (``qwem COMMAND: error:`` for
    the parser), holding every fragment, and no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    head = lines[0].split(": error: ")[0]
    if parser:
        assert head.startswith("qwem") and len(head.split()) <= 2, err
    else:
        assert head == "qwem", err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _refused(capsys, argv, *fragments):
    """``main(argv)`` returns 2 with one error line."""
    assert main(argv) == 2
    return _one_line(capsys.readouterr().err, *fragments)


def _parser_refuses(capsys, argv, *fragments):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return _one_line(capsys.readouterr().err, *fragments, parser=True)


def _files(folder: Path) -> set:
    """Every file and folder under ``folder``, but the (isolated) cache's."""
    return {p.relative_to(folder) for p in folder.rglob("*")
            if p.relative_to(folder).parts[0] != "cache"}


# ----------------------------------------------------------------------------------
# 1. --init-scale whose square or products over- or underflow
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["1e200", "1e-200"])
def test_theory_init_scale_out_of_range_is_one_line(corpus, tmp_path, capsys, scale):
    out = tmp_path / "theory.json"
    _refused(capsys, ["theory", *_stats(corpus), "--init-scale", scale,
                      "--out", str(out)], "--init-scale")
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], W2V], ids=["qwem", "word2vec"])
def test_train_huge_init_scale_names_init_scale_not_lr(corpus, tmp_path, capsys,
                                                        extra):
    run = tmp_path / "run"
    line = _refused(capsys, ["train", *_stats(corpus), *extra, "--init-scale",
                             "1e200", "--out", str(run)], "--init-scale", "overflow")
    assert "--lr" not in line
    assert not run.exists()


def test_config_init_scale_bounds():
    from qwem_lib.runtime.errors import QwemError
    from qwem_lib.train import TrainConfig
    from qwem_lib.word2vec import Word2VecConfig

    for bad in (1e200, 1e-200):
        with pytest.raises(QwemError, match=r"--init-scale"):
            TrainConfig(init_scale=bad)
        with pytest.raises(QwemError, match=r"--init-scale"):
            Word2VecConfig(init_scale=bad)
    with pytest.raises(QwemError, match=r"float32"):
        TrainConfig(init_scale=1e-30, dtype="float32")   # fine in float64 only
    assert TrainConfig(init_scale=1e-30).init_scale == 1e-30
    assert Word2VecConfig(init_scale=0.1).init_scale == 0.1


# ----------------------------------------------------------------------------------
# 2. --subsample below 1e-12 (a denormal one) blamed the corpus
# ----------------------------------------------------------------------------------

def test_embed_tiny_subsample_names_subsample(corpus, tmp_path, capsys):
    out = tmp_path / "e.txt"
    line = _refused(capsys, ["embed", *_stats(corpus), "--subsample", "1e-300",
                             "--out", str(out)], "--subsample", "1e-12")
    assert "corpus" not in line
    assert not out.exists()


def test_word2vec_tiny_subsample_names_subsample(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    _refused(capsys, ["train", *_stats(corpus), *W2V, "--subsample", "1e-300",
                      "--out", str(run)], "--subsample", "1e-12")
    assert not run.exists()


def test_subsample_zero_and_normal_values_still_work(corpus, tmp_path, capsys):
    from qwem_lib.word2vec import Word2VecConfig

    assert Word2VecConfig(subsample=0).subsample == 0.0
    assert Word2VecConfig(subsample=1e-12).subsample == 1e-12
    assert main(["embed", *_stats(corpus), "--subsample", "1e-3",
                 "--out", str(tmp_path / "e.txt")]) == 0


# ----------------------------------------------------------------------------------
# 3. --checkpoints 0 and word2vec --batch-size 0 are refused, not replaced by defaults
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,flag", [
    (["--checkpoints", "0"], "--checkpoints"),
    (["--checkpoints", "-3"], "--checkpoints"),
    (W2V + ["--checkpoints", "0"], "--checkpoints"),
    (W2V + ["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-1"], "--batch-size"),
])
def test_zero_checkpoints_or_batch_size_is_refused(corpus, tmp_path, capsys, extra,
                                                   flag):
    run = tmp_path / "run"
    _parser_refuses(capsys, ["train", *_stats(corpus), *extra, "--out", str(run)],
                    flag)
    assert not run.exists()


# ----------------------------------------------------------------------------------
# 4. --min-article-tokens < 0: refused alike for a file and a folder corpus
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("as_folder", [False, True], ids=["file", "folder"])
def test_negative_min_article_tokens_is_refused_by_the_parser(corpus, tmp_path,
                                                             capsys, as_folder):
    source = corpus
    if as_folder:
        source = tmp_path / "folder"
        source.mkdir()
        (source / "a.txt").write_text(_text(1))
    out = tmp_path / "e.txt"
    _parser_refuses(capsys, ["embed", *_stats(source), "--min-article-tokens", "-5",
                             "--out", str(out)], "--min-article-tokens")
    assert not out.exists()


# ----------------------------------------------------------------------------------
# 5. --resume in a folder without a checkpoint
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("exists", [False, True], ids=["missing", "empty"])
def test_resume_without_checkpoint_is_refused(corpus, tmp_path, capsys, exists):
    run = tmp_path / "run"
    if exists:
        run.mkdir()
    before = _files(tmp_path)
    _refused(capsys, ["train", *_stats(corpus), "--full-batch", "--resume",
                      "--out", str(run)], "no checkpoint", "--resume", str(run))
    assert _files(tmp_path) == before
    assert run.exists() == exists


def test_word2vec_resume_without_checkpoint_is_refused(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    before = _files(tmp_path)
    _refused(capsys, ["train", *_stats(corpus), *W2V, "--resume", "--out", str(run)],
             "no checkpoint", "--resume")
    assert _files(tmp_path) == before


# ----------------------------------------------------------------------------------
# 6. names over 255 bytes (ENAMETOOLONG)
# ----------------------------------------------------------------------------------

def _too_long_cases(corpus, tmp_path, vectors):
    long = str(tmp_path / LONG)
    return {
        "embed --corpus": (["embed", *_stats(long), "--out",
                            str(tmp_path / "e.txt")], "--corpus"),
        "embed --out": (["embed", *_stats(corpus), "--out", long], "--out"),
        "embed --timings": (["embed", *_stats(corpus), "--out",
                             str(tmp_path / "e.txt"), "--timings", long],
                            "--timings"),
        "eval FILE": (["eval", long], "FILE"),
        "eval --out": (["eval", str(vectors), "--out", long], "--out"),
        "shard --out": (["shard", str(corpus), "--parts", "2", "--out", long],
                        "--out"),
        "train --out": (["train", *_stats(corpus), "--full-batch", "--out", long],
                        "--out"),
        "theory --out": (["theory", *_stats(corpus), "--out", long], "--out"),
    }


@pytest.mark.parametrize("case", ["embed --corpus", "embed --out", "embed --timings",
                                  "eval FILE", "eval --out", "shard --out",
                                  "train --out", "theory --out"])
def test_name_too_long_is_one_line(corpus, tmp_path, vectors, capsys, case):
    argv, flag = _too_long_cases(corpus, tmp_path, vectors)[case]
    before = _files(tmp_path)
    line = _refused(capsys, argv, flag, "too long")
    assert len(line) < 400                  # the path is shortened
    assert _files(tmp_path) == before


# ----------------------------------------------------------------------------------
# 7. standard output: a full disk, an ASCII-only encoding
# ----------------------------------------------------------------------------------

def _qwem(*argv, env=None, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "qwem_lib", *argv], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_stdout_on_a_full_device_is_one_line(vectors):
    with open("/dev/full", "w") as full:
        proc = _qwem("neighbors", str(vectors), "a", "-k", "3", stdout=full)
    assert proc.returncode == 2, proc.stderr
    _one_line(proc.stderr, "standard output", "No space left")


def test_stdout_failure_in_process_is_one_line(vectors, capsys, monkeypatch):
    """The same without /dev/full: a stdout whose writes fail with ENOSPC."""
    import errno

    class Full:
        encoding, errors = "utf-8", "strict"

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Full())
    assert main(["neighbors", str(vectors), "a", "-k", "3"]) == 2
    _one_line(capsys.readouterr().err, "standard output", "No space left")


def test_ascii_only_stdout_prints_escapes(vectors):
    proc = _qwem("neighbors", str(vectors), "a", "-k", "3",
                 env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "\\u03c3" in proc.stdout and "\\xd7" in proc.stdout


def test_main_does_not_change_streams_at_import():
    code = ("import sys; e = sys.stdout.errors; import qwem_lib.cli; "
            "assert sys.stdout.errors == e, sys.stdout.errors; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# ----------------------------------------------------------------------------------
# 8. --timings that cannot be written: refused before any work, or --out withheld
# ----------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_timings_on_a_full_device_is_refused_before_work(corpus, tmp_path, capsys):
    out = tmp_path / "e.txt"
    before = _files(tmp_path)
    _refused(capsys, ["embed", *_stats(corpus), "--out", str(out),
                      "--timings", "/dev/full"], "--timings", "/dev/full")
    assert not out.exists()
    assert _files(tmp_path) == before


@pytest.mark.parametrize("where", ["folder", "file in a file"])
def test_timings_unwritable_place_is_refused_before_work(corpus, tmp_path, capsys,
                                                        where):
    out = tmp_path / "e.txt"
    blocker = tmp_path / "plain"
    blocker.write_text("x")
    timings = tmp_path if where == "folder" else blocker / "t.json"
    before = _files(tmp_path)
    _refused(capsys, ["embed", *_stats(corpus), "--out", str(out),
                      "--timings", str(timings)], "--timings")
    assert _files(tmp_path) == before


def test_timings_failing_at_the_end_leaves_no_out(corpus, tmp_path, capsys,
                                                  monkeypatch):
    """A --timings write that fails after the run (the disk filled meanwhile): the
    embeddings are not left behind as if the command had succeeded."""
    from qwem_lib.runtime import _atomic
    from qwem_lib.runtime.errors import QwemError

    def full(dest, obj, **kwargs):
        raise QwemError(f"cannot write {dest}: No space left on device")

    monkeypatch.setattr(_atomic, "write_json", full)
    out = tmp_path / "e.txt"
    before = _files(tmp_path)
    assert main(["embed", *_stats(corpus), "--out", str(out), "--timings",
                 str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("qwem: error: cannot write")
    assert not out.exists()
    assert _files(tmp_path) == before


def test_embed_with_timings_still_writes_both(corpus, tmp_path):
    out, timings = tmp_path / "e.txt", tmp_path / "t.json"
    assert main(["embed", *_stats(corpus), "--out", str(out), "--timings",
                 str(timings)]) == 0
    assert out.read_text().splitlines()[0] == "12 2"
    assert "stages" in timings.read_text()
