"""Window counts (dense and sparse) against a naive double loop and hand-worked
cases."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse
import torch

from qwem_lib.corpus.cooccurrence import (MAX_WINDOW, check_window, count_pairs,
                                          count_pairs_naive, count_pairs_sparse,
                                          window_weights)
from qwem_lib.runtime import memory
from qwem_lib.runtime.errors import QwemError


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


# ----------------------------------------------------------------------------------
# Sparse counts


def _assert_canonical_symmetric(C, V):
    """A float64 (V, V) CSR matrix with int32 indices, strictly increasing columns
    in every row (sorted, no duplicates), no stored zeros, equal to its transpose
    entry for entry (both triangles stored)."""
    assert isinstance(C, scipy.sparse.csr_matrix)
    assert C.shape == (V, V) and C.dtype == np.float64
    assert C.indptr.dtype == np.int32 and C.indices.dtype == np.int32
    assert C.indptr[0] == 0 and C.indptr[-1] == C.nnz == len(C.indices) == len(C.data)
    assert np.all(np.diff(C.indptr) >= 0)
    for i in range(V):
        cols = C.indices[C.indptr[i]:C.indptr[i + 1]]
        assert np.all(np.diff(cols) > 0), f"row {i}: columns not strictly increasing"
        assert np.all((cols >= 0) & (cols < V))
    assert np.all(C.data != 0)
    # Recomputed from scratch, not the flag count_pairs_sparse sets.
    D = scipy.sparse.csr_matrix((C.data, C.indices, C.indptr), shape=C.shape)
    assert D.has_canonical_format
    T = C.T.tocsr()
    T.sort_indices()
    np.testing.assert_array_equal(T.indptr, C.indptr)
    np.testing.assert_array_equal(T.indices, C.indices)
    np.testing.assert_array_equal(T.data, C.data)


def _sparse_cases():
    rng = np.random.default_rng(7)
    runs = np.repeat(rng.integers(0, 5, 150), rng.integers(1, 6, 150))
    return {
        "T600-V7-L3": (rng.integers(0, 7, 600), 7, 3),
        "T50-V5-L16": (rng.integers(0, 5, 50), 5, 16),
        "L-beyond-T": (rng.integers(0, 6, 9), 6, 20),
        "T3": (np.array([2, 0, 2]), 4, 2),
        "T2-same-word": (np.array([1, 1]), 3, 4),
        "T1": (np.array([1]), 3, 2),
        "T0": (np.zeros(0, dtype=np.int64), 3, 2),
        "T2000-V40-L5": (rng.integers(0, 40, 2000), 40, 5),
        "unused-words": (rng.choice([0, 3, 64, 65, 129, 199], 400), 200, 4),
        "adjacent-repeats": (runs, 5, 3),
        "int32-ids": (rng.integers(0, 70, 500).astype(np.int32), 70, 7),
    }


@pytest.mark.parametrize("case", list(_sparse_cases()))
@pytest.mark.parametrize("weighting", ["linear", "uniform"])
def test_sparse_equals_naive_and_dense(case, weighting):
    ids, V, L = _sparse_cases()[case]
    C = count_pairs_sparse(ids, V, L, weighting)
    _assert_canonical_symmetric(C, V)
    got = C.toarray()
    np.testing.assert_array_equal(got, count_pairs_naive(ids, V, L, weighting))
    assert np.array_equal(got, count_pairs(ids, V, L, weighting).numpy())


def test_sparse_hand_worked_example():
    # a b a, window 2, weights (2, 1): (a,b) twice at s=1, (a,a) once at s=2 -> the
    # diagonal gets 2 * 1 (the pair seen from both ends).
    C = count_pairs_sparse(np.array([0, 1, 0]), 2, context_len=2)
    np.testing.assert_array_equal(C.toarray(), [[2.0, 4.0], [4.0, 0.0]])
    np.testing.assert_array_equal(C.indptr, [0, 2, 3])
    np.testing.assert_array_equal(C.indices, [0, 1, 0])


@pytest.mark.parametrize("case", ["T600-V7-L3", "T2000-V40-L5", "adjacent-repeats",
                                  "L-beyond-T"])
def test_sparse_custom_weights_store_no_zeros(case):
    ids, V, L = _sparse_cases()[case]
    rng = np.random.default_rng(L)
    w = rng.uniform(0.1, 3.0, L)
    w[1::2] = 0.0  # pairs seen only at these separations must not be stored
    C = count_pairs_sparse(ids, V, L, w)
    _assert_canonical_symmetric(C, V)
    ref = count_pairs_naive(ids, V, L, w)
    np.testing.assert_allclose(C.toarray(), ref, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(C.toarray() != 0, ref != 0)
    assert count_pairs_sparse(ids, V, L, np.zeros(L)).nnz == 0


def test_sparse_zipfian_stream_and_larger_vocabulary():
    # Several blocks of 64 columns, frequent and rare rows, ids beyond one block.
    rng = np.random.default_rng(3)
    V = 300
    p = 1 / np.arange(1, V + 1)
    ids = rng.choice(V, 6000, p=p / p.sum())
    ids[::97] = V - 1  # the last column
    C = count_pairs_sparse(ids, V, 6)
    _assert_canonical_symmetric(C, V)
    assert np.array_equal(C.toarray(), count_pairs(ids, V, 6).numpy())


@pytest.mark.parametrize("weighting", ["linear", [0.3, 1.7, 0.0, 2.9, 0.11]])
def test_sparse_result_does_not_depend_on_threads(weighting):
    rng = np.random.default_rng(5)
    V = 150
    p = 1 / np.arange(1, V + 1)
    ids = rng.choice(V, 5000, p=p / p.sum())
    ref = count_pairs_sparse(ids, V, 5, weighting, n_threads=1)
    for n in (2, 3):
        got = count_pairs_sparse(ids, V, 5, weighting, n_threads=n)
        np.testing.assert_array_equal(got.indptr, ref.indptr)
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_array_equal(got.data.view(np.int64), ref.data.view(np.int64))


def test_sparse_progress_bar_does_not_change_the_result(monkeypatch):
    monkeypatch.setenv("QWEM_PROGRESS", "1")
    ids = np.random.default_rng(4).integers(0, 30, 800)
    got = count_pairs_sparse(ids, 30, 4, progress=True)
    assert np.array_equal(got.toarray(), count_pairs_naive(ids, 30, 4))


@pytest.mark.parametrize("bad", [0, -1, 2.5, MAX_WINDOW + 1])
def test_sparse_bad_window(bad):
    with pytest.raises(QwemError, match=r"window \(--window\) must be an integer"):
        count_pairs_sparse(np.array([0, 1]), 2, context_len=bad)


@pytest.mark.parametrize("ids", [np.array([0, 5]), np.array([-1, 0])])
def test_sparse_ids_out_of_range(ids):
    with pytest.raises(QwemError, match="out-of-vocabulary"):
        count_pairs_sparse(ids, 3)


@pytest.mark.parametrize("ids", [np.array([[0, 1]]), np.array([0.0, 1.0])])
def test_sparse_ids_must_be_1d_integers(ids):
    with pytest.raises(QwemError, match="1-D integer array"):
        count_pairs_sparse(ids, 3)


@pytest.mark.parametrize("V", [0, -1, 2.0, True])
def test_sparse_vocab_size_is_checked(V):
    with pytest.raises(QwemError, match=r"vocab_size \(--vocab-size\) must be an "
                                        r"integer >= 1"):
        count_pairs_sparse(np.array([0, 1]), V, 2)


@pytest.mark.parametrize("weighting", ["cubic", [1.0, -1.0], [1.0, 2.0, 3.0],
                                       [np.nan, 1.0]])
def test_sparse_bad_weighting(weighting):
    with pytest.raises(QwemError, match="weighting|window weights"):
        count_pairs_sparse(np.array([0, 1]), 2, 2, weighting)


def test_sparse_memory_check_before_work_and_before_the_result(monkeypatch):
    ids = np.random.default_rng(6).integers(0, 200, 3000)
    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000)
    with pytest.raises(QwemError, match=r"counting pairs \(sparse statistics\) of "
                                        r"3,000 tokens for V = 200 needs about"):
        count_pairs_sparse(ids, 200, 16)
    # Enough for the working arrays, not for the result (known after pass 1).
    calls = []

    def avail(device=None):
        calls.append(device)
        return 10**9 if len(calls) == 1 else 1000

    monkeypatch.setattr(memory, "available_bytes", avail)
    with pytest.raises(QwemError, match=r"the sparse pair counts for V = 200 "
                                        r"\([0-9,]+ entries\) needs about .*"
                                        r"--vocab-size"):
        count_pairs_sparse(ids, 200, 16)
    assert len(calls) == 2
    monkeypatch.setenv(memory.ENV, "0")
    assert count_pairs_sparse(ids, 200, 16).nnz > 0


def test_importing_the_module_does_not_import_numba():
    code = ("import sys, numpy as np; import qwem_lib.corpus.cooccurrence as c; "
            "assert 'numba' not in sys.modules; "
            "c.count_pairs_sparse(np.array([0, 1, 0]), 2, 2); "
            "assert 'numba' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.mark.parametrize("V, density", [(1, 1.0), (40, 0.0), (60, 0.05), (200, 0.6)])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_add_counts_equals_scipy_bit_for_bit(V, density, n_threads):
    import scipy.sparse as sp

    from qwem_lib.corpus.cooccurrence import add_counts

    rng = np.random.default_rng(V)

    def counts(seed):
        M = sp.random(V, V, density=density, format="csr", random_state=seed,
                      data_rvs=lambda n: rng.integers(1, 10**6, n) * 0.5)
        return M

    A, B = counts(1), counts(2)
    B.indptr = B.indptr.astype(np.int64)  # mixed index types are fine
    B.indices = B.indices.astype(np.int64)
    C = add_counts(A, B, n_threads=n_threads)
    want = (A + B).tocsr()
    want.sort_indices()
    assert C.has_canonical_format and C.indices.dtype == np.int32
    np.testing.assert_array_equal(C.indptr, want.indptr)
    np.testing.assert_array_equal(C.indices, want.indices)
    np.testing.assert_array_equal(C.data, want.data)
    # A + A doubles every entry, and the inputs are left as they were
    before = A.data.copy()
    np.testing.assert_array_equal(add_counts(A, A).toarray(), 2 * A.toarray())
    np.testing.assert_array_equal(A.data, before)


def test_add_counts_refuses_other_shapes():
    import scipy.sparse as sp

    from qwem_lib.corpus.cooccurrence import add_counts

    with pytest.raises(QwemError, match="different vocabularies"):
        add_counts(sp.csr_matrix((3, 3)), sp.csr_matrix((4, 4)))


@pytest.mark.parametrize("V, density", [(1, 1.0), (30, 0.0), (80, 0.1), (200, 0.7)])
def test_upper_triangle_and_mirror_give_the_matrix_back(V, density):
    import scipy.sparse as sp

    from qwem_lib.corpus.cooccurrence import mirror_upper, upper_triangle

    A = sp.random(V, V, density=density, format="csr", random_state=V)
    A = (A + A.T).tocsr()  # symmetric, canonical
    A.sort_indices()
    U = upper_triangle(A, n_threads=3)
    want = sp.triu(A).tocsr()
    want.sort_indices()
    np.testing.assert_array_equal(U.indptr, want.indptr)
    np.testing.assert_array_equal(U.indices, want.indices)
    np.testing.assert_array_equal(U.data, want.data)
    B = mirror_upper(U)
    assert B.has_canonical_format
    np.testing.assert_array_equal(B.indptr, A.indptr)
    np.testing.assert_array_equal(B.indices, A.indices)
    np.testing.assert_array_equal(B.data, A.data)


def test_sparse_sums_leave_non_canonical_inputs_as_they_were():
    """A Dask worker may hold an input for other tasks: it must not be changed."""
    import scipy.sparse as sp

    from qwem_lib.corpus.cooccurrence import add_counts, upper_triangle

    # row 0 holds column 2, then column 0 twice: unsorted, with a duplicate
    A = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 0]),
                       np.array([0, 3, 3, 3])), shape=(3, 3))
    assert not A.has_canonical_format
    data, indices = A.data.copy(), A.indices.copy()
    np.testing.assert_array_equal(add_counts(A, A).toarray(), 2 * A.toarray())
    np.testing.assert_array_equal(upper_triangle(A).toarray(), np.triu(A.toarray()))
    np.testing.assert_array_equal(A.data, data)
    np.testing.assert_array_equal(A.indices, indices)
