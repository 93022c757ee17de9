"""qwem_lib: word2vec as matrix factorisation of M* (Karkada et al., NeurIPS 2025).

Data flows one way: text -> tokens -> counts -> targets -> (closed form | training)
-> embeddings -> evaluation.  Importing the package does nothing else: no seeding, no
plotting defaults, no downloads.
"""

__version__ = "0.1.0"
