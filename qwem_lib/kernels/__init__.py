"""Compiled kernels (numba) and their drivers: SGNS on threads, its batched torch twin,
the sparse target products and the expected-loss passes.  Private ``_`` modules hold
the kernels; the drivers are public.
"""
