"""Window counts against a naive double loop and hand-worked cases."""

import numpy as np
import pytest
import torch

from qwem_lib.cooccurrence import count_pairs, count_pairs_naive, window_weights
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
