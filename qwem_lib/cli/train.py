"""``qwem train``: QWEM or SGNS training from small initialisation, with history and
checkpoints (:func:`qwem_lib.train.train`); ``--loss sgns --reweight word2vec`` streams
over the corpus as word2vec does (dynamic window, subsampling, k negatives from
P^{3/4}; :func:`qwem_lib.word2vec.train_word2vec`)."""

from __future__ import annotations

import argparse
import time

from ..runtime.errors import QwemError
from ..runtime.options import DTYPES, LOSSES, REWEIGHTINGS
from ._inputs import corpus, corpus_input, mstar_inputs
from ._parser import add_corpus_options, integer, real
from ._streams import log

#: Most CPU threads ``--threads`` takes.
MAX_THREADS = 1024


def add_parser(subparsers) -> None:
    """``qwem train`` and its options."""
    t = subparsers.add_parser(
        "train", help="train embeddings (QWEM or SGNS) on a corpus",
        description="Gradient descent from small initialisation on the expected loss "
        "(--full-batch) or SGD on sampled word pairs (--batch-size). --loss sgns "
        "--reweight word2vec is word2vec itself: skip-gram with negative sampling "
        "streamed over the corpus, with the dynamic window, frequent-word subsampling "
        "and negatives from P^{3/4} (add --full-batch for gradient descent on its "
        "expected loss instead). Writes DIR/embeddings.txt, DIR/history.json, "
        "DIR/config.json and DIR/checkpoint.npz (for --resume).")
    add_corpus_options(t)
    t.add_argument("--loss", choices=LOSSES, default="qwem")
    t.add_argument("--reweight", choices=REWEIGHTINGS, default="setting31")
    _add_descent_options(t)
    _add_run_options(t)
    _add_word2vec_options(t)
    t.add_argument("--out", required=True, metavar="DIR")
    t.set_defaults(func=run)


def _add_descent_options(t: argparse.ArgumentParser) -> None:
    """The descent: initial scale, learning rate, steps, batches, basis."""
    t.add_argument("--init-scale", type=real, default=None, metavar="S",
                   help="init entries N(0, (S/sqrt(d))^2) (default 1e-8; word2vec: "
                   "0.1 tied, word2vec's uniform(-0.5/d, 0.5/d) untied)")
    t.add_argument("--lr", default="auto",
                   help="learning rate, or auto (stable, from M*'s spectrum; "
                   "word2vec: 0.025, decayed linearly to 0)")
    t.add_argument("--steps", default="auto",
                   help="steps, or auto (until the d-th mode is learned)")
    t.add_argument("--max-steps", type=integer(1, 10**9), default=1_000_000)
    batch = t.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=integer(1, 10**8), metavar="B",
                       help="positive (and negative) pairs per SGD step; word2vec "
                       "on a GPU: centre words per step (default 64)")
    batch.add_argument("--full-batch", action="store_true",
                       help="gradient descent on the expected loss (default, except "
                       "for word2vec)")
    t.add_argument("--word-basis", action="store_true",
                   help="full-batch QWEM under Setting 3.1: take the steps on W itself "
                   "(two V x V x d products a step) instead of in M*'s eigenbasis "
                   "(the same trajectory at V x d x d a step, after one cached "
                   "eigendecomposition of M*)")


def _add_run_options(t: argparse.ArgumentParser) -> None:
    """The run: seed, precision, checkpoints, and an earlier run in DIR."""
    t.add_argument("--seed", type=integer(), default=0)
    t.add_argument("--dtype", choices=DTYPES, default=None,
                   help="default float64 (word2vec: float32)")
    t.add_argument("--checkpoints", type=integer(1, 100_000), default=None,
                   metavar="N",
                   help="log-spaced checkpoints (default 50; word2vec: 30)")
    t.add_argument("--analogy", action="store_true",
                   help="record analogy accuracy at each checkpoint (slow)")
    again = t.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in DIR from DIR/checkpoint.npz (the same "
                       "corpus and settings are required)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the files of an earlier run in DIR (by default a "
                       "folder holding another run's files is refused)")


def _add_word2vec_options(t: argparse.ArgumentParser) -> None:
    """The options of word2vec itself (--loss sgns --reweight word2vec)."""
    w = t.add_argument_group("word2vec (--loss sgns --reweight word2vec)")
    w.add_argument("--negatives", type=integer(), default=None, metavar="K",
                   help="negatives per positive pair (default 5)")
    w.add_argument("--subsample", type=real, default=None, metavar="T",
                   help="frequent-word subsampling threshold, 0 for none "
                   "(default 1e-4)")
    w.add_argument("--epochs", type=integer(1, 10**6), default=None, metavar="E",
                   help="passes over the corpus (default 1)")
    w.add_argument("--neg-power", type=real, default=None, metavar="A",
                   help="negatives drawn from count^A (default 0.75)")
    w.add_argument("--untied", action="store_true",
                   help="separate context vectors, as in word2vec.c and gensim "
                   "(default: tied, as in the paper)")
    w.add_argument("--threads", type=integer(1, MAX_THREADS), default=None,
                   metavar="N",
                   help="CPU threads of the compiled kernel (default: all cores); "
                   "with 1 a run is reproducible bit for bit, with more (Hogwild) "
                   "only statistically; --resume needs the same N")
    w.add_argument("--pair-negatives", action="store_true",
                   help="draw K negatives for every pair, as word2vec.c (default: "
                   "K per centre word, shared by its window's pairs; CPU only)")


