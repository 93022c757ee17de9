"""qwem_lib.history: the checkpoint file both trainers share, and the divergence error."""

import json

import numpy as np
import pytest

from qwem_lib.errors import QwemError
from qwem_lib.history import diverged_error, load_checkpoint, save_checkpoint

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
    with pytest.raises(QwemError, match="another configuration or corpus") as e:
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
