"""Options: the choices every configuration and command offers, and the one check of
a numeric or named option.

Every config (:class:`~qwem_lib.pipeline.EmbedConfig`,
:class:`~qwem_lib.train.TrainConfig`, :class:`~qwem_lib.word2vec.Word2VecConfig`),
the functions that take a number from a user (a threshold, a negative weight, a
learning rate) and the ``qwem`` command check their values here, so a bad value is
refused with the same line wherever it comes in:
``"embed_dim (--dim) must be an integer >= 1, got 0"``.

This module imports neither numpy nor torch: the command's parser takes its choices
from here and answers ``--help`` or a usage error without loading them.  Python and
numpy numbers are both accepted (numpy registers its scalar types with
:mod:`numbers`); bools and strings are not.
"""

from __future__ import annotations

import math
import numbers

from .errors import QwemError

__all__ = ["LOSSES", "REWEIGHTINGS", "METHODS", "ENGINES", "TRAIN_ENGINES",
           "WEIGHTINGS", "SCHEMES", "CORPUS_FORMATS", "VECTOR_FORMATS", "DTYPES",
           "MAX_SEED", "check_int", "check_real", "check_seed", "check_choice",
           "parse_int", "parse_real", "parse_any_int"]

# ---- the choices, each re-exported by the module that owns it ---------------------
#: Losses (:mod:`qwem_lib.losses`): word2vec's logistic loss and its quartic
#: approximation (paper, Sec. 3).
LOSSES = ("qwem", "sgns")
#: Pair reweightings (:func:`qwem_lib.losses.reweighting`; paper, Setting 3.1).
REWEIGHTINGS = ("setting31", "uniform", "word2vec")
#: Closed-form targets (:mod:`qwem_lib.pipeline`): M* (paper, Thm. 1), PPMI, PMI.
METHODS = ("mstar", "ppmi", "pmi")
#: Closed-form statistics: dense V x V, or sparse counts and a matrix-free solver.
ENGINES = ("auto", "dense", "sparse")
#: word2vec's engines (:mod:`qwem_lib.word2vec`): the compiled kernel or torch.
TRAIN_ENGINES = ("auto", "kernel", "torch")
#: Pair weight by separation s in a window of L words: L + 1 - s, or 1.
WEIGHTINGS = ("linear", "uniform")
#: Text normalisation (:mod:`qwem_lib.corpus.text`): ``paper`` (lowercase, every run
#: of characters outside a-z becomes one space), ``text8`` (as ``paper``, but each
#: digit first becomes its English name, as Mahoney's wikifil.pl does), ``none``
#: (split on whitespace only).
SCHEMES = ("paper", "text8", "none")
#: Corpus file formats (:mod:`qwem_lib.corpus.data`).
CORPUS_FORMATS = ("plain", "wikiextractor", "mediawiki")
#: Embedding file formats (:mod:`qwem_lib.vectors`).
VECTOR_FORMATS = ("auto", "text", "binary", "glove")
#: Floating-point types a trainer runs in.
DTYPES = ("float64", "float32")

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed and numpy take seeds up to here


def _label(name: str, flag: str | None) -> str:
    return name if flag is None else f"{name} ({flag})"


def _shown(v) -> str:
    """``repr`` of a value, numpy scalars shown as the Python number they hold."""
    if hasattr(v, "item") and not isinstance(v, str) and getattr(v, "ndim", 1) == 0:
        v = v.item()
    return repr(v)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    # numpy's bool_ is no numbers.Real; a Python bool is, and is refused
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value, name: str, flag: str | None = None, *, lo: int = 1,
              hi: int | None = None, auto: bool = False, none: str | None = None
              ) -> int:
    """``value`` as a Python int if it is an integer in ``[lo, hi]``.

    numpy integers are accepted; bools, floats and strings are not.  ``auto``/``none``
    only add the alternatives (``"auto"``, None) to the message.

    Raises
    ------
    QwemError
        ``"embed_dim (--dim) must be an integer >= 1, got 0"``.
    """
    if _is_int(value) and lo <= value and (hi is None or value <= hi):
        return int(value)
    what = (f"an integer >= {lo}" if hi is None else
            f"an integer from {lo:,} to {hi:,}")
    if auto:
        what += " or 'auto'"
    if none:
        what += f" or None ({none})"
    raise QwemError(f"{_label(name, flag)} must be {what}, got {_shown(value)}")


def check_real(value, name: str, flag: str | None = None, *, gt: float | None = None,
               ge: float | None = None, lt: float | None = None, auto: bool = False,
               why: str | None = None) -> float:
    """``value`` as a Python float if it is a finite number in the range given.

    Python and numpy integers and floats are accepted; bools, strings, NaN and
    infinities are not.

    Raises
    ------
    QwemError
        ``"init_scale (--init-scale) must be a finite number > 0, got 0.0"``.
    """
    if _is_real(value):
        v = float(value)
        if (math.isfinite(v) and (gt is None or v > gt) and (ge is None or v >= ge)
                and (lt is None or v < lt)):
            return v
    bounds = [f"> {gt:g}" if gt is not None else None,
              f">= {ge:g}" if ge is not None else None,
              f"< {lt:g}" if lt is not None else None]
    bounds = " and ".join(b for b in bounds if b)
    what = "a finite number" + (f" {bounds}" if bounds else "")
    if auto:
        what += " or 'auto'"
    tail = f" ({why})" if why else ""
    raise QwemError(f"{_label(name, flag)} must be {what}, got {_shown(value)}{tail}")


def check_seed(value, flag: str | None = "--seed") -> int:
    """A seed: an integer from 0 to 2**63 - 1 (numpy integers accepted)."""
    return check_int(value, "seed", flag, lo=0, hi=MAX_SEED)


def check_choice(value, name: str, choices: tuple, flag: str | None = None) -> str:
    """``value`` if it is one of ``choices``, else one line listing them."""
    if isinstance(value, str) and value in choices:
        return value
    raise QwemError(f"unknown {_label(name, flag)} {_shown(value)}; use one of "
                    f"{', '.join(choices)}")


def parse_int(text: str, name: str, flag: str | None = None, **bounds) -> int:
    """An integer typed on a command line, checked by :func:`check_int`."""
    try:
        value = int(text)
    except ValueError:
        value = text  # refused below, shown as typed
    return check_int(value, name, flag, **bounds)


def parse_real(text: str, name: str, flag: str | None = None, **bounds) -> float:
    """A number typed on a command line, checked by :func:`check_real` (so ``nan``
    and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = text
    return check_real(value, name, flag, **bounds)


def parse_any_int(text: str, name: str, flag: str | None = None) -> int:
    """An integer of any sign and size typed on a command line, for an option whose
    range is checked where the value is used (by :func:`check_int`)."""
    try:
        return int(text)
    except ValueError:
        raise QwemError(f"{_label(name, flag)} must be an integer, got {text!r}"
                        ) from None
