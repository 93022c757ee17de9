"""The sparse engine: sparse targets as operators, the matrix-free eigensolver, and
the closed form on sparse statistics, against the dense path and hand-made matrices."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from qwem_lib import targets
from qwem_lib.corpus import cooccurrence
from qwem_lib.pipeline import EmbedConfig, closed_form, sparse_statistics
from qwem_lib.runtime.errors import QwemError
from qwem_lib.spectral import top_eigh


def _counts(V=200, T=20000, L=4, seed=0, unused=0):
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.4, size=T) % (V - unused)
    return cooccurrence.count_pairs(ids, V, L)


@pytest.mark.parametrize("method", ["mstar", "pmi", "ppmi"])
@pytest.mark.parametrize("k, alpha", [(1.0, 1.0), (5.0, 0.75)])
def test_sparse_target_equals_the_dense_one(method, k, alpha):
    C = _counts(unused=3)                   # three words that never occur: rows of 0
    P, u = targets.pair_probs(C.clone())
    dense = targets.target(method, P, u, negatives=k, neg_power=alpha)
    op, uni = targets.sparse_target(method, sp.csr_matrix(C.numpy()), negatives=k,
                                    neg_power=alpha)
    np.testing.assert_allclose(uni, u.numpy(), rtol=1e-14, atol=1e-18)
    torch.testing.assert_close(op.to_dense(), dense, rtol=1e-12, atol=1e-12)
    assert op.shift == (-2.0 if method == "mstar" else 0.0)
    for i in (0, 5, 199):
        np.testing.assert_allclose(op.row(i), dense[i].numpy(), rtol=1e-12, atol=1e-12)
    X = torch.randn(200, 9, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(op @ X, dense @ X, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(op @ X[:, 0], dense @ X[:, 0], rtol=1e-10, atol=1e-10)
    # float32 working copy, and the product's independence of the thread count
    op32 = op.to(torch.float32)
    assert op32.dtype == torch.float32 and op32.indices is op.indices
    torch.testing.assert_close(op32 @ X.float(), (dense @ X).float(), rtol=1e-4,
                               atol=1e-3)
    one = targets.SparseTarget(op.indptr, op.indices, op.data, op.a, op.shift,
                               n_threads=1)
    three = targets.SparseTarget(op.indptr, op.indices, op.data, op.a, op.shift,
                                 n_threads=3)
    assert torch.equal(one @ X, three @ X)


def test_m_star_is_sparse_minus_two_everywhere_else():
    """By hand: unobserved pairs of M* are -2, observed ones 2(p-q)/(p+q)."""
    C = np.array([[0, 2, 0], [2, 2, 1], [0, 1, 0]], dtype=float)
    op, u = targets.sparse_target("mstar", sp.csr_matrix(C))
    P = C / C.sum()
    q = np.outer(P.sum(1), P.sum(1))
    want = np.where(P > 0, 2 * (P - q) / (P + q), -2.0)
    np.testing.assert_allclose(op.to_dense().numpy(), want, rtol=1e-14)
    assert op.nnz == 5


def test_row_scale_gives_gamma_m_gamma():
    C = _counts(V=120, seed=4)
    P, u = targets.pair_probs(C.clone())
    M = targets.m_star(P, u)
    g = np.random.default_rng(0).uniform(0.5, 2.0, 120)
    op, _ = targets.sparse_target("mstar", sp.csr_matrix(C.numpy()), scale=g)
    G = torch.from_numpy(g)
    torch.testing.assert_close(op.to_dense(), G[:, None] * M * G[None, :],
                               rtol=1e-12, atol=1e-12)


def test_matrix_free_eigensolver_matches_dense_eigh():
    C = _counts(V=900, T=60000, L=6, seed=2)
    op, _ = targets.sparse_target("mstar", sp.csr_matrix(C.numpy()))
    M = op.to_dense()
    lam = torch.linalg.eigvalsh(M).flip(0)
    assert lam[-1] < -100 * lam[0].abs().clamp(max=1)     # the large negative one
    res = top_eigh(op, 40, work_dtype=torch.float32, residual_tol=5e-6)
    torch.testing.assert_close(res.eigvals, lam[:40], rtol=1e-9, atol=1e-9)
    true_res = torch.linalg.vector_norm(M @ res.eigvecs - res.eigvecs * res.eigvals,
                                        dim=0)
    torch.testing.assert_close(res.residuals, true_res, rtol=1e-6, atol=1e-12)
    assert float(true_res.max()) <= 5e-6 * float(lam[0])
    # small V: the operator goes through the dense path
    small, _ = targets.sparse_target("mstar", sp.csr_matrix(_counts(V=100).numpy()))
    r = top_eigh(small, 5)
    torch.testing.assert_close(r.eigvals, torch.linalg.eigvalsh(small.to_dense())
                               .flip(0)[:5], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw", [{}, {"method": "ppmi"},
                                {"negatives": 5.0, "neg_power": 0.75,
                                 "subsample": 1e-3, "subsample_draws": 2,
                                 "weight_power": 0.5}])
def test_closed_form_sparse_equals_dense(isolated_cache, kw):
    res = {}
    for engine in ("dense", "sparse"):
        cfg = EmbedConfig("sample", vocab_size=1500, embed_dim=30, engine=engine, **kw)
        res[engine] = closed_form(cfg, progress=False, cache=False)
    a, b = res["dense"], res["sparse"]
    assert a.words == b.words
    torch.testing.assert_close(b.eigvals, a.eigvals, rtol=1e-6, atol=0)
    lam1 = float(a.eigvals[0])
    assert float(b.residuals.max()) <= 1e-5 * lam1
    Ga, Gb = a.W @ a.W.T, b.W @ b.W.T
    assert float((Ga - Gb).norm() / Ga.norm()) < 1e-4


def test_engine_setting_and_cache_key(isolated_cache):
    cfg = EmbedConfig("sample", vocab_size=1000, embed_dim=10)
    assert cfg.resolved_engine() == "dense"
    assert EmbedConfig("sample", 20000, 10).resolved_engine() == "sparse"
    assert cfg.key()["engine"] == "dense"
    assert EmbedConfig("sample", 1000, 10, engine="sparse").key() != cfg.key()
    with pytest.raises(QwemError, match=r"unknown engine \(--engine\) 'fast'"):
        EmbedConfig("sample", 1000, 10, engine="fast").validate()
    tokens, op = sparse_statistics(EmbedConfig("sample", 1000, 10, engine="sparse"),
                                   progress=False)
    assert isinstance(op, targets.SparseTarget) and op.shape == (1000, 1000)


def test_embed_command_with_the_sparse_engine(tmp_path, isolated_cache, capsys):
    import json

    from qwem_lib.cli import main
    from qwem_lib.vectors import load_word2vec

    out = {}
    for engine in ("dense", "sparse"):
        out[engine] = tmp_path / f"{engine}.txt"
        assert main(["embed", "--corpus", "sample", "--vocab-size", "1200", "--dim",
                     "20", "--engine", engine, "--out", str(out[engine]),
                     "--timings", str(tmp_path / f"{engine}.json"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "sparse statistics" in err and "peak memory" in err and "residuals:" in err
    report = json.loads((tmp_path / "sparse.json").read_text())
    assert report["engine"] == "sparse" and report["n_pairs"] > 0
    assert report["peak_rss_bytes"] > 1e7 and report["n_matvecs"] > 0
    assert max(report["residuals"]) <= 1e-5 * report["eigvals"][0]
    assert json.loads((tmp_path / "dense.json").read_text())["n_pairs"] is None
    (wa, A), (wb, B) = load_word2vec(out["dense"]), load_word2vec(out["sparse"])
    assert wa == wb
    np.testing.assert_allclose((B**2).sum(0), (A**2).sum(0), rtol=1e-6)
    with pytest.raises(SystemExit) as info:                  # a usage error
        main(["embed", "--corpus", "sample", "--vocab-size", "100", "--dim", "5",
              "--engine", "fast", "--out", str(tmp_path / "x.txt")])
    assert info.value.code == 2


def test_closed_form_process_run_reports_its_own_process(isolated_cache):
    from qwem_lib import compare

    cfg = EmbedConfig("sample", vocab_size=800, embed_dim=10, engine="sparse")
    run = compare.closed_form_process_run(cfg)
    assert not run.cached and run.W.shape == (800, 10) and run.seconds > 0
    assert run.info["engine"] == "sparse" and run.info["peak_rss_bytes"] > 1e7
    inproc = closed_form(cfg, progress=False, cache=False)
    np.testing.assert_allclose(run.info["eigvals"], inproc.eigvals.numpy(), rtol=1e-9)
    again = compare.closed_form_process_run(cfg)
    assert again.cached and again.info["n_pairs"] == run.info["n_pairs"]


def test_sparse_memory_check_names_the_eigensolver(monkeypatch):
    from qwem_lib.pipeline import require_memory
    from qwem_lib.runtime import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": int(1e9))
    with pytest.raises(QwemError, match="Krylov basis .*V = 100,000, d = 300.*"
                                        "needs about 4.5 GB, but 1.0 GB"):
        require_memory(EmbedConfig("sample", 100_000, 300), "cpu")
    require_memory(EmbedConfig("sample", 20_000, 50), "cpu")     # 0.1 GB: fits


def test_operator_counts_its_products():
    op, _ = targets.sparse_target("mstar", sp.csr_matrix(_counts(V=150).numpy()))
    X = torch.randn(150, 7, dtype=torch.float64)
    op @ X
    op32 = op.to(torch.float32)
    op32 @ X.float()
    op @ X[:, 0]
    assert op.stats["columns"] == 15 and op32.stats is op.stats
    assert op.stats["seconds"] > 0


@pytest.mark.parametrize("method", ["mstar", "ppmi"])
def test_torch_csr_product_the_cuda_path_agrees_with_the_kernel(method):
    """The product CUDA runs (torch's sparse CSR), here on the CPU, against the
    compiled kernel and the dense matrix: float64 and the float32 working copy,
    vectors and blocks, with and without the rank-one shift."""
    op, _ = targets.sparse_target(method, sp.csr_matrix(_counts(unused=2).numpy()))
    via_torch = targets.SparseTarget(op.indptr, op.indices, op.data, op.a, op.shift,
                                     engine="torch")
    assert via_torch.engine == "torch" and op.engine == "kernel"
    dense = op.to_dense()
    X = torch.randn(200, 6, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(via_torch @ X, op @ X, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(via_torch @ X, dense @ X, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(via_torch @ X[:, 3], op @ X[:, 3], rtol=1e-12,
                               atol=1e-12)
    t32 = via_torch.to(torch.float32)
    assert t32.engine == "torch" and t32.dtype == torch.float32
    torch.testing.assert_close(t32 @ X.float(), op.to(torch.float32) @ X.float(),
                               rtol=1e-5, atol=1e-5)
    # the solver on the torch product finds the kernel's eigenpairs
    a, b = top_eigh(via_torch, 5), top_eigh(op, 5)
    torch.testing.assert_close(a.eigvals, b.eigvals, rtol=1e-10, atol=1e-10)
    with pytest.raises(QwemError, match="engine"):
        targets.SparseTarget(op.indptr, op.indices, op.data, op.a, op.shift,
                             engine="gpu")
