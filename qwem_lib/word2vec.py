"""word2vec: skip-gram with negative sampling, streamed over the token array.

:mod:`qwem_lib.train` trains on the pair statistics ``P_ij``; this module trains the
way word2vec does (Mikolov et al. 2013), by sliding over the corpus, so that its
embeddings can be compared with QWEM's, with the closed form and with gensim (the
paper's Sections 1 and 4-5).

What one epoch does, in word2vec's order:

1. **Subsampling.**  Every token of word w is kept with probability
   ``p_w = min(1, sqrt(t/f_w) + t/f_w)``, ``f_w = count_w / N``
   (:func:`qwem_lib.losses.keep_probs`).  Discarded tokens are removed before
   windowing, so windows reach further in the kept stream.
2. **Dynamic window.**  Every kept position draws ``b`` uniformly in ``1..L``; its
   contexts are the kept tokens at offsets ``1 <= |s| <= b`` inside its block of
   ``block_tokens`` raw tokens.  Offset s is therefore used with probability
   ``(L - s + 1)/L``, the paper's linear window weighting.
3. **Negative sampling.**  Each positive pair (context o, centre c) is pushed up,
   ``l+(x) = log(1 + e^{-x})`` with ``x = w_o · c_c``, and k words n drawn from
   ``count^{3/4}`` are pushed down, ``l-(x_on)``.  As in word2vec, the context's row
   of W is the input vector, the centre and the negatives use the output matrix C
   (C = W when ``tied``), and a negative equal to the centre word is skipped.
4. **Learning rate.**  ``lr_t = lr · max(1e-4, 1 - words/(epochs · N))``, where
   ``words`` counts the tokens read so far (discarded ones included).

Two engines run it, chosen by the device:

- on a CPU, the compiled kernel of :mod:`qwem_lib.kernels.sgns_cpu`: one centre at a
  time, on several threads without locks (Hogwild), as word2vec.c; with one thread a
  run is reproducible, and resumable, bit for bit;
- on CUDA, the batched torch steps of :mod:`qwem_lib.kernels.sgns_torch`
  (``batch_size`` centres a step), reproducible per device up to CUDA's atomic adds.

Around either, :func:`train_word2vec` keeps the history: checkpoints log-spaced in
words read (plus the start), each with the step, a nominal flow time ``t = Σ lr ·
pairs``, the loss on a fixed evaluation sample of pairs, the singular values of W
and, if ``words`` are given, the analogy accuracy, in the
:class:`qwem_lib.runtime.history.History` format; with ``out_dir``, a checkpoint to
resume from.

The flow time recorded in ``history.t`` is nominal: ``t = Σ lr · pairs`` over the
centres (or steps).  The summed gradient of n pairs has expectation ``n · ∇F``, with F
the SGNS loss per positive pair, ``E_(o,c)[l+(x_oc) + Σ_k l-(x_on)]`` (what
``history.loss`` estimates), so ``t`` is the time of the gradient flow on F, in the
units of :mod:`qwem_lib.train` for ``loss="sgns"``.  It is comparable with QWEM's flow
time only up to constant factors (the paper's Figure 2): F's pair weights are not
constant, and untied weights follow a different flow.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .corpus.cooccurrence import check_window
from .corpus.subsampling import check_subsample, keep_probs
from .kernels.sgns_cpu import MIN_LR_RATIO, Hogwild, KernelState, default_threads
from .kernels.sgns_torch import (NegativeSampler, TorchSGNS, block_seed, prepare_block,
                                 window_pairs)
from .runtime._repr import short_repr
from .runtime.devices import default_device
from .runtime.errors import QwemError
from .runtime.history import (DTYPES, HISTORY, History, diverged_error, open_run_dir,
                              save_checkpoint)
from .runtime.options import TRAIN_ENGINES, check_int, check_real, check_seed
from .train import TrainResult, check_init_range, check_run_info

__all__ = ["Word2VecConfig", "Word2VecResult", "train_word2vec", "checkpoint_words",
           "ENGINES", "MAX_NEGATIVES"]

ENGINES = TRAIN_ENGINES
_EVAL_KEY = 2**32 - 1  # in place of the epoch: the evaluation sample's stream
_EVAL_SEGMENTS = 16  # the fixed loss-evaluation sample: 16 random stretches ...
_EVAL_SEGMENT_TOKENS = 1024  # ... of 1024 raw tokens each, ...
_EVAL_PAIRS = 8192  # ... at most this many of their pairs (a random subset)
_MIN_LOSS_PAIRS = 256  # the running loss is judged over at least this many pairs
# k: word2vec uses 5 to 20 (its paper: 2-5 for large corpora); time grows linearly
# with k, and beyond a few hundred the negative term swamps the positive one.
MAX_NEGATIVES = 1000


# ----------------------------------------------------------------------------------
# configuration and result
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Word2VecConfig:
    """Everything that determines a word2vec (SGNS) run, besides the corpus.

    Attributes
    ----------
    embed_dim : int
        d.
    window : int
        L, the largest context offset; each centre draws its window in ``1..L``.
    negatives : int
        k, negatives per positive pair.
    subsample : float
        t, the subsampling threshold (gensim's ``sample``, word2vec's ``-sample``);
        0 disables subsampling.  The paper uses 1e-5, gensim's default is 1e-3.
    neg_power : float
        Negatives are drawn from ``count^neg_power`` (word2vec: 0.75; 1 is the
        unigram, as in the paper's Setting 3.1 runs).
    epochs : int
    lr : float
        Starting learning rate, decayed linearly to ``lr · 1e-4`` over all epochs.
    shared_negatives : bool
        CPU kernel: draw the k negatives once per centre and use them for every
        pair of its window (True, as Ji et al. 2016: faster, the same expected
        update), or draw k per pair as word2vec.c does (False).  The torch engine
        always shares them.
    batch_size : int
        Torch path: kept centre positions per step (each brings up to 2L pairs).
        Larger is faster on GPU, but the summed steps of frequent words overshoot
        (:mod:`qwem_lib.kernels.sgns_torch`) unless ``step_cap``.
    tied : bool
        True: one matrix, ``x = w_o · w_c`` (the paper's word2vec).  False: input W
        and output C, C initialised to zeros (word2vec's); the embeddings are W.
        Tied, ``W W^T`` is positive semi-definite, so the negative pairs cannot all
        get ``x < 0``: the loss per pair stays near ``(k+1) log 2`` (the paper uses
        k = 1) while the directions, and the analogies, are learned.
    init_scale : float or None
        Entries of W ~ ``N(0, (init_scale/√d)^2)`` (the paper's convention, its
        Section 4).  None: 0.1 when tied (the paper's "word2vec-style init"), word2vec's
        ``uniform(-0.5/d, 0.5/d)`` when untied.
    seed : int
    dtype : {"float32", "float64"}
    block_tokens : int
        Raw tokens per block, word2vec's "sentences": windows do not cross block
        boundaries.  10,000 is gensim's longest sentence.
    step_cap : bool
        Torch path: cap each row's step at the minimum of the batch loss along it
        (:func:`qwem_lib.kernels.sgns_torch.sgns_update`), so frequent words cannot
        overshoot; False: plain summed SGD, which needs a small ``batch_size``.

    Every field is checked when the config is made (type, finiteness, range: window
    1 to :data:`qwem_lib.corpus.cooccurrence.MAX_WINDOW`, negatives 1 to
    :data:`MAX_NEGATIVES`, seed 0 to 2**63 - 1; one
    :class:`~qwem_lib.runtime.errors.QwemError` line naming the option and its flag);
    numpy numbers are accepted and stored as Python ints and floats.
    """

    embed_dim: int = 200
    window: int = 10
    negatives: int = 5
    subsample: float = 1e-4
    neg_power: float = 0.75
    epochs: int = 1
    lr: float = 0.025
    shared_negatives: bool = True
    batch_size: int = 64
    tied: bool = True
    init_scale: float | None = None
    seed: int = 0
    dtype: str = "float32"
    block_tokens: int = 10_000
    step_cap: bool = True

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name, flag in (("embed_dim", "--dim"), ("epochs", "--epochs"),
                           ("batch_size", "--batch-size"),
                           ("block_tokens", None)):
            put(name, check_int(getattr(self, name), name, flag))
        put("window", check_window(self.window))
        put("negatives", check_int(self.negatives, "negatives", "--negatives",
                                   hi=MAX_NEGATIVES))
        put("seed", check_seed(self.seed))
        put("lr", check_real(self.lr, "lr", "--lr", gt=0,
                             why="word2vec's default is 0.025"))
        put("subsample", check_real(self.subsample, "subsample", "--subsample", ge=0,
                                    why="0 disables it"))
        check_subsample(self.subsample)
        put("neg_power", check_real(self.neg_power, "neg_power", "--neg-power", ge=0))
        if self.init_scale is not None:
            put("init_scale", check_real(
                self.init_scale, "init_scale", "--init-scale", gt=0,
                why="or None for the default of the tied or untied model; W = 0 is "
                    "a stationary point and never trains"))
            check_init_range(self.init_scale, self.dtype if isinstance(
                self.dtype, str) else "float32", "word2vec's is 0.1 (the default)")
        for name in ("shared_negatives", "tied", "step_cap"):
            v = getattr(self, name)
            if not isinstance(v, (bool, np.bool_)):
                raise QwemError(f"{name} must be True or False, got {v!r}")
            put(name, bool(v))
        if not (isinstance(self.dtype, str) and self.dtype in DTYPES):
            raise QwemError(f"dtype (--dtype) must be float32 or float64, got "
                            f"{self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Word2VecResult(TrainResult):
    """A :class:`qwem_lib.runtime.history.TrainResult` plus what only word2vec has.

    Attributes
    ----------
    W : (V, d) tensor
        The embeddings (input vectors), on the training device.
    history : History
        ``t`` is the nominal flow time ``Σ lr · pairs`` (see :func:`train_word2vec`);
        ``loss`` the evaluation-sample loss per pair.
    lr : float
        The starting learning rate.
    steps : int
        Steps run in all: centres trained by the CPU kernel, batches by the torch
        engine.
    dt : float
        Mean flow time per step, ``t_final / steps`` (lr and pairs vary per step).
    config : Word2VecConfig
    C : (V, d) tensor or None
        The output (context) vectors when untied; None when tied.
    checkpoint_words : list of int
        Raw tokens read at each history entry (aligned with ``history.step``).
    engine : str
        ``"kernel"`` or ``"torch"``.
    threads : int
        Threads of the CPU kernel (1 for the torch engine).
    """

    __repr__ = short_repr

    C: torch.Tensor | None = None
    checkpoint_words: list = field(default_factory=list)
    engine: str = "kernel"
    threads: int = 1


# ----------------------------------------------------------------------------------
# the recorded loss
# ----------------------------------------------------------------------------------

def _eval_sample(ids, keep, config, sampler, dev):
    """A fixed sample of (context, centre, negatives) for the recorded loss."""
    gen = torch.Generator(device=dev)
    gen.manual_seed(block_seed(config.seed, _EVAL_KEY, 0))
    N, seg = len(ids), min(len(ids), _EVAL_SEGMENT_TOKENS)
    starts = torch.randint(0, N - seg + 1, (_EVAL_SEGMENTS,), generator=gen,
                           device=dev).cpu().numpy()
    ctx, cen = [], []
    for a in starts:
        blk = prepare_block(ids[a:a + seg], keep, config.window, gen, dev)
        if blk.kept.numel() < 2:
            continue
        c, o = window_pairs(blk.windows, config.window)
        cen.append(blk.kept[c])
        ctx.append(blk.kept[o])
    if not cen:
        return None
    cen, ctx = torch.cat(cen), torch.cat(ctx)
    if cen.numel() > _EVAL_PAIRS:
        pick = torch.randperm(cen.numel(), generator=gen, device=dev)[:_EVAL_PAIRS]
        cen, ctx = cen[pick], ctx[pick]
    return ctx, cen, sampler.draw((cen.numel(), config.negatives), gen)


def _eval_loss(W, C, sample) -> float:
    """Mean SGNS loss per positive pair, ``l+ + Σ_k l-`` (negatives equal to the
    centre skipped), on the fixed sample; NaN if the sample is empty."""
    if sample is None:
        return math.nan
    ctx, cen, neg = sample
    Cm = W if C is None else C
    total = 0.0
    with torch.no_grad():
        for a in range(0, ctx.numel(), 2048):  # float64, in chunks
            o, c, m = ctx[a:a + 2048], cen[a:a + 2048], neg[a:a + 2048]
            w = W[o].to(torch.float64)
            pos = F.softplus(-(w * Cm[c].to(torch.float64)).sum(-1))
            xn = torch.bmm(Cm[m].to(torch.float64), w[:, :, None]).squeeze(2)
            total += float(pos.sum() + (F.softplus(xn) * (m != c[:, None])).sum())
    return total / ctx.numel()


# ----------------------------------------------------------------------------------
# the trainer
# ----------------------------------------------------------------------------------

def _check_tokens(tokens_ids, vocab_size) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(tokens_ids, torch.Tensor):
        tokens_ids = tokens_ids.detach().cpu().numpy()
    ids = np.asarray(tokens_ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise QwemError(f"tokens_ids must be a 1-D integer array of word ids, got "
                        f"shape {ids.shape} and dtype {ids.dtype}; pass "
                        "load_tokens(...).ids")
    if ids.size < 2:
        raise QwemError(f"the token stream has {ids.size} token(s): nothing to "
                        "train on; pass a corpus (load_tokens(...).ids) with at least "
                        "two in-vocabulary tokens")
    vocab_size = check_int(vocab_size, "vocab_size", lo=2)
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise QwemError(f"token ids must lie in 0..{vocab_size - 1} (vocab_size = "
                        f"{vocab_size}), found {lo}..{hi}; pass the vocabulary size "
                        "the ids were made with, len(load_tokens(...).vocab)")
    counts = np.zeros(vocab_size, np.int64)
    for a in range(0, len(ids), 1 << 23):  # slices: bincount copies to int64
        counts += np.bincount(ids[a:a + (1 << 23)], minlength=vocab_size)
    missing = int((counts == 0).sum())
    if missing:
        raise QwemError(f"vocab_size = {vocab_size} but only {vocab_size - missing} "
                        f"distinct ids occur in the token stream; pass vocab_size = "
                        "the number of words that occur (load_tokens keeps only "
                        "those), or renumber the ids 0..V-1")
    return np.ascontiguousarray(ids, dtype=np.int32), counts


def _init(config: Word2VecConfig, V: int, gen: torch.Generator, dev, dtype):
    d = config.embed_dim
    if config.init_scale is None and not config.tied:
        W = (torch.rand(V, d, generator=gen, device=dev, dtype=torch.float64)
             - 0.5) / d
    else:
        scale = 0.1 if config.init_scale is None else float(config.init_scale)
        W = torch.randn(V, d, generator=gen, device=dev,
                        dtype=torch.float64) * (scale / d ** 0.5)
    C = None if config.tied else torch.zeros(V, d, device=dev, dtype=dtype)
    return W.to(dtype), C


def checkpoint_words(total_words: int, n: int) -> list[int]:
    """``n`` log-spaced word counts from 1 to ``total_words`` (deduplicated)."""
    pts = np.unique(np.round(np.logspace(0, np.log10(max(total_words, 1)), n)))
    return sorted({int(p) for p in pts if 1 <= p <= total_words} | {total_words})


def _meta(config, engine: str, threads: int, n_checkpoints: int, dev, ids, V: int,
          run_info: dict) -> dict:
    """What a checkpoint must have been written with to be resumed: every setting
    that changes the trajectory, and a fingerprint of the token stream."""
    return {"config": config.to_dict(), "engine": engine, "threads": int(threads),
            "n_checkpoints": int(n_checkpoints), "device": dev.type,
            "vocab_size": int(V), "n_tokens": int(len(ids)),
            "tokens": "sha256:" + hashlib.sha256(
                memoryview(np.ascontiguousarray(ids, np.int32))).hexdigest(),
            "run": run_info}


_ENGINE_ARRAYS = {"kernel": ("kernel_epoch", "kernel_pos", "kernel_rng", "kernel_acc"),
                  "torch": ("torch_position", "torch_t", "torch_rng")}


def _check_state(ck: dict, path: Path, config, engine: str, threads: int, V: int,
                 dev) -> None:
    """Refuse arrays of the wrong shape or kind (a damaged checkpoint) before they
    reach the engines."""
    d = config.embed_dim
    want = {"W": (V, d), "checkpoint_words": None, "history": (),
            "kernel_epoch": (), "kernel_pos": (threads, 4), "kernel_rng": (threads,),
            "kernel_acc": (threads, 4), "torch_position": (5,), "torch_t": (),
            "torch_rng": tuple(torch.Generator(device=dev).get_state().shape)}
    if not config.tied:
        want["C"] = (V, d)
    bad = [name for name, shape in want.items() if name in ck and shape is not None
           and ck[name].shape != shape]
    cw = ck["checkpoint_words"]
    if cw.ndim != 1 or not np.issubdtype(cw.dtype, np.integer):
        bad.append("checkpoint_words")
    try:
        history = History.from_dict(json.loads(str(ck["history"])))
    except (ValueError, QwemError):
        history = None
        bad.append("history")
    if history is not None and len(history.step) != len(cw):
        bad.append("history")
    if bad:
        raise QwemError(f"cannot read the checkpoint {path}: the array(s) "
                        f"{', '.join(dict.fromkeys(bad))} have the wrong shape or "
                        "content (damaged); delete it to start afresh "
                        "(overwrite=True, --overwrite)")


def _resolve_engine(engine: str, dev: torch.device) -> str:
    if engine not in ENGINES:
        raise QwemError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "kernel" if dev.type == "cpu" else "torch"
    if engine == "kernel" and dev.type != "cpu":
        raise QwemError(f"the compiled kernel runs on the CPU, not on {dev}; use "
                        "device='cpu', or engine='torch' (or 'auto') on a GPU")
    return engine


def _threads(threads, engine: str) -> int:
    if engine == "torch":
        return 1
    if threads is None:
        return default_threads()
    return check_int(threads, "threads")


def _engine(engine: str, config: Word2VecConfig, ids, keep, sampler, W, C, dev,
            threads, state):
    """The engine that trains W (and C) in place, from ``state`` if given; ``keep``
    and ``sampler`` (on ``dev``) are the subsampling and the negatives' tables."""
    if engine == "torch":
        return TorchSGNS(ids, keep, sampler, W, C, config, dev, state=state)
    return Hogwild(ids, keep.cpu().numpy(), sampler.prob.cpu().numpy(),
                   sampler.alias.cpu().numpy(), W.numpy(),
                   None if C is None else C.numpy(), window=config.window,
                   negatives=config.negatives, block_tokens=config.block_tokens,
                   seed=config.seed, epochs=config.epochs, lr=config.lr,
                   shared=config.shared_negatives, threads=threads,
                   state=None if state is None else KernelState.from_arrays(state))


class _Settings(NamedTuple):
    """:func:`train_word2vec`'s arguments, checked and resolved."""

    ids: np.ndarray  # (N,) int32 token ids
    counts: np.ndarray  # (V,) int64, how often each id occurs
    vocab_size: int
    total: int  # raw tokens to read in all, epochs · N
    dev: torch.device
    engine: str  # "kernel" or "torch"
    threads: int
    n_checkpoints: int
    until: int | None
    run_info: dict


def _settings(config, tokens_ids, vocab_size, *, device, engine, threads,
              n_checkpoints, until, run_info, resume: bool, out_dir) -> _Settings:
    """Check :func:`train_word2vec`'s arguments (before anything is done) and resolve
    the device, the engine and its threads."""
    if not isinstance(config, Word2VecConfig):
        raise QwemError(f"config must be a Word2VecConfig, got "
                        f"{type(config).__name__}")
    ids, counts = _check_tokens(tokens_ids, vocab_size)
    n_checkpoints = check_int(n_checkpoints, "n_checkpoints", "--checkpoints")
    if until is not None:
        until = check_int(until, "until", lo=0)
    run_info = check_run_info(run_info)
    if resume and out_dir is None:
        raise QwemError("resume=True needs out_dir (where the checkpoint is)")
    dev = default_device(device)
    name = _resolve_engine(engine, dev)
    if name == "torch" and not config.shared_negatives:
        raise QwemError("negatives drawn per pair (shared_negatives=False, "
                        "--pair-negatives) are the CPU kernel's; the torch engine "
                        "shares them per centre")
    return _Settings(ids, counts, int(vocab_size), config.epochs * len(ids), dev,
                     name, _threads(threads, name), n_checkpoints, until, run_info)


def _run_dir(config: Word2VecConfig, s: _Settings, out_dir, resume: bool,
             overwrite: bool):
    """:func:`~qwem_lib.runtime.history.open_run_dir` for this run: its checkpoint
    must hold W (and C when untied), the history and the engine's state, and is
    checked for damage by :func:`_check_state`."""
    need = ("W", "history", "checkpoint_words", *_ENGINE_ARRAYS[s.engine])
    return open_run_dir(
        out_dir, resume=resume, overwrite=overwrite,
        required=need + (() if config.tied else ("C",)),
        meta=lambda: _meta(config, s.engine, s.threads, s.n_checkpoints, s.dev,
                           s.ids, s.vocab_size, s.run_info),
        check=lambda ck, path: _check_state(ck, path, config, s.engine, s.threads,
                                            s.vocab_size, s.dev))


def _start(config: Word2VecConfig, s: _Settings, ck):
    """W, C (None when tied), the history and the words read at each of its
    entries: from the checkpoint ``ck``, or a new run's (W drawn from the seed)."""
    dtype = config.torch_dtype
    if ck is not None:
        W = torch.as_tensor(ck["W"]).to(device=s.dev, dtype=dtype)
        C = None if config.tied else \
            torch.as_tensor(ck["C"]).to(device=s.dev, dtype=dtype)
        history = History.from_dict(json.loads(str(ck["history"])))
        ck_words = [int(w) for w in ck["checkpoint_words"]]
    else:
        gen = torch.Generator(device=s.dev)
        gen.manual_seed(int(config.seed))
        W, C = _init(config, s.vocab_size, gen, s.dev, dtype)
        history, ck_words = History(), []
    return W.contiguous(), None if C is None else C.contiguous(), history, ck_words


class _Session:
    """One call of :func:`train_word2vec`: runs the engine, and records,
    checkpoints and watches the run."""

    def __init__(self, config: Word2VecConfig, s: _Settings, ck, *, words, questions,
                 ck_path, meta):
        """The starting point (:func:`_start`), the subsampling and negatives'
        tables, the engine (from ``ck`` if given) and the evaluation sample."""
        self.config, self.s, self.dev = config, s, s.dev
        self.W, self.C, self.history, self.ck_words = _start(config, s, ck)
        keep = keep_probs(s.counts, config.subsample).to(s.dev)
        sampler = NegativeSampler(s.counts, config.neg_power, device=s.dev)
        self.engine = _engine(s.engine, config, s.ids, keep, sampler, self.W, self.C,
                              s.dev, s.threads, ck)
        self.sample = _eval_sample(s.ids, keep, config, sampler, s.dev)
        self.words, self.questions = words, questions
        self.ck_path, self.meta, self.bar = ck_path, meta, None
        self.seen = self.engine.running_loss()
        if s.engine == "kernel":
            self.hint = "use a smaller lr"
        else:
            self.hint = (f"use a smaller lr or batch_size (start lr {config.lr:g}, "
                         f"batch_size {config.batch_size})")
        self.blowup = self._blowup()

    def _blowup(self) -> float:
        """Training lowers the loss; twice the start means the steps overshoot."""
        if not self.history.loss:
            return math.inf  # set at the first record
        start = self.history.loss[0]
        floor = (self.config.negatives + 1) * math.log(2.0)
        return 2.0 * max(start if math.isfinite(start) else 0.0, floor)

    def lr_now(self) -> float:
        e = self.engine
        return self.config.lr * max(MIN_LR_RATIO, 1.0 - e.words_done / e.total_words)

    def record(self) -> None:
        e = self.engine
        with torch.no_grad():
            sv = torch.linalg.svdvals(self.W.to(torch.float64))
        if not bool(torch.isfinite(sv).all()):
            raise diverged_error(e.steps, "W", self.lr_now(), self.hint)
        acc = None
        if self.words is not None:
            from .evaluate import analogy_paper
            acc = analogy_paper(self.W, self.words, self.questions,
                                device=self.dev).accuracy
        loss = _eval_loss(self.W, self.C, self.sample)
        self.history.append(e.steps, e.flow_time, loss, sv.cpu().tolist(), acc)
        self.ck_words.append(int(e.words_done))
        self.blowup = self._blowup()

    def save(self) -> None:
        if self.ck_path is None:
            return
        arrays = {"W": self.W.detach().cpu().numpy()}
        if self.C is not None:
            arrays["C"] = self.C.detach().cpu().numpy()
        save_checkpoint(self.ck_path, self.meta, **arrays, **self.engine.to_arrays(),
                        history=np.array(self.history.to_json()),
                        checkpoint_words=np.asarray(self.ck_words, dtype=np.int64))

    def poll(self) -> None:
        """Progress, and the divergence checks on the running loss."""
        e = self.engine
        loss, pairs = e.running_loss()
        d_loss, d_pairs = loss - self.seen[0], pairs - self.seen[1]
        if not math.isfinite(d_loss):
            raise diverged_error(e.steps, "the loss", self.lr_now(), self.hint)
        if d_pairs >= _MIN_LOSS_PAIRS:
            mean = d_loss / d_pairs
            if mean > self.blowup:
                raise QwemError(
                    f"training diverged at step {e.steps}: the loss per pair rose to "
                    f"{mean:.4g} (it started at {self.history.loss[0]:.4g}) with "
                    f"learning rate {self.lr_now():g}; {self.hint}")
            self.seen = (loss, pairs)
            epoch = min(e.words_done // max(e.N, 1) + 1, self.config.epochs)
            self.bar.set_postfix(epoch=f"{epoch}/{self.config.epochs}",
                                 lr=f"{self.lr_now():.3g}", loss=f"{mean:.4f}",
                                 refresh=False)
        self.bar.update(e.words_done - self.bar.n)

    def train(self, progress: bool) -> None:
        """Record the start (a new run), then run the engine from checkpoint to
        checkpoint (log-spaced in words read) up to the goal, recording and saving
        at each; a run stopped between two (``until``) saves where it stops."""
        from .runtime.progress import bar as progress_bar

        eng, total = self.engine, self.s.total
        goal = total if self.s.until is None else min(int(self.s.until), total)
        marks = checkpoint_words(total, self.s.n_checkpoints)
        self.bar = progress_bar(progress, total=total, initial=eng.words_done,
                                unit="word", unit_scale=True)
        try:
            if not self.history.step:
                self.record()
            while eng.words_done < goal:
                eng.run(min([m for m in marks if m > eng.words_done] + [goal]),
                        self.poll)
                if any(self.ck_words[-1] < m <= eng.words_done for m in marks):
                    self.record()
                    self.save()
                elif eng.words_done < total:  # stopped by until, between two marks
                    self.save()
        finally:
            self.bar.close()

    def finish(self, out_dir) -> Word2VecResult:
        """Write ``history.json`` if the run is complete; the result."""
        eng = self.engine
        if out_dir is not None and eng.words_done >= self.s.total:
            self.history.save(Path(out_dir) / HISTORY)
        t_final = eng.flow_time
        return Word2VecResult(W=self.W, history=self.history, lr=float(self.config.lr),
                              steps=eng.steps,
                              dt=t_final / eng.steps if eng.steps else 0.0,
                              config=self.config, C=self.C,
                              checkpoint_words=self.ck_words, engine=self.s.engine,
                              threads=self.s.threads)


def train_word2vec(config: Word2VecConfig, tokens_ids, vocab_size: int, *,
                   words=None, questions=None, device=None, threads=None,
                   engine: str = "auto", out_dir=None, resume: bool = False,
                   overwrite: bool = False, progress: bool = True,
                   n_checkpoints: int = 30, until: int | None = None,
                   run_info: dict | None = None) -> Word2VecResult:
    """Train skip-gram with negative sampling by streaming over the tokens.

    See the module docstring for the algorithm, and for the nominal flow time
    ``t = Σ lr · pairs`` that ``history.t`` records.

    Parameters
    ----------
    config : Word2VecConfig
    tokens_ids : (N,) int array or tensor
        In-vocabulary token ids in corpus order (``load_tokens(...).ids``).
    vocab_size : int
        V; every id in ``0..V-1`` must occur.
    words : sequence of str, optional
        The vocabulary: record the analogy accuracy
        (:func:`qwem_lib.evaluate.analogy_paper`) at each checkpoint.
    questions : optional
        Analogy questions for :func:`~qwem_lib.evaluate.analogy_paper`.
    device : str or torch.device, optional
        :func:`qwem_lib.runtime.devices.default_device` (None: CUDA if available,
        else CPU).
    threads : int, optional
        Threads of the CPU kernel (default: every core this process may use).  One
        thread: a run is reproducible bit for bit; more: only statistically.
    engine : {"auto", "kernel", "torch"}
        "auto": the compiled kernel on a CPU, batched torch steps on CUDA.
        "torch" also runs on a CPU (slowly; for tests and comparisons).
    out_dir : path, optional
        Write ``checkpoint.npz`` (atomically) at every checkpoint and
        ``history.json`` at the end.  A folder that holds another run's files is
        refused (:func:`qwem_lib.runtime.history.prepare_run_dir`) unless ``resume`` or
        ``overwrite``.
    resume : bool
        Continue from ``out_dir/checkpoint.npz`` if present.  The checkpoint must
        belong to this run: the same config, engine, threads, ``n_checkpoints``,
        device, ``run_info`` and token stream (a SHA-256 of the ids); a difference
        is refused naming each setting with both values.  With one thread (or the
        torch engine on CPU) the result is bitwise that of an uninterrupted run.
    overwrite : bool
        Delete the files of an earlier run in ``out_dir`` (only
        :data:`qwem_lib.runtime.history.RUN_FILES`) and start afresh.
    progress : bool
        tqdm bar over the words to read, with epoch, lr and the running loss.
    n_checkpoints : int
        Log-spaced checkpoints (in words read) besides the start.
    until : int, optional
        Stop once this many raw tokens have been read (saving a checkpoint there if
        ``out_dir`` is given), to interrupt a run on purpose.
    run_info : dict, optional
        JSON-able facts about the run from the caller (the command line passes the
        corpus's content hash, the scheme, the window, the vocabulary size), kept in
        the checkpoint and compared on resume.

    Returns
    -------
    Word2VecResult

    Raises
    ------
    QwemError
        On bad input, or if the loss or W becomes NaN/inf, or the running loss per
        pair rises to twice its start (names the step and lr).
    """
    s = _settings(config, tokens_ids, vocab_size, device=device, engine=engine,
                  threads=threads, n_checkpoints=n_checkpoints, until=until,
                  run_info=run_info, resume=resume, out_dir=out_dir)
    ck_path, meta, ck = _run_dir(config, s, out_dir, resume, overwrite)
    run = _Session(config, s, ck, words=words, questions=questions, ck_path=ck_path,
                   meta=meta)
    run.train(progress)
    return run.finish(out_dir)
