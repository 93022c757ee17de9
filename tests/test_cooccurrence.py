"""Window counts against a naive double loop and hand-worked cases."""

import numpy as np
import pytest
import torch

from qwem_lib.cooccurrence import (MAX_WINDOW, check_window, count_pairs,
                                   count_pairs_naive, window_weights)
from qwem_lib.errors import QwemError


def test_hand_worked_example():
    # tokens a b a with window 2, linear weights (2, 1):
    # (a,b) at s=1 twice -> weight 2 each; (a,a) at s=2 -> weight 1, both orders.
    C = count_pairs(np.array([0, 1, 0]), 2, context_len=2).numpy()
    np.testing.assert_array_equal(C, [[2.0, 4.0], [4.0, 0.0]])


@pytest.mark.parametrize("T,V,L", [(600, 7, 3), (50, 5, 16), (3, 4, 2), (1, 3, 2),
                                   (0, 3, 2), (2000, 40, 5)])
@pytest.mark.parametrize("weighting", ["linear", "uniform"])
def test_matches_naive_loop(T, V, L, weighting):
    ids = np.random.default_rng(T + V).integers(0, V, T)
    ref = count_pairs_naive(ids, V, L, weighting)
    for kw in ({}, {"chunk_size": 37}, {"n_threads": 1}, {"n_threads": 3}):
        got = count_pairs(ids, V, L, weighting, **kw)
        assert got.dtype == torch.float64
        np.testing.assert_array_equal(got.numpy(), ref)


def test_zipfian_stream_total_weight():
    # Every position t contributes sum_{s <= min(L, T-1-t)} w_s, counted twice.
    rng = np.random.default_rng(1)
    p = 1 / np.arange(1, 51)
    ids = rng.choice(50, 5000, p=p / p.sum())
    L = 4
    w = window_weights(L)
    C = count_pairs(ids, 50, L)
    expected = 2 * sum(w[: min(L, len(ids) - 1 - t)].sum() for t in range(len(ids)))
    assert float(C.sum()) == pytest.approx(expected, rel=0, abs=1e-9)
    assert torch.equal(C, C.T)


def test_custom_weights():
    ids = np.random.default_rng(2).integers(0, 6, 300)
    w = [0.5, 0.0, 2.0]
    np.testing.assert_allclose(count_pairs(ids, 6, 3, w).numpy(),
                               count_pairs_naive(ids, 6, 3, w))


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_window(bad):
    with pytest.raises(QwemError, match="window"):
        count_pairs(np.array([0, 1]), 2, context_len=bad)


def test_ids_out_of_range():
    with pytest.raises(QwemError, match="out-of-vocabulary"):
        count_pairs(np.array([0, 5]), 3)


@pytest.mark.parametrize("bad", [0, -3, 2.0, "3", True, None, MAX_WINDOW + 1,
                                 np.int64(10**6)])
def test_window_is_checked_with_its_flag(bad):
    with pytest.raises(QwemError, match=r"window \(--window\) must be an integer from "
                                        r"1 to 1,000, got .*; use e\.g\. --window 16"):
        window_weights(bad)


def test_window_accepts_numpy_integers_and_the_bound():
    np.testing.assert_array_equal(window_weights(np.int32(3)), [3.0, 2.0, 1.0])
    assert check_window(np.uint16(7)) == 7 and type(check_window(np.int64(7))) is int
    assert len(window_weights(MAX_WINDOW)) == MAX_WINDOW
    ids = np.array([0, 1, 0])
    assert torch.equal(count_pairs(ids, np.int64(2), np.int64(2)),
                       count_pairs(ids, 2, 2))


@pytest.mark.parametrize("V", [0, -1, 2.0, True])
def test_vocab_size_is_checked(V):
    with pytest.raises(QwemError, match=r"vocab_size \(--vocab-size\) must be an "
                                        r"integer >= 1"):
        count_pairs(np.array([0, 1]), V, 2)


def test_bad_device_is_refused():
    with pytest.raises(QwemError, match=r"device \(--device\) 'gpu' is not a device"):
        count_pairs(np.array([0, 1]), 2, 2, device="gpu")
