"""Timed, cached runs of every method, side by side (chapter 5, ``bench/``).

Each function runs one way of getting embeddings from a corpus and returns a
:class:`Run`: the vocabulary, ``W``, the wall time the whole method took from the
corpus file (reading and tokenising included, no cache reused) and what it recorded.

- :func:`closed_form_run`: ``svd`` of M*, PPMI or PMI (:func:`qwem_lib.pipeline.
  closed_form`);
- :func:`word2vec_run`: our word2vec (:func:`qwem_lib.word2vec.train_word2vec`);
- :func:`gensim_run`: gensim's ``Word2Vec`` (skip-gram, negative sampling), the
  implementation most people use, on exactly our token stream and vocabulary;
- :func:`qwem_run`: QWEM trained by gradient descent (:func:`qwem_lib.train.train`).

A training run is set against the gradient flow of the paper's Section 3 on the
theory's own clock: :func:`flow_time` maps its checkpoints to flow time,
:func:`half_learned_times` measures when each top mode is half-learned beside the
flow's prediction, and :func:`word2vec_growth_rates` gives the rates at which
word2vec's own pair weights make its modes grow near ``W = 0``.

With ``cache=True`` a run is stored under ``cache_dir()/runs``
(:mod:`qwem_lib.runtime.cache`) keyed by everything that determines it (the corpus by
its content, every setting, the library code), and read back instead of recomputed;
the stored ``seconds`` are those of the run that made it.  ``cache="refresh"``
always recomputes (to time it) and replaces the stored run; ``cache=False`` neither
reads nor writes.  gensim is an optional dependency, needed only here (``pip install
gensim``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from .corpus.data import corpus_identity
from .runtime import cache as cache_mod
from .runtime._repr import short_repr
from .runtime.errors import QwemError

__all__ = ["WORD2VEC_STATS", "TUNED", "TUNED_BIG", "Run", "closed_form_run",
           "closed_form_process_run", "word2vec_run", "gensim_run", "qwem_run",
           "gensim_sentences", "HalfLearned", "flow_time", "half_learned_times",
           "word2vec_growth_rates"]

# Closed-form knobs (``EmbedConfig`` options) for the statistics word2vec's usual
# settings train on (window 10, k = 5, negatives from P^{3/4}, subsampling 1e-4), and
# the best point of chapter 5's scan around them.  TUNED was chosen on the Google
# analogy accuracy itself, so its score there is optimistic by that selection.
WORD2VEC_STATS = dict(context_len=10, negatives=5.0, neg_power=0.75, subsample=1e-4)
TUNED = dict(context_len=7, negatives=5.0, neg_power=0.5, subsample=1e-4,
             weight_power=0.5)

# The tuned knobs for a corpus four times larger (the 70M-token enwiki2015): two
# subsampling draws instead of five count about as many subsampled tokens as five
# draws of the 17M-token corpus, at less than half the counting time.
TUNED_BIG = dict(TUNED, subsample_draws=2)

GENSIM_MAX_SENTENCE = 10_000  # gensim truncates longer "sentences"


@dataclass
class Run:
    """Embeddings from one method, with its cost.

    Attributes
    ----------
    name : str
    words : list of str
        The vocabulary, in the order of ``W``'s rows (count descending).
    W : (V, d) float64 ndarray
    seconds : float
        Wall time of the whole method when it ran (not when read from the cache).
    info : dict
        Method-specific facts (settings, eigenvalues, steps, ...).
    history : qwem_lib.runtime.history.History or None
        Checkpoints of a training run.
    cached : bool
        Whether this object was read from the cache.
    """

    __repr__ = short_repr

    name: str
    words: list
    W: np.ndarray
    seconds: float
    info: dict = field(default_factory=dict)
    history: object = None
    cached: bool = False


def _cached(kind: str, name: str, key: dict, compute, cache) -> Run:
    """The run of ``key``: from the cache, or ``compute()``d (and stored)."""
    def arrays():
        run = compute()
        return {"words": np.array(json.dumps(run.words)),
                "W": run.W.astype(np.float32), "seconds": np.float64(run.seconds),
                "info": np.array(json.dumps(run.info)),
                "history": np.array("" if run.history is None
                                    else run.history.to_json())}

    z, hit = cache_mod.cached("runs", {"kind": kind, **key}, arrays,
                              code=("qwem_lib.compare",), cache=cache)
    return _run(z, name, hit)


def _run(z, name: str, hit: bool) -> Run:
    """A :class:`Run` from its stored arrays."""
    from .runtime.history import History

    hist = str(z["history"])
    # W as a later call sees it (stored in float32), whether computed now or not
    return Run(name=name, words=json.loads(str(z["words"])),
               W=z["W"].astype(np.float32).astype(np.float64),
               seconds=float(z["seconds"]), info=json.loads(str(z["info"])),
               history=History.from_dict(json.loads(hist)) if hist else None,
               cached=hit)


def _tokens(corpus: str, vocab_size: int, scheme: str, cache: bool):
    from .corpus.tokens import load_tokens

    return load_tokens(corpus, vocab_size, scheme=scheme, cache=cache,
                       progress=False)


def closed_form_run(config, *, device=None, cache: bool = True,
                    name: str | None = None, timed: bool = True) -> Run:
    """svd of ``config.method``'s target (:func:`qwem_lib.pipeline.closed_form`).

    ``seconds`` is the cost of the method from the corpus file: computed without
    cached tokens, or, when another chapter already stored these eigenpairs in the
    closed-form cache, read from there with the stage times of the run that computed
    them (one computation for every chapter that needs it; that run may have read
    its tokens from the token cache, a few seconds less at V = 10^4).
    ``cache="refresh"`` recomputes from the corpus file.  ``timed=False``: a run
    whose wall time nobody reads (a row of an ablation) may also reuse the token
    arrays cached by an earlier run of the corpus; it is stored apart, with
    ``info["timed"] = False``, and a timed run of the same configuration, when
    stored, is returned instead.
    """
    from .pipeline import closed_form

    config.validate()
    key = {"config": config.key()}

    def compute():
        t0 = time.perf_counter()
        res = closed_form(config, device=device, progress=False,
                          cache=(True if not timed else "timed") if cache is True
                          else False)
        seconds = (sum(res.timings.values()) if res.cached   # the computing run's
                   else time.perf_counter() - t0)
        return Run(name or f"svd({config.method})", list(res.words),
                   res.W.cpu().numpy(), seconds,
                   {"config": asdict(config), "eigvals": res.eigvals.tolist(),
                    "stages": res.timings, "n_tokens": res.n_tokens,
                    "n_kept": res.n_kept, "timed": timed})

    return _untimed_or_timed("closed", name or f"svd({config.method})", key, compute,
                             cache, timed)


def _untimed_or_timed(kind: str, name: str, key: dict, compute, cache,
                      timed: bool) -> Run:
    """:func:`_cached`, where an untimed run (``timed=False``) is stored apart from
    the timed one, and the timed run of the same key is returned when stored."""
    if not timed and cache is True:
        entry = cache_mod.load("runs", {"kind": kind, **key},
                               code=("qwem_lib.compare",))
        if entry is not None:
            return _run(entry, name, True)
        key = dict(key, timed=False)
    return _cached(kind, name, key, compute, cache)


def closed_form_process_run(config, *, device=None, cache: bool = True,
                            name: str | None = None, progress: bool = False) -> Run:
    """:func:`closed_form_run` in a fresh process (``python -m qwem_lib embed``), so
    that its peak memory is its own: what a user running ``qwem embed`` would see.

    The command reads the corpus file (no cached tokens or eigenpairs); ``info``
    holds its ``--timings`` report: stage times, ``peak_rss_bytes``, ``n_pairs``
    (sparse counts' entries), ``n_matvecs``, ``eigvals`` and ``residuals``.
    """
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from .runtime.devices import default_device
    from .vectors import load_word2vec

    config.validate()
    flags = {"--corpus": config.corpus, "--vocab-size": config.vocab_size,
             "--dim": config.embed_dim, "--method": config.method,
             "--window": config.context_len, "--weighting": config.weighting,
             "--negatives": config.negatives, "--neg-power": config.neg_power,
             "--scheme": config.scheme,
             "--min-article-tokens": config.min_article_tokens,
             "--subsample": config.subsample,
             "--subsample-draws": config.subsample_draws,
             "--weight-power": config.weight_power, "--engine": config.engine,
             "--device": str(default_device(device))}

    def compute():
        with tempfile.TemporaryDirectory(prefix="qwem-run-") as tmp:
            out, timings = Path(tmp) / "W.txt", Path(tmp) / "timings.json"
            argv = [sys.executable, "-m", "qwem_lib", "embed", "--no-cache",
                    "--out", str(out), "--timings", str(timings)]
            argv += [str(x) for kv in flags.items() for x in kv]
            if not progress:
                argv.append("--quiet")
            t0 = time.perf_counter()
            done = subprocess.run(argv, stdout=subprocess.DEVNULL,
                                  stderr=None if progress else subprocess.PIPE,
                                  text=True)
            seconds = time.perf_counter() - t0
            if done.returncode != 0:
                last = (done.stderr or "").strip().splitlines()[-1:] or ["?"]
                raise QwemError(f"qwem embed failed ({last[0]})")
            words, W = load_word2vec(out)
            report = json.loads(timings.read_text())
        report.pop("options", None)
        return Run(name or f"svd({config.method}), V = {config.vocab_size:,}", words,
                   W, seconds, {"config": asdict(config), **report})

    return _cached("closed-process", name or "", {"config": config.key(),
                                                  "device": flags["--device"]},
                   compute, cache)


def word2vec_run(corpus: str, vocab_size: int, config, *, scheme: str = "auto",
                 device=None, threads: int | None = None, cache: bool = True,
                 name: str = "word2vec (ours)", n_checkpoints: int = 30,
                 analogy: bool = False, fraction: float | None = None,
                 timed: bool = True) -> Run:
    """Our word2vec (:func:`qwem_lib.word2vec.train_word2vec`), timed from the file.

    ``threads``: of the CPU kernel (default: all cores; part of the cache key, as
    runs on more than one thread differ by the order of their updates).
    ``analogy=True`` records the analogy accuracy at every checkpoint.
    ``fraction``: train only the first part of the run (0 < fraction <= 1 of its
    ``epochs · tokens`` words), on the schedule of the whole run (the learning rate
    decays over all ``config.epochs``): the same checkpoints, up to there, as the
    whole run, for a study of its early dynamics at a fraction of the cost.
    ``timed=False``: a run whose wall time nobody reads (a row of an ablation) may
    read the token array cached by an earlier run of the corpus; it is stored apart,
    with ``info["timed"] = False`` (its ``seconds`` then leave out reading the
    corpus), and a timed run of the same configuration, when stored, is returned
    instead.
    """
    from .kernels.sgns_cpu import default_threads
    from .runtime.devices import default_device
    from .word2vec import train_word2vec

    device = default_device(device)
    if device.type == "cpu" and threads is None:
        threads = default_threads()
    if fraction is not None and not (isinstance(fraction, (int, float))
                                     and 0 < fraction <= 1):
        raise QwemError(f"fraction must be in (0, 1], got {fraction!r}")

    def compute():
        t0 = time.perf_counter()
        tokens = _tokens(corpus, vocab_size, scheme, cache=not timed)
        words = list(tokens.vocab.words)
        res = train_word2vec(config, tokens.ids, vocab_size,
                             words=words if analogy else None, device=device,
                             threads=threads, progress=False,
                             n_checkpoints=n_checkpoints,
                             until=None if fraction is None else
                             math.ceil(fraction * config.epochs * len(tokens.ids)))
        seconds = time.perf_counter() - t0
        W = res.W.detach().to("cpu", torch.float64).numpy()
        return Run(name, words, W, seconds,
                   {"config": config.to_dict(), "steps": res.steps,
                    "engine": res.engine, "threads": res.threads,
                    "checkpoint_words": res.checkpoint_words,
                    "n_tokens": int(len(tokens.ids)), "timed": timed}, res.history)

    key = {"corpus": corpus_identity(corpus), "V": vocab_size,
           "scheme": scheme, "config": config.to_dict(), "checkpoints": n_checkpoints,
           "analogy": analogy, "engine": device.type, "threads": threads}
    if fraction is not None:
        key["fraction"] = float(fraction)
    return _untimed_or_timed("word2vec", name, key, compute, cache, timed)


def gensim_sentences(ids: np.ndarray, words, length: int = GENSIM_MAX_SENTENCE):
    """The token stream as gensim "sentences": lists of at most ``length`` words."""
    words = np.asarray(words, dtype=object)
    return [words[ids[a:a + length]].tolist() for a in range(0, len(ids), length)]


def gensim_run(corpus: str, vocab_size: int, config, *, scheme: str = "auto",
               workers: int = 2, cache: bool = True,
               name: str = "word2vec (gensim)") -> Run:
    """gensim's ``Word2Vec`` with ``config``'s settings on our token stream.

    The vocabulary is ours (``build_vocab_from_freq`` with our counts, so gensim's
    subsampling sees the same frequencies), the text is our in-vocabulary token
    stream cut into gensim's 10,000-word sentences, and ``W`` is returned in our
    vocabulary order.  gensim is always untied (``config.tied`` must be False); its
    learning rate decays linearly from ``config.lr`` to ``config.lr · 1e-4``, as ours.
    """
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise QwemError("gensim is not installed; it is needed only for the "
                        "reference runs: pip install gensim") from None
    from .kernels.sgns_cpu import MIN_LR_RATIO

    if config.tied:
        raise QwemError("gensim trains untied vectors; use a Word2VecConfig with "
                        "tied=False for the comparison")

    def compute():
        t0 = time.perf_counter()
        tokens = _tokens(corpus, vocab_size, scheme, cache=False)
        words = list(tokens.vocab.words)
        ids = np.asarray(tokens.ids)
        counts = np.bincount(ids, minlength=vocab_size)
        sentences = gensim_sentences(ids, words)
        model = Word2Vec(vector_size=config.embed_dim, window=config.window,
                         negative=config.negatives, ns_exponent=config.neg_power,
                         sample=config.subsample, alpha=config.lr,
                         min_alpha=config.lr * MIN_LR_RATIO, sg=1, hs=0,
                         min_count=1, workers=workers, seed=config.seed + 1)
        model.build_vocab_from_freq(dict(zip(words, counts.tolist())))
        model.train(sentences, total_examples=len(sentences),
                    total_words=int(len(ids)), epochs=config.epochs)
        seconds = time.perf_counter() - t0
        order = [model.wv.key_to_index[w] for w in words]
        W = np.asarray(model.wv.vectors, dtype=np.float64)[order]
        return Run(name, words, W, seconds,
                   {"config": config.to_dict(), "workers": workers,
                    "gensim": gensim.__version__, "n_tokens": int(len(ids))})

    import gensim

    key = {"corpus": corpus_identity(corpus), "V": vocab_size,
           "scheme": scheme, "config": config.to_dict(), "workers": workers,
           "gensim": gensim.__version__}
    return _cached("gensim", name, key, compute, cache)


def qwem_run(embed_config, train_config, *, device=None, lr_cap: float | None = None,
             cache: bool = True, name: str = "QWEM (trained)") -> Run:
    """QWEM trained on ``embed_config``'s M* (:func:`qwem_lib.train.train`).

    ``lr_cap`` caps ``lr="auto"`` at ``lr_cap / λ_1`` (chapter 4's rule keeps a step
    close to the flow).  ``info`` holds the resolved lr, the steps and the top-d
    eigenvalues.

    A run in M*'s eigenbasis (:func:`qwem_lib.train.trains_in_eigenbasis`) takes its
    spectrum and learning rate from the one full eigendecomposition the trainer
    needs, read from the cache when another run stored it for the same M*; its
    ``seconds`` then count the decomposition at what it took in the run that
    computed it (``info["eigenbasis_seconds"]``, ``info["eigenbasis_cached"]``), so
    that they stay the cost from the corpus file.
    """
    from dataclasses import replace

    from .dynamics import stable_lr
    from .pipeline import pair_statistics
    from .spectral import eigenbasis, top_eigh
    from .targets import m_star
    from .train import train, trains_in_eigenbasis

    def compute():
        t0 = time.perf_counter()
        tokens, P, u = pair_statistics(embed_config, device=device, progress=False,
                                       cache=False)
        M = m_star(P, u)
        d = train_config.embed_dim
        basis, spent, lam_min = None, {}, None
        if trains_in_eigenbasis(train_config, u):
            t1 = time.perf_counter()
            basis = eigenbasis(M, cache=None if cache is True else False,
                               timings=spent)
            read = time.perf_counter() - t1
            lam = basis[0][:d].cpu().numpy()
            lam_min = float(basis[0][-1])
        else:
            lam = top_eigh(M, d).eigvals.cpu().numpy()
        cfg = train_config
        if cfg.lr == "auto":
            if lam_min is None:
                lam_min = -float(top_eigh(-M, 1).eigvals[0])
            lr = stable_lr(lam, lam_min=lam_min, safety=0.9)
            if lr_cap is not None:
                lr = min(lr, lr_cap / float(lam[0]))
            cfg = replace(cfg, lr=lr)
        res = train(cfg, P, u, M_star=M, eigvals=lam, device=device, progress=False,
                    cache=False, eigendecomposition=basis)
        seconds = time.perf_counter() - t0
        if spent.get("eigenbasis cached"):  # its cost where it was paid, not the read
            seconds += spent["eigenbasis"] - read
        return Run(name, list(tokens.vocab.words),
                   res.W.detach().to("cpu", torch.float64).numpy(), seconds,
                   {"train": cfg.to_dict(), "lr": res.lr, "steps": res.steps,
                    "dt": res.dt, "eigvals": lam.tolist(),
                    "eigenbasis_seconds": spent.get("eigenbasis"),
                    "eigenbasis_cached": spent.get("eigenbasis cached")},
                   res.history)

    key = {"embed": embed_config.key(), "train": train_config.to_dict(),
           "lr_cap": lr_cap}
    return _cached("qwem", name, key, compute, cache)


# ----------------------------------------------------------------------------------
# a run on the theory's clock (chapter 5's Figure 2 row)
# ----------------------------------------------------------------------------------

class HalfLearned(NamedTuple):
    """Half-learned times of a run's top modes, measured and predicted.

    Attributes
    ----------
    measured : (K,) float64 ndarray
        Flow time at which ``s_k^2`` first reaches ``λ_k/2`` (``nan``: never).
    theory : (K,) float64 ndarray
        The gradient flow's ``t_k`` from the run's initial scale (eq-sigmoid).
    """

    measured: np.ndarray
    theory: np.ndarray


def flow_time(run: Run) -> np.ndarray:
    """A training run's checkpoints in the flow time of the paper's Section 3.

    A step of size η on a loss ``c · ¼||WW^T - M*||²`` advances the flow by
    ``Δt = 2ηc`` (eq-step-time).  QWEM (:func:`qwem_run`) records that time itself
    (``c = 1``).  Word2vec (:func:`word2vec_run`) records ``Σ η`` over the positive
    pairs it trained on; its loss per positive pair is, to second order, the quartic
    loss with ``c = (1 + k)/(2V²)`` (chapter 5), so its flow time is ``(1 + k)/V²``
    times the recorded one.

    Parameters
    ----------
    run : Run
        From :func:`qwem_run` or :func:`word2vec_run` (with a ``history``); V is
        ``run.W``'s number of rows, k its ``info["config"]["negatives"]``.

    Returns
    -------
    (T,) float64 ndarray
        One time per checkpoint of ``run.history``.

    Raises
    ------
    QwemError
        If the run recorded no history (a closed form, gensim).
    """
    if run.history is None:
        raise QwemError(f"{run.name!r} recorded no training history: only runs of "
                        "qwem_run and word2vec_run have a flow time")
    t = np.asarray(run.history.t)
    if "train" in run.info:            # QWEM: recorded with c = 1 (the book's loss)
        return t
    k = run.info["config"]["negatives"]
    V = run.W.shape[0]
    return t * (1 + k) / V ** 2        # word2vec records Σ η: 2c = (1 + k)/V²


def half_learned_times(run: Run, eigvals, init_scale: float) -> HalfLearned:
    """When each top mode of a run is half-learned, against the gradient flow.

    A mode is half-learned when its ``s_k^2`` first reaches ``λ_k/2``
    (:func:`qwem_lib.dynamics.crossing_times` on :func:`flow_time`); the flow's
    time is ``t_k = λ_k^{-1} ln((λ_k - σ²)/σ²)`` from ``s_k^2(0) = σ²``
    (:func:`qwem_lib.dynamics.timescales`, the paper's Section 3, eq-sigmoid).

    Parameters
    ----------
    run : Run
        A training run with a ``history`` (:func:`flow_time`).
    eigvals : (K,) array
        ``λ_1 ≥ … ≥ λ_K > 0`` of the target M*: the top K modes are compared.
    init_scale : float
        σ of the run's initial ``W`` (entries ``N(0, σ²/d)``).

    Returns
    -------
    HalfLearned
        ``measured`` and ``theory``, each ``(K,)``; their ratio is ``1`` for a run
        that follows the flow.
    """
    from .dynamics import crossing_times, init_scale_to_s2, timescales

    lam = np.asarray(eigvals)
    s2 = run.history.s2()[:, :len(lam)]
    measured = crossing_times(flow_time(run), s2, lam / 2)
    theory = timescales(lam, init_scale_to_s2(init_scale)).t_half.numpy()
    return HalfLearned(measured, theory)


_GROWTH_ROWS = 1024   # rows of the V x V buffer updated at a time


def word2vec_growth_rates(corpus: str, vocab_size: int, config, n_modes: int, *,
                          scheme: str = "auto", device=None,
                          cache: bool = True) -> np.ndarray:
    """Growth rates ``μ_k`` of word2vec's top modes near ``W = 0``, in flow time.

    Near ``W = 0`` word2vec's expected update, on :func:`flow_time`'s clock, is
    ``dW/dt = ½ M̃ W`` with ``M̃ = 2(P^sub - kQ) V²/(1 + k)``: ``P^sub`` its
    subsampled, windowed pair distribution, ``Q_ij = (P_i n_j + n_i P_j)/2`` its
    symmetrised negative pairs, ``n ∝ count^neg_power``.  ``M̃`` is ``G ∘ M*`` of
    word2vec's own statistics over the mean of ``G`` (chapter 5), so its mode k grows
    at ``μ_k`` where the flow on M* grows at ``λ_k``, and ``λ_k/μ_k`` predicts the
    ratio of measured to predicted half-learned times at small learning rates.

    Parameters
    ----------
    corpus : str
        Corpus name or path, as for :func:`word2vec_run`.
    vocab_size : int
        V.
    config : qwem_lib.word2vec.Word2VecConfig
        Its ``window``, ``negatives``, ``subsample``, ``neg_power`` and
        ``embed_dim`` set the statistics (:class:`qwem_lib.pipeline.EmbedConfig`).
    n_modes : int
        K, the number of top eigenvalues returned.
    scheme : str
        Tokenisation scheme of the corpus.
    device : str or torch.device, optional
    cache : bool
        Read the rates from the cache (``"growth_rates"``, keyed by the statistics'
        settings and K) and store them there; the counts are cached as for
        :func:`qwem_lib.pipeline.pair_statistics`.

    Returns
    -------
    (K,) float64 ndarray
        ``μ_1 ≥ … ≥ μ_K``, the top eigenvalues of ``M̃``.
    """
    from .pipeline import EmbedConfig

    k = float(config.negatives)
    cfg = EmbedConfig(corpus, vocab_size, config.embed_dim, scheme=scheme,
                      context_len=config.window, negatives=k,
                      neg_power=config.neg_power, subsample=config.subsample)
    out, _ = cache_mod.cached(
        "growth_rates", {"statistics": cfg.key(), "n_modes": n_modes},
        lambda: {"mu": _growth_rates(cfg, n_modes, device, cache)},
        code=("qwem_lib.compare",), cache=cache)
    return out["mu"]


def _growth_rates(cfg, n_modes: int, device, cache: bool) -> np.ndarray:
    """:func:`word2vec_growth_rates` computed from the statistics of ``cfg``."""
    from .pipeline import pair_statistics
    from .spectral import top_eigh

    k, vocab_size = cfg.negatives, cfg.vocab_size
    tokens, B, u = pair_statistics(cfg, device=device, progress=False, cache=cache)
    n = torch.as_tensor(np.bincount(tokens.ids, minlength=vocab_size),
                        dtype=B.dtype, device=B.device).pow(cfg.neg_power)
    n /= n.sum()
    V = vocab_size
    for i0 in range(0, V, _GROWTH_ROWS):         # B = 2(P_sub - kQ), in place
        i1 = min(i0 + _GROWTH_ROWS, V)
        B[i0:i1] -= 0.5 * k * (u[i0:i1, None] * n[None, :] + n[i0:i1, None] * u)
    B.mul_(2 * V ** 2 / (1 + k))
    return top_eigh(B, n_modes).eigvals.cpu().numpy()
