"""Compiled kernels (numba) and their drivers: SGNS on threads (:mod:`.sgns_cpu`), its
batched torch twin and CUDA path (:mod:`.sgns_torch`), the sparse target products
(``_sparse``), the co-occurrence counters (``_cooccurrence``) and the expected-loss
passes (``_pair``); :mod:`.threads` runs kernels on several threads.  Private ``_``
modules hold the kernels, imported only when a run starts (importing the package
compiles nothing); the drivers are public.
"""
