"""Corpus to closed-form embeddings in one call, with the time of each stage.

text -> tokens -> counts -> target (M*, PPMI or PMI) -> top-d eigenpairs -> W.
This is what ``qwem embed`` runs, what the chapters call and what ``bench/`` times.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .corpus.cooccurrence import count_pairs, window_weights
from .corpus.data import corpus_identity
from .corpus.subsampling import check_subsample, keep_probs
from .corpus.tokens import load_tokens
from .runtime import cache as cache_mod
from .runtime._repr import short_repr
from .runtime.devices import default_device
from .runtime.errors import QwemError
from .runtime.options import ENGINES, METHODS, check_choice, check_int, check_real
from .spectral import EighResult, eigenbasis, embeddings_from_eig, top_eigh
from .targets import pair_probs, target

__all__ = ["EmbedConfig", "ClosedForm", "Stopwatch", "pair_statistics",
           "statistics", "closed_form", "closed_forms", "require_memory"]

# From this vocabulary size on, "auto" counts into sparse matrices and solves with the
# matrix-free operator M* = S - 2·11ᵀ (targets.SparseTarget); below it the dense
# V x V path is faster (bench/README.md, "Large vocabularies").
SPARSE_FROM_V = 15_000
# Bump when the eigensolver's defaults or accuracy change: it is part of cache keys
# (which also hold a fingerprint of the code, _CODE: see qwem_lib.runtime.cache).
_SOLVER_VERSION = "block-krylov-4"
_CODE = ("qwem_lib.pipeline",)

# Peak memory in bytes per V x V entry, measured (peak RSS minus the RSS before, fresh
# process, CPU): counting into the float64 buffer that becomes the target, 8
# (cooccurrence.COUNT_BYTES_PER_ENTRY), and 8 more while subsampled counts are summed;
# then beside it the block Krylov solver, 12.8 (the slope of 29.1 and 16.9 bytes per
# entry at V = 3,000 and 6,000, d = 200), or the dense eigendecomposition (d >= V/4),
# 24.2 (27.2 and 24.9).
_EIGEN_BYTES = 13.0
_KRYLOV_BLOCKS = 4   # spectral.top_eigh's default n_blocks
# Every eigenpair of a closed form has ||M v - λ v|| <= RESIDUAL_TOL · λ_1.
RESIDUAL_TOL = 5e-6
_DENSE_EIGEN_BYTES = 24.5


@dataclass(frozen=True)
class EmbedConfig:
    """Everything that determines closed-form embeddings (arXiv 2502.09863, Thm. 1).

    Attributes
    ----------
    corpus : str or tuple of str
        Registry name or path (see ``qwem_lib.corpus.data.CORPORA``); a folder, a
        glob or several files make a corpus of several files, counted file by file
        (:mod:`qwem_lib.corpus.shards`; windows do not cross files).
    vocab_size, embed_dim : int
        V and d (the paper: 10,000 and 200).
    method : {"mstar", "ppmi", "pmi"}
        Target to factorise: the QWEM target M* (Setting 3.1), or the classical PPMI
        or PMI (unobserved pairs 0).
    context_len : int
        Window half-width L (the paper: 16).
    weighting : {"linear", "uniform"}
        Pair weight by separation s: ``L + 1 - s`` (the paper) or 1.
    negatives : float
        k, weight of the negative term (1 in the paper's QWEM; word2vec's k).
    neg_power : float
        Exponent smoothing the negative distribution (1: unigram; word2vec: 0.75).
    scheme : str
        Text normalisation, see ``qwem_lib.corpus.load_tokens``.
    min_article_tokens : int
        Drop shorter articles (the paper: 500; article formats only).
    subsample : float
        word2vec's frequent-word subsampling applied before counting: each token of
        word w is kept with probability ``min(1, sqrt(t/f_w) + t/f_w)``
        (:func:`qwem_lib.losses.keep_probs`) and the window slides over the kept
        tokens, so it reaches further, as in word2vec.  0 (default): none.
    subsample_draws : int
        Independent subsamplings whose counts are summed (like word2vec's epochs,
        each of which draws its own), seeded, so the result is reproducible.
    engine : {"auto", "dense", "sparse"}
        How the statistics are held: dense V x V matrices, or sparse counts and the
        matrix-free target ``S + shift·aaᵀ`` (:class:`qwem_lib.targets.SparseTarget`),
        whose memory grows with the observed pairs instead of V².  ``"auto"``:
        sparse from V = :data:`SPARSE_FROM_V` on.  Both give the same eigenpairs
        (to the eigensolver's tolerance).
    weight_power : float
        β: factorise with the rank-one pair weights ``G_ij = g_i g_j``,
        ``g_i ∝ f_i^β`` (``f`` the word frequencies, normalised to mean 1), instead
        of Setting 3.1's constant G (paper, Thm. 1, general case): the minimiser of
        ``Σ G_ij ((WWᵀ)_ij - M*_ij)²`` is ``W = Γ⁻¹ · top-d factor of ΓM*Γ`` with
        ``Γ = diag(g)^{1/2}``.  word2vec's own G (``P_ij + k P_i P_j^{3/4}``) is
        dominated by such a product with β near 1; 0 (default) is Setting 3.1.
    """

    corpus: str
    vocab_size: int
    embed_dim: int
    method: str = "mstar"
    context_len: int = 16
    weighting: str = "linear"
    negatives: float = 1.0
    neg_power: float = 1.0
    scheme: str = "auto"
    min_article_tokens: int = 0
    subsample: float = 0.0
    subsample_draws: int = 5
    weight_power: float = 0.0
    engine: str = "auto"

    def __post_init__(self):
        # numpy scalars and paths are accepted, and stored as Python's int/float/str
        if isinstance(self.corpus, os.PathLike):
            object.__setattr__(self, "corpus", os.fspath(self.corpus))
        elif isinstance(self.corpus, (list, tuple)):
            files = tuple(os.fspath(c) if isinstance(c, os.PathLike) else c
                          for c in self.corpus)
            object.__setattr__(self, "corpus", files[0] if len(files) == 1 else files)
        for name in ("vocab_size", "embed_dim", "context_len", "min_article_tokens",
                     "subsample_draws"):
            value = getattr(self, name)
            if isinstance(value, np.integer):
                object.__setattr__(self, name, int(value))
        for name in ("negatives", "neg_power", "subsample", "weight_power"):
            value = getattr(self, name)
            if isinstance(value, (np.floating, np.integer)):
                object.__setattr__(self, name, float(value))

    def validate(self) -> None:
        """Raise :class:`QwemError` for settings that cannot work."""
        if not (isinstance(self.corpus, str) or (
                isinstance(self.corpus, tuple) and self.corpus
                and all(isinstance(c, str) for c in self.corpus))):
            raise QwemError(f"corpus must be a registry name, a path, a folder, a glob "
                            f"or several of them, got {self.corpus!r}")
        for name, flag, low in (("negatives", "--negatives", {"gt": 0}),
                                ("neg_power", "--neg-power", {}),
                                ("subsample", "--subsample", {"ge": 0}),
                                ("weight_power", "--weight-power", {"ge": 0})):
            check_real(getattr(self, name), name, flag, **low)
        check_choice(self.engine, "engine", ENGINES, "--engine")
        check_choice(self.method, "method", METHODS, "--method")
        for name, flag in (("vocab_size", "--vocab-size"), ("embed_dim", "--dim"),
                           ("subsample_draws", "--subsample-draws")):
            check_int(getattr(self, name), name, flag)
        if self.embed_dim >= self.vocab_size:
            raise QwemError(f"the dimension d={self.embed_dim} must be smaller than "
                            f"the vocabulary size V={self.vocab_size}; choose --dim < "
                            "--vocab-size")
        window_weights(self.context_len, self.weighting)
        check_subsample(self.subsample)

    def key(self) -> dict:
        """What results of this configuration depend on, for cache keys
        (:mod:`qwem_lib.runtime.cache`): every setting, and the corpus by its content
        (:func:`qwem_lib.corpus.data.corpus_identity`), not by its name."""
        fields = asdict(self)
        fields["corpus"] = corpus_identity(self.corpus)
        fields["engine"] = self.resolved_engine()
        return fields | {"solver": _SOLVER_VERSION}

    def resolved_engine(self) -> str:
        """``engine`` with ``"auto"`` resolved: ``"sparse"`` from V =
        :data:`SPARSE_FROM_V` on, else ``"dense"``."""
        if self.engine != "auto":
            return self.engine
        return "sparse" if self.vocab_size >= SPARSE_FROM_V else "dense"


class Stopwatch:
    """Wall time of named stages (synchronising CUDA so GPU work is counted)."""

    def __init__(self, device: torch.device | None = None, echo=None):
        self.stages: dict[str, float] = {}
        self.device = device
        self.echo = echo

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        yield
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.record(name, time.perf_counter() - t0)

    def record(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name`` (and echo it)."""
        self.stages[name] = self.stages.get(name, 0.0) + seconds
        if self.echo is not None:
            self.echo(f"  {name:<14s}{seconds:8.2f} s")


@dataclass
class ClosedForm:
    """Result of :func:`closed_form`.

    Attributes
    ----------
    config : EmbedConfig
    words : list of str, (V,)
    W : (V, d) float64 tensor (CPU)
        ``V_d Λ_d^{1/2}``, columns in descending eigenvalue order.
    eigvals : (d,) float64 tensor
    eigvecs : (V, d) float64 tensor
        Of the target (of ``ΓM*Γ`` when ``config.weight_power`` is set).
    residuals : (d,) float64 tensor
        ``||M v - λ v||`` of each pair (bounds the eigenvalue error).
    n_tokens, n_kept : int
        Tokens read, and in-vocabulary tokens kept.
    timings : dict
        Seconds per stage.
    target : (V, V) tensor or None
        The target matrix, when ``keep_target=True``.
    cached : bool
        Read from the closed-form cache (``timings`` are then the load's, or with
        ``cache="timed"`` those of the run that computed the entry).
    n_pairs : int or None
        Stored entries of the sparse counts (distinct ordered pairs observed within
        the window); None for the dense engine.
    n_matvecs : int
        Columns multiplied by the target in the eigensolver (0: dense solver).
    product_seconds : float or None
        Seconds of the eigensolver spent in products with the sparse target (the
        rest is orthogonalisation and Rayleigh-Ritz); None for the dense engine.
    """

    __repr__ = short_repr

    config: EmbedConfig
    words: list
    W: torch.Tensor
    eigvals: torch.Tensor
    eigvecs: torch.Tensor
    residuals: torch.Tensor
    n_tokens: int
    n_kept: int
    timings: dict = field(default_factory=dict)
    target: torch.Tensor | None = None
    cached: bool = False
    n_pairs: int | None = None
    n_matvecs: int = 0
    product_seconds: float | None = None


def require_memory(config: EmbedConfig, device, *, keep_pairs: bool = False,
                   eigen: bool = True) -> None:
    """Refuse, before any work, a configuration whose dense V x V stages would not fit
    in the memory available (:func:`qwem_lib.runtime.memory.require_dense`).

    ``keep_pairs``: P_ij is kept beside the target (the trainers' inputs); ``eigen``:
    the top ``embed_dim`` eigenpairs are computed.
    """
    from .runtime.memory import require_dense

    if config.resolved_engine() == "sparse":
        # The counts are checked by count_pairs_sparse once their size is known,
        # the operator's working copy with the solver after counting (closed_form).
        if eigen:
            _require_krylov(config, device)
        return
    count = 8.0 * (2 if config.subsample else 1)
    after = 8.0 * (2 if keep_pairs else 1)
    if eigen:
        after += (_DENSE_EIGEN_BYTES if 4 * config.embed_dim >= config.vocab_size
                  else _EIGEN_BYTES)
    require_dense(config.vocab_size, max(count, after), default_device(device),
                  what="dense V x V work (statistics and eigensolver)")


def _require_krylov(config: EmbedConfig, device, extra: float = 0.0) -> None:
    """The sparse eigensolver's basis, its image and six (V, b) blocks in float64,
    plus ``extra`` bytes (the operator's float32 working copy, once known)."""
    from .runtime.memory import require

    b = min(config.embed_dim + max(16, config.embed_dim // 3), config.vocab_size)
    need = (2 * _KRYLOV_BLOCKS + 6) * b * config.vocab_size * 8.0 + extra
    require(need, default_device(device),
            f"the eigensolver's Krylov basis (V = {config.vocab_size:,}, "
            f"d = {config.embed_dim})",
            "choose a smaller --dim or --vocab-size, or a machine with more memory")


def _tokens(config: EmbedConfig, watch: Stopwatch, cache: bool, progress: bool):
    """The corpus's in-vocabulary token ids (stage "read+tokenise")."""
    with watch.stage("read+tokenise"):
        return load_tokens(config.corpus, config.vocab_size,
                                      scheme=config.scheme,
                                      min_article_tokens=config.min_article_tokens,
                                      cache=cache, progress=progress)


def _sharded(config: EmbedConfig, cluster) -> bool:
    """Counted file by file (qwem_lib.corpus.shards): on a cluster, or several files."""
    from .corpus.shards import is_sharded

    return cluster is not None or is_sharded(config.corpus)


def _count_shards(config: EmbedConfig, cluster, watch: Stopwatch, cache: bool,
                  progress: bool):
    """The vocabulary and sparse counts of a corpus of several files."""
    from .corpus.shards import count_corpus

    return count_corpus(config, cluster=cluster, progress=progress, cache=cache,
                        stage=watch.stage)


def pair_statistics(config: EmbedConfig, *, device=None, progress: bool = True,
                    watch: Stopwatch | None = None, cache: bool = True,
                    cluster=None):
    """Tokens, then the pair distribution P_ij and unigram P_i of ``config``.

    A corpus of several files (or any corpus with ``cluster``) is counted file by
    file (:func:`qwem_lib.corpus.shards.count_corpus`), on the Dask cluster ``cluster``
    (an address, ``"local:N"`` or a ``distributed.Client``) when given.

    With ``cache`` the token arrays and the window counts (sparse, keyed by the
    corpus's content and the counting settings: V, scheme, window, weighting,
    subsampling) are read from the cache and stored there, so every target, dimension
    and solver of one corpus shares one count.

    Returns
    -------
    tokens : qwem_lib.corpus.TokenData, or qwem_lib.corpus.shards.CorpusCounts
        The latter (vocabulary and token counts, no token array) for a corpus
        counted file by file.
    P_ij : (V, V) float64 tensor on ``device``
    unigram : (V,) float64 tensor on ``device``
    """
    config.validate()
    device = default_device(device)
    watch = watch or Stopwatch(device)
    if _sharded(config, cluster):
        tokens, C = _count_shards(config, cluster, watch, cache, progress)
        with watch.stage("normalise"):  # the summed sparse counts as P_ij
            C = torch.from_numpy(C.toarray()).to(device)
            P_ij, unigram = pair_probs(C, out=C)
        return tokens, P_ij, unigram
    tokens = _tokens(config, watch, cache, progress)
    with watch.stage("count"):  # counts, normalised in place: one V x V buffer
        C = _cached_count(tokens.ids, config, device, progress, cache)
        P_ij, unigram = pair_probs(C, out=C)
    return tokens, P_ij, unigram


# The settings a target is built from, given the counts, and those of how it is
# solved: every other setting of EmbedConfig.key() (the corpus, V, scheme, window,
# weighting, subsampling, and any added later) is one the window counts depend on.
_TARGET_SETTINGS = ("method", "embed_dim", "negatives", "neg_power", "weight_power")
_SOLVE_SETTINGS = ("engine", "solver")


def _counting_key(config: EmbedConfig) -> dict:
    """What the window counts of ``config`` depend on: the key of the "counts" cache,
    and what the closed forms that :func:`closed_forms` counts once have in common."""
    drop = _TARGET_SETTINGS + _SOLVE_SETTINGS
    return {k: v for k, v in config.key().items() if k not in drop}


def _cached_count(ids, config: EmbedConfig, device, progress: bool,
                  cache: bool) -> torch.Tensor:
    """:func:`_count`, read from the "counts" cache when ``cache`` (stored sparse:
    the V x V counts of a window are mostly zero at large V, and the cache holds
    one entry per corpus, V, window and subsampling, not one per target)."""
    if not cache:
        return _count(ids, config, device, progress)
    key = _counting_key(config)
    entry = cache_mod.load("counts", key, code=_CODE)
    if entry is not None:
        return _dense_counts(entry, config.vocab_size, device)
    C = _count(ids, config, device, progress)
    cache_mod.store("counts", key, _sparse_arrays(C), code=_CODE)
    return C


def _sparse_arrays(C: torch.Tensor, rows: int = 1024) -> dict:
    """CSR arrays (indptr, indices, data) of the dense counts ``C``, built a block of
    ``rows`` rows at a time (so the extra memory is that of the nonzeros)."""
    per_row, indices, data = [], [], []
    for i0 in range(0, C.shape[0], rows):
        block = C[i0:i0 + rows]
        seen = block != 0
        per_row.append(seen.sum(1).cpu())
        indices.append(seen.nonzero()[:, 1].to(torch.int32).cpu())
        data.append(block[seen].cpu())
    indptr = np.zeros(C.shape[0] + 1, np.int64)
    np.cumsum(torch.cat(per_row).numpy(), out=indptr[1:])
    return {"indptr": indptr, "indices": torch.cat(indices).numpy(),
            "data": torch.cat(data).numpy()}


def _dense_counts(entry: dict, V: int, device) -> torch.Tensor:
    """The dense (V, V) float64 counts of a "counts" cache entry (CSR arrays)."""
    from scipy.sparse import csr_matrix

    C = torch.zeros((V, V), dtype=torch.float64)
    csr_matrix((entry["data"], entry["indices"], entry["indptr"]),
               shape=(V, V)).toarray(out=C.numpy())
    return C.to(device)


def _draws(ids, config: EmbedConfig):
    """The token arrays counted: ``ids`` itself, or ``subsample_draws`` seeded
    subsamplings of it (word2vec's frequent-word subsampling, one per epoch)."""
    if not config.subsample:
        yield ids
        return
    ids = np.asarray(ids)
    keep = keep_probs(np.bincount(ids, minlength=config.vocab_size),
                      config.subsample).numpy()[ids]
    for draw in range(config.subsample_draws):
        rng = np.random.default_rng([config.subsample_draws, draw])
        yield ids[rng.random(len(ids)) < keep]


def _count(ids, config: EmbedConfig, device, progress: bool) -> torch.Tensor:
    """Dense window counts of ``ids``, summed over the subsamplings if asked."""
    total = None
    for kept in _draws(ids, config):
        C = count_pairs(kept, config.vocab_size, config.context_len,
                        config.weighting, device=device, progress=progress)
        total = C if total is None else total.add_(C)
        del C
    return total


def _count_sparse(ids, config: EmbedConfig, progress: bool):
    """Sparse window counts of ``ids`` (scipy CSR), summed over the subsamplings."""
    from .corpus.cooccurrence import count_pairs_sparse

    total = None
    for kept in _draws(ids, config):
        C = count_pairs_sparse(kept, config.vocab_size, config.context_len,
                               config.weighting, progress=progress)
        total = C if total is None else total + C
        del C
    return total


def sparse_statistics(config: EmbedConfig, *, device=None, progress: bool = True,
                      watch: Stopwatch | None = None, cache: bool = True,
                      cluster=None):
    """Tokens, then the target of ``config`` as a matrix-free sparse operator.

    Memory grows with the observed pairs, not with V²: the counts are sparse
    (:func:`qwem_lib.corpus.cooccurrence.count_pairs_sparse`) and become the operator's
    values in place (:func:`qwem_lib.targets.sparse_target`).

    Returns
    -------
    tokens : qwem_lib.corpus.TokenData, or qwem_lib.corpus.shards.CorpusCounts
        (see :func:`pair_statistics`; ``cluster`` as there)
    M : qwem_lib.targets.SparseTarget
        M* (``S - 2·aaᵀ``), PPMI or PMI; ``ΓMΓ`` when ``config.weight_power`` is set.
    """
    from .targets import sparse_target

    config.validate()
    device = default_device(device)
    watch = watch or Stopwatch(device)
    if _sharded(config, cluster):
        tokens, C = _count_shards(config, cluster, watch, cache, progress)
    else:
        tokens = _tokens(config, watch, cache, progress)
        with watch.stage("count"):
            C = _count_sparse(tokens.ids, config, progress)
    with watch.stage("target"):
        scale = (_row_scale(tokens.vocab.counts, config).numpy()
                 if config.weight_power else None)
        M, _ = sparse_target(config.method, C, negatives=config.negatives,
                             neg_power=config.neg_power, scale=scale, device=device)
        del C
    return tokens, M


def statistics(config: EmbedConfig, *, device=None, progress: bool = True,
               watch: Stopwatch | None = None, cache: bool = True, cluster=None):
    """Tokens, then the target matrix of ``config`` (kept in one V x V buffer).

    Returns
    -------
    tokens : qwem_lib.corpus.TokenData, or qwem_lib.corpus.shards.CorpusCounts
        (see :func:`pair_statistics`; ``cluster`` as there)
    M : (V, V) float64 tensor on ``device``, or a SparseTarget
        M*, PPMI or PMI as ``config.method`` says; with the sparse engine
        (``config.resolved_engine()``) the operator of :func:`sparse_statistics`.
    """
    if config.resolved_engine() == "sparse":
        return sparse_statistics(config, device=device, progress=progress,
                                 watch=watch, cache=cache, cluster=cluster)
    watch = watch or Stopwatch(default_device(device))
    tokens, P, unigram = pair_statistics(config, device=device, progress=progress,
                                         watch=watch, cache=cache, cluster=cluster)
    return tokens, _target_in_place(config, tokens, P, unigram, watch)


def _target_in_place(config: EmbedConfig, tokens, P, unigram, watch: Stopwatch):
    """``config``'s target from the pair distribution, written over ``P``."""
    with watch.stage("target"):
        M = target(config.method, P, unigram, out=P, negatives=config.negatives,
                   neg_power=config.neg_power)
        if config.weight_power:
            scale = _row_scale(tokens.vocab.counts, config).to(M.device)
            M.mul_(scale[:, None]).mul_(scale[None, :])
    return M


def row_scale(ids, config: EmbedConfig) -> torch.Tensor:
    """``Γ``'s diagonal ``g^{1/2}`` for ``config.weight_power`` (ones if 0), float64.

    ``g_i = f_i^β / mean(f^β)`` with ``f_i`` the frequency of word i among ``ids``.
    """
    V = config.vocab_size
    if not config.weight_power:
        return torch.ones(V, dtype=torch.float64)
    return _row_scale(np.bincount(np.asarray(ids), minlength=V)[:V], config)


def _row_scale(counts, config: EmbedConfig) -> torch.Tensor:
    """:func:`row_scale` from the in-vocabulary count of each word."""
    counts = np.asarray(counts)
    if not config.weight_power:
        return torch.ones(len(counts), dtype=torch.float64)
    f = torch.from_numpy(counts / counts.sum())
    g = f.clamp_min(1e-300).pow(config.weight_power)
    return (g / g.mean()).sqrt()


def _top_eigenpairs(M, k: int, *, cache: bool,
                    progress: bool) -> EighResult:
    """Top-k eigenpairs of M (on M's device), returned on the CPU.

    A block Krylov solver (:func:`qwem_lib.spectral.top_eigh`, mostly in float32,
    finished in float64) when k is a small part of V; from k >= V/4 on, the dense
    decomposition is the cheaper one (bench/README.md) and goes through
    :func:`qwem_lib.spectral.eigenbasis`, whose cache (keyed by M's content) is the
    one the trainer fills, so a chapter that trained QWEM on this M* has already
    paid for it.
    """
    if 4 * k >= M.shape[0]:
        if not isinstance(M, torch.Tensor):   # a sparse operator of a small V
            M = M.to_dense().to(M.device)
        lam, U = eigenbasis(M, cache=None if cache else False, progress=progress)
        lam, U = lam[:k], U[:, :k]
        res = torch.linalg.vector_norm(M.to(torch.float64) @ U - U * lam, dim=0)
        return EighResult(lam.cpu(), U.cpu(), res.cpu(), M.shape[0], 0)
    # For the matrix-free operator a block a third wider than the pairs wanted:
    # fewer restarts at the edge of the bulk outweigh the wider products there
    # (bench/README.md, "large_vocab.py").
    block = None if isinstance(M, torch.Tensor) else min(k + max(16, k // 3),
                                                         M.shape[0])
    eig = top_eigh(M, k, block_size=block, work_dtype=torch.float32,
                   progress=progress, residual_tol=RESIDUAL_TOL)
    return EighResult(eig.eigvals.cpu(), eig.eigvecs.cpu(), eig.residuals.cpu(),
                      eig.n_matvecs, eig.n_restarts)


def _check_cache(cache) -> None:
    """Refuse a ``cache`` argument other than True, False or "timed"."""
    if cache not in (True, False, "timed"):
        raise QwemError(f"cache must be True, False or 'timed', got {cache!r}")


def _load_entry(key: dict, watch: Stopwatch) -> dict | None:
    """The closed-form cache entry of ``key``, or None; reading it is stage
    "load cache"."""
    t0 = time.perf_counter()
    entry = cache_mod.load("closed_form", key, code=_CODE)
    if entry is not None:
        watch.record("load cache", time.perf_counter() - t0)
    return entry


def _embeddings(config: EmbedConfig, eig: EighResult,
                scale: torch.Tensor) -> torch.Tensor:
    """``W = V_d Λ_d^{1/2}`` of the eigenpairs; ``Γ⁻¹`` times it with
    ``config.weight_power`` (``scale``: Γ's diagonal)."""
    W = embeddings_from_eig(eig.eigvals, eig.eigvecs)
    if config.weight_power:  # W = Γ⁻¹ · top-d factor of ΓM*Γ
        W = W / scale.to(W.device, W.dtype)[:, None]
    return W


def _from_entry(config: EmbedConfig, entry: dict, check_words, watch: Stopwatch,
                timed: bool) -> ClosedForm:
    """The closed form stored in a cache entry; its ``timings`` are those of the
    run that computed it when ``timed``, else those of ``watch`` (the load)."""
    words = [str(w) for w in entry["words"]]
    if check_words is not None:
        check_words(words)
    scale = torch.from_numpy(entry["row_scale"])
    eig = EighResult(torch.from_numpy(entry["eigvals"]),
                     torch.from_numpy(entry["eigvecs"]),
                     torch.from_numpy(entry["residuals"]), 0, 0)
    n_tokens, n_kept = int(entry["n_tokens"]), int(entry["n_kept"])
    stored_stages = json.loads(str(entry["stages"]))
    n_pairs = int(entry["n_pairs"]) if int(entry["n_pairs"]) >= 0 else None
    n_matvecs = int(entry["n_matvecs"])
    product_seconds = float(entry["product_seconds"])
    product_seconds = None if product_seconds < 0 else product_seconds
    stages = stored_stages if timed else dict(watch.stages)
    return ClosedForm(config, words, _embeddings(config, eig, scale), eig.eigvals,
                      eig.eigvecs, eig.residuals, n_tokens, n_kept, stages, None,
                      cached=True, n_pairs=n_pairs, n_matvecs=n_matvecs,
                      product_seconds=product_seconds)


def _target_of(config: EmbedConfig, device, progress: bool, cache: bool | str,
               watch: Stopwatch, cluster, counts):
    """The tokens and the target of ``config``: built over the pair distribution
    ``counts`` = (tokens, P, unigram) that :func:`closed_forms` read once for
    several configurations, else from the corpus (memory checked first)."""
    if counts is not None:
        tokens, P, unigram = counts
        return tokens, _target_in_place(config, tokens, P, unigram, watch)
    require_memory(config, device)
    return statistics(config, device=device, progress=progress, watch=watch,
                      cache=cache is True, cluster=cluster)


def _compute(config: EmbedConfig, device, progress: bool, cache: bool | str,
             keep_target: bool, watch: Stopwatch, cluster, check_words,
             counts) -> tuple[ClosedForm, torch.Tensor]:
    """The closed form of ``config`` computed (stages as in ``watch``), and Γ's
    diagonal (the row scale stored with it)."""
    tokens, M = _target_of(config, device, progress, cache, watch, cluster, counts)
    words = list(tokens.vocab.words)
    if check_words is not None:
        check_words(words)
    n_tokens, n_kept = tokens.n_tokens, tokens.n_kept
    scale = _row_scale(tokens.vocab.counts, config)
    del tokens
    n_pairs = getattr(M, "nnz", None)
    if n_pairs is not None:   # the operator's float32 copy beside the solver
        _require_krylov(config, device, extra=4.0 * n_pairs)
    with watch.stage("eigen"):
        eig = _top_eigenpairs(M, config.embed_dim, cache=bool(cache),
                              progress=progress)
    product_seconds = M.stats["seconds"] if n_pairs is not None else None
    kept = M if keep_target else None
    del M
    result = ClosedForm(config, words, _embeddings(config, eig, scale), eig.eigvals,
                        eig.eigvecs, eig.residuals, n_tokens, n_kept,
                        dict(watch.stages), kept, n_pairs=n_pairs,
                        n_matvecs=eig.n_matvecs, product_seconds=product_seconds)
    return result, scale


def _store(key: dict, result: ClosedForm, scale: torch.Tensor) -> None:
    """Store a computed closed form under ``key`` in the closed-form cache, with
    its stage times."""
    cache_mod.store("closed_form", key, {
        "words": np.array(result.words), "eigvals": result.eigvals.numpy(),
        "eigvecs": result.eigvecs.numpy(), "residuals": result.residuals.numpy(),
        "n_tokens": np.int64(result.n_tokens), "n_kept": np.int64(result.n_kept),
        "row_scale": scale.numpy(),
        "n_pairs": np.int64(-1 if result.n_pairs is None else result.n_pairs),
        "n_matvecs": np.int64(result.n_matvecs),
        "product_seconds": np.float64(-1.0 if result.product_seconds is None
                                      else result.product_seconds),
        "stages": np.array(json.dumps(result.timings))}, code=_CODE)


def closed_forms(configs, *, device=None, progress: bool = True,
                 cache: bool | str = True) -> list[ClosedForm]:
    """:func:`closed_form` of several configurations, the corpus read and counted
    once for those that differ only in the target built from the counts (``method``,
    ``negatives``, ``neg_power``, ``weight_power``, ``embed_dim``): M*, PPMI and PMI
    of one corpus, say.

    Each result is what :func:`closed_form` would return alone, with the same cache
    entry; its ``timings`` hold the shared stages (reading, counting) and its own
    target and eigensolver stages, so their sum is still that method's cost from
    the corpus file.  Results already in the cache are read from it; the sparse
    engine computes its configurations one by one.  Dense sharing keeps one more
    V x V matrix (the counts beside each target), checked before any work.
    """
    configs = list(configs)
    for config in configs:
        if not isinstance(config, EmbedConfig):
            raise QwemError(f"closed_forms needs EmbedConfigs, got "
                            f"{type(config).__name__}")
        config.validate()
    _check_cache(cache)
    device = default_device(device)
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        key = config.key()
        # stored: read by closed_form alone (a damaged entry is recomputed there)
        stored = cache and cache_mod.entry_path("closed_form", key,
                                                code=_CODE).exists()
        if config.resolved_engine() == "sparse" or stored:
            groups[f"alone {i}"] = [i]
            continue
        groups.setdefault(json.dumps(_counting_key(config), sort_keys=True,
                                     default=str),
                          []).append(i)
    results: list[ClosedForm | None] = [None] * len(configs)
    for members in groups.values():
        if len(members) == 1:
            i = members[0]
            results[i] = closed_form(configs[i], device=device, progress=progress,
                                     cache=cache)
            continue
        for i in members:    # the counts kept beside each target and its solver
            require_memory(configs[i], device, keep_pairs=True)
        first = configs[members[0]]
        shared = Stopwatch(device)
        counts = pair_statistics(first, device=device, progress=progress,
                                 watch=shared, cache=cache is True)
        for n, i in enumerate(members):
            tokens, P, unigram = counts
            last = n == len(members) - 1
            watch = Stopwatch(device)
            for name, seconds in shared.stages.items():
                watch.record(name, seconds)
            results[i] = closed_form(configs[i], device=device, progress=progress,
                                     cache=cache, watch=watch,
                                     _counts=(tokens, P if last else P.clone(),
                                              unigram))
        del counts
    return results


def closed_form(config: EmbedConfig, *, device=None, progress: bool = True,
                cache: bool | str = True, keep_target: bool = False,
                watch: Stopwatch | None = None, cluster=None,
                check_words=None, _counts=None) -> ClosedForm:
    """Closed-form embeddings ``W = V_d Λ_d^{1/2}`` of a corpus (Theorem 1).

    Parameters
    ----------
    config : EmbedConfig
    device : torch device or "auto", optional
        Where counting, the target and the eigensolver run (CUDA when available).
    progress : bool
        Progress bars for the long stages.
    cache : bool or "timed"
        ``True``: reuse token arrays cached by :func:`qwem_lib.corpus.load_tokens`,
        and the eigenpairs cached under ``cache_dir()/"closed_form"`` by
        ``config.key()``.  ``"timed"``: the same eigenpair cache, but a result not
        there is computed from the corpus file (no cached tokens), and one read from
        it reports in ``timings`` the stages of the run that computed it (what
        :func:`qwem_lib.compare.closed_form_run` times).  With ``keep_target=True``
        the eigenpair cache is not read (the target must be built anyway).
    keep_target : bool
        Keep the V x V target in the result (for spectra and plots).
    watch : Stopwatch, optional
        Collects stage timings (a new one otherwise).
    cluster : str or distributed.Client, optional
        Count the corpus's files on this Dask cluster (:mod:`qwem_lib.corpus.shards`):
        a scheduler's address, ``"local:N"``, or a Client.  The result is the same
        as without (bit for bit up to the counts, which are exact), and so is its
        cache entry.
    check_words : callable, optional
        Called with the vocabulary (words in row order) as soon as it is known,
        before the target and the eigensolver: a caller that will write the words
        (``qwem embed``: :func:`qwem_lib.vectors.check_words`) refuses them before
        the work, not after it.

    Returns
    -------
    ClosedForm
    """
    config.validate()
    _check_cache(cache)
    device = default_device(device)
    watch = watch or Stopwatch(device)
    key = config.key() if cache else None
    entry = _load_entry(key, watch) if cache and not keep_target else None
    if entry is not None:
        return _from_entry(config, entry, check_words, watch, timed=cache == "timed")
    result, scale = _compute(config, device, progress, cache, keep_target, watch,
                             cluster, check_words, _counts)
    if cache:
        _store(key, result, scale)
    return result
