"""The paper's published numbers, each with where the paper states it.

Karkada, Simon, Bahri, DeWeese, *Closed-Form Training Dynamics Reveal Learned Features
and Linear Structure in Word2Vec-like Models*, NeurIPS 2025, arXiv 2502.09863.

The book quotes the paper only through this table: a chapter glues ``paper.value(key)``
into its prose (``book.Results.glue``), and the page "The paper, result by result"
(:mod:`qwem_lib.book.ledger`) compares each with the book's own result.  Nothing here is
computed; each entry is a number as printed in the paper, with its reference.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Published", "PUBLISHED", "value", "ref", "BENCHMARK_METHODS",
           "BENCHMARKS"]


@dataclass(frozen=True)
class Published:
    """One number as the paper prints it."""

    value: float | int | str
    ref: str            # where: "Fig. 3b", "Sec. 4", "App. A.2", ...
    what: str           # what it is, in a few words


#: The methods and benchmarks of the paper's Figure 3b table.
BENCHMARK_METHODS = ("word2vec", "qwem", "mstar", "ppmi", "pmi")
BENCHMARKS = ("analogy", "men", "ws353")

_FIG3B = {
    # (method, benchmark): value  (analogy: accuracy; MEN, WS353: Spearman)
    ("word2vec", "analogy"): 0.680, ("qwem", "analogy"): 0.651,
    ("mstar", "analogy"): 0.663, ("ppmi", "analogy"): 0.506, ("pmi", "analogy"): 0.084,
    ("word2vec", "men"): 0.744, ("qwem", "men"): 0.755, ("mstar", "men"): 0.755,
    ("ppmi", "men"): 0.740, ("pmi", "men"): 0.448,
    ("word2vec", "ws353"): 0.698, ("qwem", "ws353"): 0.682, ("mstar", "ws353"): 0.683,
    ("ppmi", "ws353"): 0.690, ("pmi", "ws353"): 0.221,
}
_NAMES = {"word2vec": "word2vec", "qwem": "QWEM", "mstar": "svd(M*)",
          "ppmi": "svd(PPMI)", "pmi": "svd(PMI)"}
_BENCH = {"analogy": "Google analogy accuracy", "men": "MEN Spearman",
          "ws353": "WS353 Spearman"}

PUBLISHED: dict[str, Published] = {
    f"fig3b_{m}_{b}": Published(v, "Fig. 3b", f"{_BENCH[b]}, {_NAMES[m]}")
    for (m, b), v in _FIG3B.items()
}
PUBLISHED.update({
    # the corpus and the sizes (Sec. 4, experimental setup)
    "corpus_tokens": Published(2_000_000_000, "Sec. 4", "corpus tokens (Wikipedia, "
                               "Nov 2023)"),
    "corpus_articles": Published(1_580_000, "Sec. 4", "articles of 500 tokens or more"),
    "min_article_tokens": Published(500, "Sec. 4", "shortest article kept, in tokens"),
    "vocab_size": Published(10_000, "Sec. 4", "vocabulary size V"),
    "embed_dim": Published(200, "Sec. 4", "embedding dimension d"),
    "vocab_coverage": Published(0.87, "Sec. 4", "share of tokens in the top 10^4 words"),
    "context_len": Published(16, "Sec. 4", "window: words on each side"),
    "batch_pairs": Published(50_000, "Sec. 4", "positive (and negative) pairs per batch"),
    "lr": Published(5.0, "Sec. 4", "learning rate of the benchmark runs"),
    "steps": Published(4_000_000, "Sec. 4", "SGD steps of the benchmark runs"),
    "lr_cut_step": Published(3_000_000, "Sec. 4", "step where the rate is cut by 10"),
    "init_small": Published(1e-12, "Sec. 4", "small initial scale (init_sz)"),
    "init_w2v": Published(0.1, "Sec. 4", "word2vec-style initial scale"),
    "lr_w2v_init": Published(2.0, "Sec. 4", "learning rate from the word2vec-style "
                             "init"),
    # the benchmarks (Fig. 3b's protocol)
    "analogy_count": Published(7614, "Fig. 3b", "analogies at V = 10^4"),
    "analogy_categories": Published(14, "Fig. 3b", "analogy categories at V = 10^4"),
    "men_pairs": Published(1588, "Fig. 3b", "MEN pairs in the vocabulary"),
    "ws353_pairs": Published(249, "Fig. 3b", "WS353 pairs in the vocabulary"),
    # the spectrum and the features
    "nonneg_eigenvalues": Published(4795, "App. A.2", "non-negative eigenvalues of M* "
                                    "at V = 10^4"),
    "spectrum_exponent": Published(-0.6, "App. A.2", "power law of the eigenvalues of "
                                   "M*, PMI and PPMI, lambda_k ~ k^-0.6"),
    "feature_topics": Published("celebrity biographies; government, administration; "
                                "geography, places", "Fig. 3a",
                                "themes of the top three eigenvectors of M*"),
    "top5_overlap": Published(0.998, "Sec. 3", "overlap of trained QWEM's top 5 "
                              "singular vectors with M*'s top 5 eigenvectors"),
    # task vectors (Sec. 4, App. A.6)
    "spike_mean_overlap": Published(0.9, "App. A.6", "lower bound on the overlap of "
                                    "each category's spike with its mean task vector"),
    "rmt_features": Published(4096, "Sec. 4", "eigen-features of the task-vector "
                              "experiments"),
})


def value(key: str):
    """The published number ``key`` (see :data:`PUBLISHED`)."""
    try:
        return PUBLISHED[key].value
    except KeyError:
        raise KeyError(f"the paper table has no {key!r}; known: "
                       f"{', '.join(sorted(PUBLISHED))}") from None


def ref(key: str) -> str:
    """Where the paper states ``key`` ("Fig. 3b", "App. A.2", ...)."""
    value(key)
    return PUBLISHED[key].ref
