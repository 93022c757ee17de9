"""Read and write embeddings in word2vec's text format.

The format is the one written by the original ``word2vec`` C tool and read by gensim's
``KeyedVectors.load_word2vec_format(path, binary=False)``: a header line ``V D``, then
one line per word, ``word x_1 x_2 ... x_D``, separated by single spaces.  Rows keep the
vocabulary order, so row ``i`` of the embedding matrix ``W`` (the paper's ``W``, Sec. 2)
is the ``i``-th word after the header.

Numbers are written in scientific notation with 9 significant digits, which is exact
for float32 and keeps squared norms of float64 rows and columns to about 1e-8 relative.
Scientific notation (rather than fixed point) matters here: small-initialisation runs
(the paper's Fig. 2 starts at scale 1e-12) have tiny embeddings early in training.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from qwem_lib._atomic import atomic_path
from qwem_lib.errors import QwemError

__all__ = ["save_word2vec", "load_word2vec"]

_DIGITS = 9  # significant digits written per number
_BLOCK_ROWS = 4096  # rows formatted at once; bounds memory at large V
# Longest mark first: UTF-32-LE's FF FE 00 00 starts with UTF-16-LE's FF FE.
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32LE"), (codecs.BOM_UTF32_BE, "UTF-32BE"),
              (codecs.BOM_UTF16_LE, "UTF-16LE"), (codecs.BOM_UTF16_BE, "UTF-16BE"))


def _as_numpy(W) -> np.ndarray:
    """Return ``W`` (numpy array or torch tensor, any device/dtype) as a numpy array."""
    if hasattr(W, "detach") and hasattr(W, "cpu"):  # a torch tensor; no torch import
        # float64 holds every torch float exactly (bfloat16 has no numpy dtype)
        return W.detach().cpu().double().numpy()
    return np.asarray(W)


def _mantissa(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``round(a / 10**e * 10**(_DIGITS - 1))`` as int64, safe for subnormal ``a``.

    ``10.0**e`` underflows below e = -308, so very small values are scaled up by 1e300
    first (exactly representable steps are not needed: the result is rounded).
    """
    shift = np.where(e < -290, 300, 0)
    scaled = a * np.power(10.0, shift.astype(np.float64))
    q = scaled / np.power(10.0, (e + shift).astype(np.float64))
    return np.rint(q * 10.0 ** (_DIGITS - 1)).astype(np.int64)


def _format_block(word_bytes: np.ndarray, X: np.ndarray) -> bytes:
    """Format rows of ``X`` as word2vec text lines, entirely with array operations.

    Every number is laid out in a fixed-width byte record ``-d.dddddddde+EEE`` plus a
    separator, with NUL bytes standing in for the characters a number does not need
    (a ``+`` sign, unused exponent digits); the NULs are dropped at the end.  This is
    about 20x faster than ``'%.9g' % x`` per number.

    Parameters
    ----------
    word_bytes : (B, L) uint8
        UTF-8 bytes of each row's word, right-padded with NUL.
    X : (B, D) float64
        Finite values.
    """
    B, D = X.shape
    a = np.abs(X)
    nonzero = a > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(nonzero, np.floor(np.log10(np.where(nonzero, a, 1.0))), 0.0)
    e = e.astype(np.int64)
    # The mantissa a / 10**e should lie in [1, 10); log10 can be off by one ulp near
    # powers of ten and rounding can give 10.00000000, so fix both cases up.
    m = _mantissa(a, e)
    low = nonzero & (m < 10 ** (_DIGITS - 1))
    e[low] -= 1
    m[low] = _mantissa(a[low], e[low])
    high = m >= 10 ** _DIGITS
    e[high] += 1
    m[high] = _mantissa(a[high], e[high])
    m = np.minimum(m, 10 ** _DIGITS - 1)
    exp_digits = 3 if np.abs(e).max() >= 100 else 2  # e+05, or e-105 when needed

    # Build the records plane by plane (one byte position at a time, contiguous),
    # then transpose once to (B, D, width).
    width = 1 + 1 + 1 + (_DIGITS - 1) + 1 + 1 + exp_digits + 1
    planes = np.empty((width, B, D), dtype=np.uint8)
    planes[0] = np.where(X < 0, ord("-"), 0)
    r = m.astype(np.uint32)  # < 10**9 fits
    ten = np.uint32(10)
    for k in range(_DIGITS - 1, -1, -1):  # mantissa digits, least significant first
        q = r // ten
        planes[1 + k + (k > 0)] = (r - q * ten).astype(np.uint8) + ord("0")
        r = q
    planes[2] = ord(".")
    p = 2 + _DIGITS
    planes[p] = ord("e")
    planes[p + 1] = np.where(e < 0, ord("-"), ord("+"))
    r = np.abs(e).astype(np.uint32)
    for k in range(exp_digits - 1, -1, -1):
        q = r // ten
        planes[p + 2 + k] = (r - q * ten).astype(np.uint8) + ord("0")
        r = q
    planes[-1] = ord(" ")
    planes[-1, :, -1] = ord("\n")
    rec = planes.transpose(1, 2, 0)

    line = np.concatenate(
        [word_bytes, np.full((B, 1), ord(" "), np.uint8), rec.reshape(B, D * width)],
        axis=1,
    )
    flat = line.ravel()
    return flat[flat != 0].tobytes()


