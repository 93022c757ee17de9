"""qwem_lib: word2vec as matrix factorisation of M* (Karkada et al., NeurIPS 2025).

The top level is the paper, one object per module:

* :mod:`~qwem_lib.losses`: word2vec's loss, its quartic approximation (QWEM) and the
  reweightings of word pairs (Sec. 3, Setting 3.1);
* :mod:`~qwem_lib.targets`: P_ij, M*, PMI and PPMI (Thm. 1);
* :mod:`~qwem_lib.spectral`: top eigenpairs and the closed-form embeddings;
* :mod:`~qwem_lib.dynamics`: the closed-form gradient flow, timescales, step <-> time;
* :mod:`~qwem_lib.train` and :mod:`~qwem_lib.word2vec`: the two trainers;
* :mod:`~qwem_lib.evaluate` and :mod:`~qwem_lib.rmt`: analogies, similarity, task
  vectors as a spiked random matrix (Sec. 4);
* :mod:`~qwem_lib.pipeline`: text to closed-form embeddings in one call;
  :mod:`~qwem_lib.compare`: every method, timed, side by side;
* :mod:`~qwem_lib.vectors` (embedding files), :mod:`~qwem_lib.paper` (its published
  numbers), :mod:`~qwem_lib.plotting`.

Below it, each subpackage importing only those under it: :mod:`qwem_lib.corpus`
(text -> tokens -> counts), :mod:`qwem_lib.kernels` (compiled kernels and their
drivers), :mod:`qwem_lib.runtime` (errors, options, cache, atomic outputs, memory,
devices, progress, run folders); beside them :mod:`qwem_lib.book` (what chapters do
around their science) and :mod:`qwem_lib.cli` (the ``qwem`` command).

Data flows one way: text -> tokens -> counts -> targets -> (closed form | training)
-> embeddings -> evaluation.  Importing the package does nothing else: no seeding, no
plotting defaults, no downloads.
"""

__version__ = "0.1.0"
