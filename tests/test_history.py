"""qwem_lib.runtime.history: the checkpoint file both trainers share, and the
divergence error."""

import itertools
import json

import numpy as np
import pytest
import torch

from qwem_lib.runtime.errors import QwemError
from qwem_lib.runtime.history import (RUN_FILES, data_fingerprint, diverged_error,
                                      load_checkpoint, meta_differences,
                                      prepare_run_dir, save_checkpoint)

META = {"config": {"lr": 0.5, "shape": (2, 3)}, "n_tokens": 7}


def _write(path):
    return save_checkpoint(path, META, W=np.arange(6.0).reshape(2, 3),
                           step=np.int64(4), history=np.array(json.dumps({"a": 1})))


def test_round_trip_keeps_arrays_and_meta(tmp_path):
    path = _write(tmp_path / "checkpoint.npz")
    assert path == tmp_path / "checkpoint.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no leftovers
    ck = load_checkpoint(path, META)  # the tuple compares equal after a JSON round trip
    assert set(ck) == {"W", "step", "history", "meta"}
    np.testing.assert_array_equal(ck["W"], np.arange(6.0).reshape(2, 3))
    assert int(ck["step"]) == 4 and json.loads(str(ck["history"])) == {"a": 1}


def test_other_meta_is_refused_naming_the_path(tmp_path):
    path = _write(tmp_path / "checkpoint.npz")
    other = {**META, "n_tokens": 8}
    with pytest.raises(QwemError, match="another run: n_tokens is 7 there and 8 "
                                        "here") as e:
        load_checkpoint(path, other)
    assert str(path) in str(e.value)


