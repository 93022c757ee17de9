"""The top-eigenpair solver against a dense eigensolver, and Theorem 1's minimiser."""

import numpy as np
import pytest
import torch

from qwem_lib.runtime.errors import QwemError
from qwem_lib.spectral import closed_form_embeddings, embeddings_from_eig, top_eigh


def _mstar_like(V, seed=0):
    """A symmetric matrix shaped like Wikipedia's M*: -2 on unobserved pairs (one big
    negative outlier), a positive low-rank part and a noisy bulk."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(V, 12, generator=g, dtype=torch.float64)
    A = X @ X.T / 4 + torch.randn(V, V, generator=g, dtype=torch.float64) / 8
    A = 0.5 * (A + A.T)
    mask = torch.rand(V, V, generator=g, dtype=torch.float64) < 0.6
    mask = mask | mask.T
    return torch.where(mask, torch.full_like(A, -2.0), A.clamp(-2, 2))


@pytest.mark.parametrize("V,k", [(700, 10), (1000, 30)])
def test_matches_dense(V, k):
    M = _mstar_like(V)
    w, U = torch.linalg.eigh(M)
    w, U = w.flip(0), U.flip(1)
    assert w[-1] < -w[0], "test matrix should have a dominant negative eigenvalue"
    res = top_eigh(M, k, tol=1e-10)
    np.testing.assert_allclose(res.eigvals.numpy(), w[:k].numpy(), rtol=1e-8)
    # Residuals are honest and bound the eigenvalue errors.
    true_res = torch.linalg.vector_norm(M @ res.eigvecs - res.eigvecs * res.eigvals, dim=0)
    np.testing.assert_allclose(res.residuals.numpy(), true_res.numpy(), atol=1e-8)
    # Orthonormal eigenvectors spanning the same subspace as the dense ones.
    I = res.eigvecs.T @ res.eigvecs
    np.testing.assert_allclose(I.numpy(), np.eye(k), atol=1e-10)
    overlap = torch.linalg.matrix_norm(U[:, :k].T @ res.eigvecs) ** 2 / k
    assert float(overlap) > 1 - 1e-6
    assert bool((res.eigvals[:-1] >= res.eigvals[1:]).all())


def test_small_problem_uses_dense_path():
    M = _mstar_like(60)
    res = top_eigh(M, 5)
    w = torch.linalg.eigvalsh(M).flip(0)[:5]
    np.testing.assert_allclose(res.eigvals.numpy(), w.numpy(), rtol=1e-12)


def test_float32():
    M = _mstar_like(800).float()
    res = top_eigh(M, 10)
    assert res.eigvecs.dtype == torch.float32
    w = torch.linalg.eigvalsh(M.double()).flip(0)[:10]
    np.testing.assert_allclose(res.eigvals.double().numpy(), w.numpy(), rtol=1e-4)


def test_bad_k():
    M = _mstar_like(30)
    for k in (0, 30, 31):
        with pytest.raises(QwemError, match="d < V"):
            top_eigh(M, k)
    with pytest.raises(QwemError, match="square"):
        top_eigh(torch.zeros(3, 4), 1)


def test_embeddings_minimise_quartic_loss():
    # Theorem 1 / Eckart-Young: W = V_d Lambda_d^{1/2} minimises ||W W^T - M||_F among
    # rank-d factorisations when the top d eigenvalues are positive; gradient descent on
    # the loss from a random start must not beat it, and its gradient vanishes there.
    M = _mstar_like(300, seed=3)
    d = 6
    W, eig = closed_form_embeddings(M, d, tol=1e-12)
    assert bool((eig.eigvals > 0).all())
    np.testing.assert_allclose((W**2).sum(0).numpy(), eig.eigvals.numpy(), rtol=1e-12)

    def loss(W):
        return 0.25 * torch.linalg.matrix_norm(W @ W.T - M) ** 2

    grad = (W @ W.T - M) @ W           # dL/dW up to a factor
    assert float(grad.norm()) < 1e-8 * float(M.norm()) * float(W.norm())
    g = torch.Generator().manual_seed(0)
    Wr = (0.1 * torch.randn(300, d, generator=g, dtype=torch.float64)).requires_grad_()
    opt = torch.optim.SGD([Wr], lr=2e-4)
    for _ in range(100):
        opt.zero_grad()
        loss(Wr).backward()
        opt.step()
    with torch.no_grad():
        assert float(loss(Wr)) >= float(loss(W)) * (1 - 1e-9)
    # The closed-form loss equals the Eckart-Young tail sum of squared eigenvalues.
    w_all = torch.linalg.eigvalsh(M)
    tail = (w_all**2).sum() - (eig.eigvals**2).sum()
    np.testing.assert_allclose(float(4 * loss(W)), float(tail), rtol=1e-9)


def test_negative_eigenvalues_give_zero_columns():
    vals = torch.tensor([3.0, -1.0], dtype=torch.float64)
    vecs = torch.eye(2, dtype=torch.float64)
    W = embeddings_from_eig(vals, vecs)
    np.testing.assert_allclose(W.numpy(), [[3**0.5, 0], [0, 0]])