def save_word2vec(path: str | os.PathLike, words: Sequence[str], W) -> Path:
    """Write embeddings in word2vec text format (gensim ``binary=False`` compatible).

    Parameters
    ----------
    path : str or PathLike
        Destination file; written atomically (a partial file is never left behind).
    words : sequence of str, length V
        The vocabulary in row order; no word may be empty or contain whitespace.
    W : (V, D) numpy array or torch tensor
        Embedding matrix, any float dtype and device; values must be finite.

    Returns
    -------
    Path
        The path written.

    Notes
    -----
    Numbers are written with 9 significant digits in scientific notation
    (``-1.23456789e-05``), enough to restore float32 exactly and float64 to ~5e-10
    relative.  10,000 x 200 takes a few tenths of a second.
    """
    X = _as_numpy(W)
    if X.ndim != 2:
        raise QwemError(
            f"save_word2vec: W must be a 2-D (V, D) matrix, got shape {X.shape}; "
            "pass one row per word."
        )
    words = list(words)
    if len(words) != X.shape[0]:
        raise QwemError(
            f"save_word2vec: {len(words)} words but W has {X.shape[0]} rows; pass "
            "exactly one word per row, in row order."
        )
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise QwemError(
            f"save_word2vec: W has dtype {X.dtype}; pass a real-valued float matrix."
        )
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise QwemError(
            f"save_word2vec: W has non-finite values (NaN or inf), first at row "
            f"{bad[0]} ({words[bad[0]]!r}), column {bad[1]}; the embedding diverged "
            "or was not computed: fix the run before saving."
        )
    for i, w in enumerate(words):
        if not isinstance(w, str) or not w or len(w.split()) != 1 or w != w.strip() \
                or "\x00" in w:
            raise QwemError(
                f"save_word2vec: word {i} ({w!r}) is empty or contains whitespace or "
                "NUL, which the word2vec text format cannot store; normalise the "
                "vocabulary (e.g. replace spaces with '_')."
            )
    V, D = X.shape
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(f"{V} {D}\n".encode())
        for start in range(0, V, _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, V)
            enc = [w.encode("utf-8") for w in words[start:stop]]
            wb = np.array(enc, dtype=f"S{max(len(b) for b in enc)}")
            wb = wb.view(np.uint8).reshape(stop - start, -1)
            if D == 0:  # degenerate but legal: lines hold only the word
                f.write(b"".join(b + b"\n" for b in enc))
                continue
            f.write(_format_block(wb, X[start:stop]))
    return path


