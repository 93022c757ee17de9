"""Settings shared by the unit tests and the chapter notebooks run by nbval.

This module is imported before any test is collected, so the environment set here is
inherited by the Jupyter kernels that nbval starts for the chapter notebooks.
"""

import os

import pytest

# Chapters read QWEM_SCALE in their configuration cell; tests run them small.
os.environ.setdefault("QWEM_SCALE", "small")
# Figures render off-screen, in this process and in the notebook kernels (so under
# nbval the kernels draw nothing to capture: chapters check numbers with assert, and
# `make book`, which does not set this, renders the figures).
os.environ.setdefault("MPLBACKEND", "Agg")
# One BLAS/OpenMP pool sized to the machine: without a cap, torch and numpy in a kernel
# plus pytest itself can oversubscribe small CI machines.
_threads = str(max(1, min(os.cpu_count() or 1, 8)))
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds (deselect with -m 'not slow')"
    )


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh, empty QWEM_CACHE for one test (no cached tokens, eigenpairs or runs)."""
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "cache"))
