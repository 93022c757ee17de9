"""Corpus to closed-form embeddings in one call, with the time of each stage.

text -> tokens -> counts -> target (M*, PPMI or PMI) -> top-d eigenpairs -> W.
This is what ``qwem embed`` runs, what the chapters call and what ``bench/`` times.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from . import corpus as corpus_mod
from . import data
from ._atomic import atomic_path
from .cooccurrence import count_pairs, window_weights
from .errors import QwemError
from .spectral import EighResult, embeddings_from_eig, top_eigh
from .targets import pair_probs, target

__all__ = ["EmbedConfig", "ClosedForm", "Stopwatch", "default_device",
           "pair_statistics", "statistics", "closed_form"]

METHODS = ("mstar", "ppmi", "pmi")
# Bump when the eigensolver's defaults or accuracy change: it is part of cache keys.
_SOLVER_VERSION = "block-krylov-2"


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (``"auto"`` or None: CUDA when available, else CPU)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise QwemError("--device cuda was requested but torch sees no CUDA device; "
                        "use --device cpu (or auto)")
    return device


@dataclass(frozen=True)
class EmbedConfig:
    """Everything that determines closed-form embeddings (PAPER.md §2, §4).

    Attributes
    ----------
    corpus : str
        Registry name or path (see ``qwem_lib.data.CORPORA``).
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

    def validate(self) -> None:
        """Raise :class:`QwemError` for settings that cannot work."""
        if self.method not in METHODS:
            raise QwemError(f"unknown method {self.method!r}; use one of "
                            f"{', '.join(METHODS)}")
        for name in ("vocab_size", "embed_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise QwemError(f"{name} must be a positive integer, got {v!r}")
        if self.embed_dim >= self.vocab_size:
            raise QwemError(f"the dimension d={self.embed_dim} must be smaller than the "
                            f"vocabulary size V={self.vocab_size}; choose --dim < "
                            "--vocab-size")
        window_weights(self.context_len, self.weighting)
        if not self.negatives > 0:
            raise QwemError(f"negatives must be > 0, got {self.negatives}")

    def key(self) -> str:
        """Short hash naming cached results of this configuration (and of the solver
        version, so results of an older eigensolver are not reused)."""
        text = json.dumps(asdict(self) | {"solver": _SOLVER_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        dt = time.perf_counter() - t0
        self.stages[name] = self.stages.get(name, 0.0) + dt
        if self.echo is not None:
            self.echo(f"  {name:<14s}{dt:8.2f} s")


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
    residuals : (d,) float64 tensor
        ``||M v - λ v||`` of each pair (bounds the eigenvalue error).
    n_tokens, n_kept : int
        Tokens read, and in-vocabulary tokens kept.
    timings : dict
        Seconds per stage.
    target : (V, V) tensor or None
        The target matrix, when ``keep_target=True``.
    """

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


def pair_statistics(config: EmbedConfig, *, device=None, progress: bool = True,
                    watch: Stopwatch | None = None, cache: bool = True):
    """Tokens, then the pair distribution P_ij and unigram P_i of ``config``.

    Returns
    -------
    tokens : qwem_lib.corpus.TokenData
    P_ij : (V, V) float64 tensor on ``device``
    unigram : (V,) float64 tensor on ``device``
    """
    config.validate()
    device = default_device(device)
    watch = watch or Stopwatch(device)
    with watch.stage("read+tokenise"):
        tokens = corpus_mod.load_tokens(config.corpus, config.vocab_size,
                                        scheme=config.scheme,
                                        min_article_tokens=config.min_article_tokens,
                                        cache=cache, progress=progress)
    with watch.stage("count"):
        C = count_pairs(tokens.ids, config.vocab_size, config.context_len,
                        config.weighting, device=device, progress=progress)
    with watch.stage("target"):
        P_ij, unigram = pair_probs(C, out=C)  # in place: one V x V buffer
    return tokens, P_ij, unigram


def statistics(config: EmbedConfig, *, device=None, progress: bool = True,
               watch: Stopwatch | None = None, cache: bool = True):
    """Tokens, then the target matrix of ``config`` (kept in one V x V buffer).

    Returns
    -------
    tokens : qwem_lib.corpus.TokenData
    M : (V, V) float64 tensor on ``device``
        M*, PPMI or PMI as ``config.method`` says.
    """
    watch = watch or Stopwatch(default_device(device))
    tokens, P, unigram = pair_statistics(config, device=device, progress=progress,
                                         watch=watch, cache=cache)
    with watch.stage("target"):
        M = target(config.method, P, unigram, out=P, negatives=config.negatives,
                   neg_power=config.neg_power)
    return tokens, M


def closed_form(config: EmbedConfig, *, device=None, progress: bool = True,
                cache: bool = True, keep_target: bool = False,
                watch: Stopwatch | None = None) -> ClosedForm:
    """Closed-form embeddings ``W = V_d Λ_d^{1/2}`` of a corpus (Theorem 1).

    Parameters
    ----------
    config : EmbedConfig
    device : torch device or "auto", optional
        Where counting, the target and the eigensolver run (CUDA when available).
    progress : bool
        Progress bars for the long stages.
    cache : bool
        Reuse token arrays cached by :func:`qwem_lib.corpus.load_tokens`, and the
        eigenpairs cached under ``cache_dir()/"closed_form"`` by ``config.key()``.
        With ``keep_target=True`` the eigenpair cache is not used (the target must
        be built anyway).
    keep_target : bool
        Keep the V x V target in the result (for spectra and plots).
    watch : Stopwatch, optional
        Collects stage timings (a new one otherwise).

    Returns
    -------
    ClosedForm
    """
    config.validate()
    device = default_device(device)
    watch = watch or Stopwatch(device)
    cache_file = data.cache_dir() / "closed_form" / f"{config.key()}.npz"
    if cache and not keep_target and cache_file.is_file():
        with watch.stage("load cache"):
            z = np.load(cache_file, allow_pickle=False)
            words = [str(w) for w in z["words"]]
            eig = EighResult(torch.from_numpy(z["eigvals"]),
                             torch.from_numpy(z["eigvecs"]),
                             torch.from_numpy(z["residuals"]), 0, 0)
            n_tokens, n_kept = int(z["n_tokens"]), int(z["n_kept"])
    else:
        tokens, M = statistics(config, device=device, progress=progress, watch=watch,
                               cache=cache)
        words = list(tokens.vocab.words)
        n_tokens, n_kept = tokens.n_tokens, len(tokens.ids)
        del tokens
        with watch.stage("eigen"):
            # Most iterations in float32 (twice the speed), finished in float64.
            eig = top_eigh(M, config.embed_dim, work_dtype=torch.float32,
                           progress=progress)
            eig = EighResult(eig.eigvals.cpu(), eig.eigvecs.cpu(), eig.residuals.cpu(),
                             eig.n_matvecs, eig.n_restarts)
        if cache:
            with atomic_path(cache_file) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, words=np.array(words), eigvals=eig.eigvals.numpy(),
                             eigvecs=eig.eigvecs.numpy(),
                             residuals=eig.residuals.numpy(),
                             n_tokens=n_tokens, n_kept=n_kept,
                             config=json.dumps(asdict(config)))
        if not keep_target:
            del M
    W = embeddings_from_eig(eig.eigvals, eig.eigvecs)
    return ClosedForm(config, words, W, eig.eigvals, eig.eigvecs, eig.residuals,
                      n_tokens, n_kept, dict(watch.stages),
                      M if keep_target else None)