def _auto_or(text: str, kind):
    """``--lr`` or ``--steps``: ``"auto"``, or the number ``kind(text)``."""
    if text == "auto":
        return "auto"
    try:
        return kind(text)
    except ValueError:
        raise QwemError(f"expected a number or 'auto', got {text!r}") from None


def _or(value, default):
    """An option's value, or its default where it was not given."""
    return default if value is None else value


def _streams(args: argparse.Namespace) -> bool:
    """Does ``qwem train`` run word2vec itself (streaming over the corpus)?"""
    return args.loss == "sgns" and args.reweight == "word2vec" and not args.full_batch


def _run_info(args: argparse.Namespace) -> dict:
    """What a checkpoint of ``qwem train`` must match to be resumed: the corpus's
    content and the statistics' settings."""
    from ..corpus.data import corpus_identity

    return {"corpus": corpus_identity(corpus(args)), "scheme": args.scheme,
            "vocab_size": args.vocab_size, "window": args.window}


def run(args: argparse.Namespace) -> int:
    """Train in the run folder ``--out``, which no other process may write meanwhile."""
    from pathlib import Path

    from ..runtime._atomic import check_outputs
    from ..runtime.history import RUN_FILES, run_dir_lock

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise QwemError(f"--out {out} is a file; give a folder")
    if args.resume and not (out / RUN_FILES[0]).is_file():
        raise QwemError(f"--resume: there is no checkpoint to resume in {out} (no "
                        f"{RUN_FILES[0]}); to start a new run there, leave out "
                        "--resume")
    outputs = [("--out", out / name) for name in RUN_FILES]
    check_outputs(outputs, corpus_input(args, outputs))
    with run_dir_lock(out):          # one process at a time writes a run folder
        return _train_locked(args, out)


def _train_locked(args: argparse.Namespace, out) -> int:
    """``qwem train`` in its run folder ``out``, which this process has locked."""
    from ..runtime.history import check_run_dir

    # an old run is deleted (with --overwrite) only by the trainer, once the new
    # run's every input has been checked and it is about to write
    check_run_dir(out, resume=args.resume, overwrite=args.overwrite)
    if _streams(args):
        return _train_word2vec(args, out)
    return _train_qwem(args, out)


def _write_run(out, words: list, res, meta: dict) -> None:
    """DIR/embeddings.txt and DIR/config.json of a finished run."""
    from ..runtime._atomic import write_json
    from ..vectors import save_word2vec

    save_word2vec(out / "embeddings.txt", words, res.W)
    write_json(out / "config.json", meta, indent=2)


# ---- QWEM (or SGNS) on the corpus's statistics ------------------------------------

def _refuse_word2vec_only(args: argparse.Namespace) -> None:
    """The options of word2vec itself do not apply to a run on the statistics."""
    w2v_only = [flag for flag, given in (
        ("--untied", args.untied), ("--epochs", args.epochs is not None),
        ("--threads", args.threads is not None),
        ("--pair-negatives", args.pair_negatives),
        ("--negatives", args.negatives is not None),
        ("--subsample", args.subsample is not None),
        ("--neg-power", args.neg_power is not None)) if given]
    if w2v_only:
        raise QwemError(f"{' and '.join(w2v_only)} apply to word2vec only "
                        "(--loss sgns --reweight word2vec, without --full-batch)")


def _train_config(args: argparse.Namespace):
    """The :class:`~qwem_lib.train.TrainConfig` of the options."""
    from ..train import TrainConfig

    return TrainConfig(loss=args.loss, reweight=args.reweight, embed_dim=args.dim,
                       init_scale=1e-8 if args.init_scale is None
                       else args.init_scale, lr=_auto_or(args.lr, float),
                       steps=_auto_or(args.steps, int),
                       batch_size=None if args.full_batch else args.batch_size,
                       seed=args.seed, dtype=args.dtype or "float64",
                       n_checkpoints=_or(args.checkpoints, 50),
                       max_steps=args.max_steps,
                       basis="word" if args.word_basis else "auto")