def test_unreadable_checkpoints_give_one_clear_error(tmp_path):
    good = _write(tmp_path / "good.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    # every truncation, garbage, an empty file, a missing file, an .npz without meta
    cases = [good[:n] for n in range(0, len(good), max(1, len(good) // 97))]
    cases += [b"not a checkpoint at all"]
    for data in cases:
        bad.write_bytes(data)
        with pytest.raises(QwemError, match=r"cannot read the checkpoint .*bad\.npz: "
                                             r".*; delete it to start afresh"):
            load_checkpoint(bad, META)
    np.savez(bad, W=np.zeros(2))
    with pytest.raises(QwemError, match="cannot read the checkpoint"):
        load_checkpoint(bad, META)
    with pytest.raises(QwemError, match="cannot read the checkpoint"):
        load_checkpoint(tmp_path / "missing.npz", META)


def test_diverged_error_message():
    e = diverged_error(12, "the loss", 0.25, "use a smaller lr")
    assert isinstance(e, QwemError)
    assert str(e) == ("training diverged at step 12: the loss became NaN/inf with "
                      "learning rate 0.25; use a smaller lr")
    assert "step 3..34: W" in str(diverged_error("3..34", "W", 1e4, "x"))


# ----------------------------------------------------------------------------------
# damaged checkpoints: one line, found at load time
# ----------------------------------------------------------------------------------

def _assert_one_line_damage(path):
    with pytest.raises(QwemError, match=r"cannot read the checkpoint .*; delete it "
                                        r"to start afresh \(overwrite=True, "
                                        r"--overwrite\)") as e:
        load_checkpoint(path, META, required=("W", "step", "history"))
    assert "\n" not in str(e.value)


def _writers():
    arrays = dict(W=np.arange(20.0).reshape(10, 2), step=np.int64(4),
                  history=np.array(json.dumps({"a": 1})))
    return arrays, {"stored": np.savez, "compressed": np.savez_compressed}


@pytest.mark.parametrize("how", ["stored", "compressed"])
def test_truncated_checkpoint_at_every_offset_is_one_line(tmp_path, how):
    arrays, writers = _writers()
    good = tmp_path / "good.npz"
    writers[how](good, **arrays, meta=np.array(json.dumps(META)))
    data = good.read_bytes()
    bad = tmp_path / "checkpoint.npz"
    for n in range(len(data)):  # every truncation, the empty file included
        bad.write_bytes(data[:n])
        _assert_one_line_damage(bad)


@pytest.mark.parametrize("how", ["stored", "compressed"])
def test_flipped_bytes_are_refused_or_harmless(tmp_path, how):
    """A byte flipped anywhere: a one-line error, or (in the zip's unchecked fields:
    dates, comments) the very same arrays; never a traceback or other values."""
    arrays, writers = _writers()
    good = tmp_path / "good.npz"
    writers[how](good, **arrays, meta=np.array(json.dumps(META)))
    data = good.read_bytes()
    bad = tmp_path / "checkpoint.npz"
    refused = 0
    for offset, bits in itertools.product(range(len(data)), (0x01, 0x10, 0xFF)):
        flipped = bytearray(data)
        flipped[offset] ^= bits
        bad.write_bytes(bytes(flipped))
        try:
            ck = load_checkpoint(bad, META, required=("W", "step", "history"))
        except QwemError as e:
            assert "cannot read the checkpoint" in str(e) and "\n" not in str(e)
            refused += 1
            continue
        for k, v in arrays.items():
            np.testing.assert_array_equal(ck[k], v)
    assert refused > len(data)


def test_odd_files_are_one_line(tmp_path):
    bad = tmp_path / "checkpoint.npz"
    np.save(bad.with_suffix(".npy"), np.zeros(3))  # an .npy, not an .npz
    bad.write_bytes(bad.with_suffix(".npy").read_bytes())
    _assert_one_line_damage(bad)
    bad.write_text("W,step\n1,2\n")
    _assert_one_line_damage(bad)
    np.savez(bad, W=np.array([object()], dtype=object), meta=np.array("{}"))
    _assert_one_line_damage(bad)  # pickled data is not read
    bad.unlink()
    bad.mkdir()
    _assert_one_line_damage(bad)  # a folder


def test_missing_array_is_named(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, META, W=np.zeros(2))
    with pytest.raises(QwemError, match=r"the array\(s\) step, history are missing "
                                        r"\(damaged"):
        load_checkpoint(path, META, required=("W", "step", "history"))


# ----------------------------------------------------------------------------------
# another run's checkpoint: each differing setting named
# ----------------------------------------------------------------------------------

def test_meta_differences_are_named_by_setting():
    saved = {"config": {"lr": 0.1, "window": 10, "seed": 0}, "engine": "kernel",
             "data": "sha256:aa", "run": {"corpus": "sha256:c1", "window": 10}}
    here = {"config": {"lr": 0.2, "window": 16, "seed": 0}, "engine": "torch",
            "data": "sha256:bb", "run": {"corpus": "sha256:c2", "window": 16,
                                         "scheme": "text8"}}
    assert meta_differences(saved, here) == [
        "lr is 0.1 there and 0.2 here", "window is 10 there and 16 here",
        "engine is 'kernel' there and 'torch' here",
        "the data (corpus statistics) differ", "the corpus differs",
        "scheme is unset there and 'text8' here"]
    assert meta_differences(saved, json.loads(json.dumps(saved))) == []
    # a fingerprint that is a dict (the command line's corpus identity) is one line
    a = {"run": {"corpus": {"sha256": "aa", "size": 3, "format": "text8"}}}
    b = {"run": {"corpus": {"sha256": "bb", "size": 4, "format": "text8"}}}
    assert meta_differences(a, b) == ["the corpus differs"]
    assert meta_differences({"file": {"sha256": "a"}}, {"file": {"sha256": "b"}}) \
        == ["the file differs (its content hash)"]


def test_another_run_is_refused_in_one_line(tmp_path):
    path = _write(tmp_path / "checkpoint.npz")
    other = {"config": {"lr": 0.25, "shape": [2, 3]}, "n_tokens": 7}
    with pytest.raises(QwemError) as e:
        load_checkpoint(path, other)
    assert str(e.value) == (
        f"the checkpoint {path} belongs to another run: lr is 0.5 there and 0.25 "
        "here; resume with the same settings, or start afresh with overwrite=True "
        "(--overwrite) instead of resuming")


def test_data_fingerprint():
    P = torch.rand(5, 5, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(0))
    u = P.sum(1)
    fp = data_fingerprint(P, u)
    assert fp.startswith("sha256:") and fp == data_fingerprint(P.clone(), u.numpy())
    assert data_fingerprint(P.to(torch.float32).double(), u) != fp or \
        torch.equal(P.to(torch.float32).double(), P)
    Q = P.clone()
    Q[4, 4] += 1e-15
    assert data_fingerprint(Q, u) != fp
    assert data_fingerprint(P.reshape(25, 1), u) != fp  # the shape counts
    # read in row blocks: the same as hashing it whole
    big = torch.arange(3 * 2_000_000, dtype=torch.float32).reshape(-1, 3)
    import hashlib
    h = hashlib.sha256(repr(tuple(big.shape)).encode())
    h.update(big.double().numpy().tobytes())
    assert data_fingerprint(big) == "sha256:" + h.hexdigest()


# ----------------------------------------------------------------------------------
# the run folder
# ----------------------------------------------------------------------------------

def test_run_files_constant():
    assert RUN_FILES == ("checkpoint.npz", "history.json", "embeddings.txt",
                         "config.json")


def test_prepare_run_dir_creates_the_folder(tmp_path):
    out = tmp_path / "a" / "b"
    prepare_run_dir(out, resume=False, overwrite=False)
    assert out.is_dir()
    prepare_run_dir(out, resume=False, overwrite=False)  # empty: fine again


def test_prepare_run_dir_refuses_a_file(tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    for resume, overwrite in ((False, False), (True, False), (False, True)):
        with pytest.raises(QwemError, match=r"the output folder .*out is a file; give "
                                            r"a folder"):
            prepare_run_dir(f, resume=resume, overwrite=overwrite)
    assert f.read_text() == "x"


def test_prepare_run_dir_refuses_another_runs_files(tmp_path):
    (tmp_path / "history.json").write_text("{}")
    (tmp_path / "embeddings.txt").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    for resume in (False, True):  # resume: but there is no checkpoint to continue
        with pytest.raises(QwemError) as e:
            prepare_run_dir(tmp_path, resume=resume, overwrite=False)
        assert str(e.value) == (
            f"{tmp_path} already holds a run (history.json, embeddings.txt); use "
            "resume=True (--resume) to continue it, overwrite=True (--overwrite) to "
            "replace it, or another folder")
    assert (tmp_path / "history.json").exists()


def test_prepare_run_dir_overwrite_deletes_only_run_files(tmp_path):
    for name in RUN_FILES + ("notes.txt",):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    prepare_run_dir(tmp_path, resume=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "sub"]


def test_prepare_run_dir_resume_keeps_everything(tmp_path):
    for name in RUN_FILES:
        (tmp_path / name).write_text("x")
    for overwrite in (False, True):  # a checkpoint to resume: resume wins
        prepare_run_dir(tmp_path, resume=True, overwrite=overwrite)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RUN_FILES)