def load_word2vec(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read embeddings written in word2vec text format.

    Parameters
    ----------
    path : str or PathLike
        A UTF-8 text file (a byte-order mark at the top is fine): header ``V D``, then
        V lines ``word x_1 ... x_D`` (spaces or tabs; a trailing space, as the original
        C tool writes, is fine).

    Returns
    -------
    words : list of str, length V
        The words in file (row) order.
    W : (V, D) float64 ndarray
        Finite values.

    Raises
    ------
    QwemError
        If the path is missing or a folder, the file is empty, binary or not UTF-8,
        has a malformed header, a line with the wrong number of fields, a non-numeric
        or non-finite value (NaN, inf, or beyond float64's range), or fewer/more lines
        than the header says.  The message names the file and the line.
    """
    path = Path(path)
    if path.is_dir():
        raise QwemError(
            f"load_word2vec: {path} is a folder; give the embeddings file (word2vec "
            "text format) inside it."
        )
    if not path.is_file():
        raise QwemError(
            f"load_word2vec: {path} does not exist (or is not a file); check the path, "
            "or write it first with qwem_lib.vectors.save_word2vec."
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QwemError(f"load_word2vec: cannot read {path} ({exc.strerror}); check "
                        "its permissions.") from None
    wide = next((name for bom, name in _WIDE_BOMS if raw.startswith(bom)), None)
    if wide is not None:
        raise QwemError(
            f"load_word2vec: {path} is {wide} text (it starts with a {wide} byte-order "
            f"mark); convert it to UTF-8, e.g. `iconv -f {wide} -t UTF-8`."
        )
    try:
        text = raw.decode("utf-8-sig")  # drops a UTF-8 byte-order mark
    except UnicodeDecodeError as exc:
        raise QwemError(
            f"load_word2vec: {path} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); if it is word2vec's binary format, convert it to text "
            "(gensim: save_word2vec_format(..., binary=False))."
        ) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise QwemError(
            f"load_word2vec: {path} is empty; expected a header line 'V D' followed "
            "by one line per word."
        )
    head = lines[0].split()
    try:
        if len(head) != 2:
            raise ValueError
        V, D = int(head[0]), int(head[1])
        if V < 0 or D < 0:
            raise ValueError
    except ValueError:
        raise QwemError(
            f"load_word2vec: {path} line 1 should be the header 'V D' (two "
            f"non-negative integers), got {lines[0][:80]!r}; this is not a word2vec "
            "text file, or its header is missing."
        ) from None
    body = lines[1:]
    if len(body) != V:
        raise QwemError(
            f"load_word2vec: {path} header says {V} words but the file has "
            f"{len(body)} lines after it; the file is truncated or corrupt: write it "
            "again."
        )
    words: list[str] = []
    rests: list[str] = []
    for line in body:
        parts = line.split(maxsplit=1)
        words.append(parts[0] if parts else "")
        rests.append(parts[1] if len(parts) == 2 else "")
    W = None
    if V * D:
        # numpy's C reader; it checks that every row has the same number of columns
        try:
            W = np.loadtxt(rests, dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            W = None
    elif not any(rests):  # D = 0: lines hold only the word
        W = np.zeros((V, D))
    if W is None or W.shape != (V, D) or not all(words):
        _raise_first_bad_line(path, body, D)
    finite = np.isfinite(W).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        col = int(np.flatnonzero(~np.isfinite(W[row]))[0])
        raise QwemError(
            f"load_word2vec: {path} line {row + 2} ({words[row]!r}) has a non-finite "
            f"value {body[row].split()[col + 1]!r} (NaN, inf, or beyond float64's "
            "range); the embedding diverged or was not computed: fix the run and "
            "write the file again."
        )
    return words, W


# The numbers numpy's reader accepts (ASCII digits, no '_'), for naming a bad one.
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)",
                     re.ASCII | re.IGNORECASE)


def _raise_first_bad_line(path: Path, body: list[str], D: int) -> None:
    """Scan the vector lines in Python to name the first malformed one (slow path)."""
    for n, line in enumerate(body, start=2):
        fields = line.split()
        if len(fields) != D + 1:
            raise QwemError(
                f"load_word2vec: {path} line {n} has {len(fields)} fields, expected "
                f"{D + 1} (a word and {D} numbers, as the header says); the file is "
                "corrupt or a word contains a space."
            )
        for tok in fields[1:]:
            if not _NUMBER.fullmatch(tok):
                raise QwemError(
                    f"load_word2vec: {path} line {n} has a non-numeric value {tok!r}; "
                    "the file is corrupt: write it again."
                )
    raise QwemError(f"load_word2vec: could not parse the numbers in {path}; the file "
                    "is corrupt: write it again.")