def _train_qwem(args: argparse.Namespace, out) -> int:
    """Gradient descent (or SGD) on the expected loss, from M* and P_ij."""
    from ..train import train
    from ..vectors import check_words

    _refuse_word2vec_only(args)
    config = _train_config(args)
    log(f"qwem train: {config.loss} loss, {config.reweight} reweighting, "
        f"V={args.vocab_size}, d={args.dim}, "
        f"{'full batch' if config.batch_size is None else config.batch_size}")
    tokens, P, u, M, device = mstar_inputs(args, eigen=False)
    words = list(tokens.vocab.words)
    check_words(words, "qwem train")          # before the run, not at its end
    t0 = time.perf_counter()
    res = train(config, P, u, M_star=M, words=words if args.analogy else None,
                device=device, out_dir=out, resume=args.resume, overwrite=True,
                run_info=_run_info(args), progress=not args.quiet)
    log(f"  train         {time.perf_counter() - t0:8.2f} s  ({res.steps:,} steps, "
        f"lr {res.lr:.4g}, flow time {res.history.t[-1]:.4g})")
    meta = {"train": config.to_dict(), "corpus": corpus(args),
            "vocab_size": args.vocab_size, "window": args.window,
            "scheme": args.scheme, "lr": res.lr, "steps": res.steps,
            "dt_per_step": res.dt, "source": tokens.source}
    _write_run(out, words, res, meta)
    res.history.save(out / "history.json")
    log(f"  -> {out}/embeddings.txt, history.json, config.json")
    return 0


# ---- word2vec itself, streaming over the tokens ------------------------------------

def _refuse_for_word2vec(args: argparse.Namespace) -> None:
    """``--steps`` and ``--cluster`` do not apply to word2vec's streaming."""
    if args.steps != "auto":
        raise QwemError("word2vec runs for --epochs passes over the corpus; "
                        "--steps does not apply")
    if args.cluster is not None or args.cluster_timeout is not None:
        raise QwemError("--cluster counts a corpus's statistics (qwem embed, theory, "
                        "and train without word2vec's streaming); word2vec itself "
                        "trains in this process")


def _word2vec_config(args: argparse.Namespace):
    """The :class:`~qwem_lib.word2vec.Word2VecConfig` of the options, word2vec's
    defaults where they were not given."""
    from ..word2vec import Word2VecConfig

    return Word2VecConfig(
        embed_dim=args.dim, window=args.window, negatives=_or(args.negatives, 5),
        subsample=_or(args.subsample, 1e-4), neg_power=_or(args.neg_power, 0.75),
        epochs=_or(args.epochs, 1),
        lr=0.025 if args.lr == "auto" else _auto_or(args.lr, float),
        shared_negatives=not args.pair_negatives,
        batch_size=_or(args.batch_size, 64), tied=not args.untied,
        init_scale=args.init_scale, seed=args.seed,
        dtype=args.dtype or "float32")


def _announce_word2vec(args: argparse.Namespace, config, device) -> None:
    """The first line of a word2vec run: its model, sizes and threads or device."""
    from ..kernels.sgns_cpu import default_threads

    how = (f"{args.threads or default_threads()} thread(s)" if device.type == "cpu"
           else f"batch {config.batch_size}, device={device}")
    log(f"qwem train: word2vec (SGNS, {'tied' if config.tied else 'untied'}), "
        f"V={args.vocab_size}, d={args.dim}, window {config.window}, "
        f"k={config.negatives}, subsample {config.subsample:g}, "
        f"{config.epochs} epoch(s), {how}")


def _train_word2vec(args: argparse.Namespace, out) -> int:
    """``qwem train --loss sgns --reweight word2vec``: word2vec over the token
    stream."""
    from ..corpus.tokens import load_tokens
    from ..runtime.devices import default_device
    from ..vectors import check_words
    from ..word2vec import train_word2vec

    _refuse_for_word2vec(args)
    config = _word2vec_config(args)
    device = default_device(args.device)
    _announce_word2vec(args, config, device)
    t0 = time.perf_counter()
    tokens = load_tokens(corpus(args), args.vocab_size, scheme=args.scheme,
                         progress=not args.quiet)
    log(f"  read+tokenise {time.perf_counter() - t0:8.2f} s  "
        f"({len(tokens.ids):,} tokens in vocabulary)")
    words = list(tokens.vocab.words)
    check_words(words, "qwem train")          # before the run, not at its end
    t0 = time.perf_counter()
    res = train_word2vec(config, tokens.ids, args.vocab_size,
                         words=words if args.analogy else None, device=device,
                         threads=args.threads, out_dir=out, resume=args.resume,
                         overwrite=True, run_info=_run_info(args),
                         progress=not args.quiet,
                         n_checkpoints=_or(args.checkpoints, 30))
    seconds = time.perf_counter() - t0
    rate = "" if args.resume else \
        f"{config.epochs * len(tokens.ids) / seconds:,.0f} words/s, "
    log(f"  train         {seconds:8.2f} s  ({res.steps:,} steps, {rate}"
        f"final loss per pair {res.history.loss[-1]:.4f})")
    meta = {"train": config.to_dict(), "model": "word2vec", "corpus": corpus(args),
            "vocab_size": args.vocab_size, "window": args.window,
            "scheme": args.scheme, "lr": res.lr, "steps": res.steps,
            "dt_per_step": res.dt, "checkpoint_words": res.checkpoint_words,
            "engine": res.engine, "threads": res.threads, "source": tokens.source}
    _write_run(out, words, res, meta)
    log(f"  -> {out}/embeddings.txt, history.json, config.json")
    return 0
