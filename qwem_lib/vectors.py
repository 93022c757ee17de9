"""Read and write embeddings in the formats people exchange them in.

:func:`save_word2vec` writes word2vec's text format, as the original ``word2vec`` C
tool does and gensim's ``KeyedVectors.load_word2vec_format(path, binary=False)`` reads:
a header line ``V D``, then one line per word, ``word x_1 x_2 ... x_D``, separated by
single spaces.  Rows keep the vocabulary order, so row ``i`` of the embedding matrix
``W`` (the paper's ``W``, Sec. 2) is the ``i``-th word after the header.

:func:`load_word2vec` reads that format, word2vec's binary format and GloVe's
header-less text, gzip/bz2/xz-compressed or not, telling them apart by content.
:func:`to_keyedvectors` and :func:`from_keyedvectors` bridge to gensim.

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

from .runtime._atomic import atomic_path
from .runtime.errors import QwemError
from .runtime.options import VECTOR_FORMATS

__all__ = ["check_words", "save_word2vec", "load_word2vec", "to_keyedvectors",
           "from_keyedvectors", "FORMATS"]

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


def _checked(W, words: Sequence[str], what: str) -> tuple[np.ndarray, list[str]]:
    """``W`` as a finite float64 (V, D) array and ``words`` as a list of V words that
    the word2vec formats can hold; else a one-line :class:`QwemError`."""
    X = _as_numpy(W)
    if X.ndim != 2:
        raise QwemError(
            f"{what}: W must be a 2-D (V, D) matrix, got shape {X.shape}; "
            "pass one row per word."
        )
    words = list(words)
    if len(words) != X.shape[0]:
        raise QwemError(
            f"{what}: {len(words)} words but W has {X.shape[0]} rows; pass "
            "exactly one word per row, in row order."
        )
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise QwemError(
            f"{what}: W has dtype {X.dtype}; pass a real-valued float matrix."
        )
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise QwemError(
            f"{what}: W has non-finite values (NaN or inf), first at row "
            f"{bad[0]} ({words[bad[0]]!r}), column {bad[1]}; the embedding diverged "
            "or was not computed: fix the run before saving."
        )
    check_words(words, what)
    return X, words


# The word2vec formats separate a word from its numbers by an ASCII space, and lines
# by a newline: a word may hold any other character (U+00A0, U+2028, ... included;
# gensim and word2vec.c read them back), and must be valid UTF-8.
_ASCII_SPACE = re.compile(r"[ \t\n\r\x0b\x0c\x00]")
_FIELD_SEP = re.compile(r"[ \t\x0b\x0c\r]+")
_FIELD = re.compile(r"[^ \t\x0b\x0c\r]+")
_BLANKS = " \t\x0b\x0c\r"  # what separates fields; str.split() would also split at
# U+00A0, U+2028, U+3000, U+0085, \x1c-\x1f ..., which a word may hold


def _fields(line: str) -> list[str]:
    """``line`` split at ASCII blanks only (never ``str.split()``: see above)."""
    return _FIELD.findall(line)


def check_words(words: Sequence[str], what: str = "save_word2vec") -> None:
    """Refuse, in one line, a word the word2vec formats cannot store: empty, with
    an ASCII whitespace character or NUL, or not encodable as UTF-8 (a stray byte
    kept by ``scheme="none"``).  Commands call it before their work, not after."""
    for i, w in enumerate(words):
        bad = (not isinstance(w, str) or not w or _ASCII_SPACE.search(w))
        if not bad:
            try:
                w.encode("utf-8")
            except UnicodeEncodeError:
                raise QwemError(
                    f"{what}: word {i} ({w!r}) holds bytes that are not UTF-8 (kept "
                    "by --scheme none from a corpus with stray bytes), which the "
                    "word2vec formats cannot store; clean the corpus (e.g. `iconv -c "
                    "-f UTF-8 -t UTF-8`) or use --scheme paper or text8.") from None
        if bad:
            raise QwemError(
                f"{what}: word {i} ({w!r}) is empty or contains an ASCII whitespace "
                "character or NUL, which the word2vec text format cannot store; "
                "normalise the vocabulary (e.g. replace spaces with '_').")
    dup = _first_duplicate(words)
    if dup is not None:
        raise QwemError(f"{what}: the word {words[dup[0]]!r} appears twice (rows "
                        f"{dup[0]} and {dup[1]}); a vocabulary holds each word once")


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
    X, words = _checked(W, words, "save_word2vec")
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


FORMATS = VECTOR_FORMATS
_COMPRESSION = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_HEADER = re.compile(rb"[ \t]*(\d+)[ \t]+(\d+)[ \t]*\r?")
_FIRST_WORD = re.compile(rb"[\r\n]*[^ \t\r\n]+[ \t]")


def _read_raw(path: Path, what: str) -> bytes:
    """The file's bytes, decompressed when its content is gzip, bz2 or xz."""
    if path.is_dir():
        raise QwemError(
            f"{what}: {path} is a folder; give the embeddings file (word2vec text or "
            "binary, or GloVe text) inside it."
        )
    if not path.is_file():
        raise QwemError(
            f"{what}: {path} does not exist (or is not a file); check the path, "
            "or write it first with qwem_lib.vectors.save_word2vec."
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QwemError(f"{what}: cannot read {path} ({exc.strerror}); check "
                        "its permissions.") from None
    kind = next((name for magic, name in _COMPRESSION if raw.startswith(magic)), None)
    if kind is None:
        return raw
    import bz2
    import gzip
    import lzma
    import zlib

    try:
        if kind == "gzip":
            return gzip.decompress(raw)
        if kind == "bz2":
            return bz2.decompress(raw)
        return lzma.decompress(raw)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as exc:
        raise QwemError(
            f"{what}: {path} is {kind}-compressed but cannot be decompressed ({exc}); "
            "the file is truncated or corrupt: download or write it again."
        ) from None


def _is_number(token: str) -> bool:
    return _NUMBER.fullmatch(token) is not None


def _detect(raw: bytes) -> str:
    """``"text"``, ``"binary"`` or ``"glove"``, from the first one or two lines."""
    nl = raw.find(b"\n")
    first = raw if nl < 0 else raw[:nl]
    first = first.removeprefix(codecs.BOM_UTF8)
    m = _HEADER.fullmatch(first)
    if m:
        # After the header, text holds a word and numbers up to the line's end;
        # binary holds a word, a space and raw float32 bytes, which (all but
        # never) hold a control character or bytes that are not UTF-8.
        D = int(m.group(2))
        body = raw[nl + 1:] if nl >= 0 else b""
        word = _FIRST_WORD.match(body)
        if D == 0 or word is None:
            return "text"
        end = body.find(b"\n", word.end())
        rest = body[word.end():len(body) if end < 0 else end]
        try:
            printable = rest.strip() and rest.decode("utf-8").replace(
                "\t", " ").replace("\r", " ").isprintable()
        except UnicodeDecodeError:
            printable = False
        return "text" if printable else "binary"
    try:
        fields = _fields(first.decode("utf-8"))
    except UnicodeDecodeError:
        fields = []
    # a word (which may hold spaces in GloVe: ". . .") followed by numbers
    if len(fields) >= 2 and not _is_number(fields[0]) and _is_number(fields[-1]):
        return "glove"
    return "text"  # reported as a bad header by the text reader


def load_word2vec(path: str | os.PathLike, format: str = "auto"
                  ) -> tuple[list[str], np.ndarray]:
    """Read embeddings: word2vec text or binary, or GloVe text, compressed or not.

    Parameters
    ----------
    path : str or PathLike
        The file.  Its content decides how it is read (not its name):

        - gzip, bz2 or xz compression is undone first;
        - ``"text"``: word2vec's text format, a header ``V D`` then V lines
          ``word x_1 ... x_D`` (spaces or tabs; a trailing space, as the C tool
          writes, is fine; UTF-8, a byte-order mark at the top is fine);
        - ``"binary"``: word2vec's binary format (the C tool's ``-binary 1``,
          gensim's ``save_word2vec_format(binary=True)``): the header, then per
          word ``word`` + space + D little-endian float32 (+ an optional newline);
        - ``"glove"``: GloVe's header-less text, ``word x_1 ... x_D`` per line (a
          word may contain spaces: the last D fields are the numbers); every line
          holds as many numbers as the first (else the first that does not is
          named), and word2vec text (a first line ``V D`` of two integers, then a
          word and D numbers) is refused.

        Fields are separated by ASCII spaces or tabs only: a word may hold U+00A0,
        U+2028, U+3000 and any other character that is not ASCII whitespace or NUL
        (what :func:`check_words`, the writer's check, allows).
    format : {"auto", "text", "binary", "glove"}
        ``"auto"`` (default) detects the format from the first lines: a header
        followed by a line of D + 1 numbers-after-a-word is text, a header followed
        by anything else is binary, a word followed by numbers is GloVe (a first
        word that is itself a number is taken for a broken header: force
        ``"glove"`` for such a file).

    Returns
    -------
    words : list of str, length V
        The words in file (row) order.
    W : (V, D) float64 ndarray
        Finite values (float32 values of binary files are exact in float64).

    Raises
    ------
    QwemError
        If the path is missing or a folder, the file is empty, not UTF-8 text (for
        the text formats), has a malformed header, a line with the wrong number of
        fields, a non-numeric or non-finite value (NaN, inf, or beyond float64's
        range), fewer/more words than the header says, or a truncated binary
        record.  The message names the file and the line (or binary record).
    """
    what = "load_word2vec"
    if format not in FORMATS:
        raise QwemError(f"{what}: unknown format {format!r}; use one of "
                        f"{', '.join(FORMATS)}")
    path = Path(path)
    raw = _read_raw(path, what)
    if format == "auto":
        format = _detect(raw)
    if format == "binary":
        return _load_binary(path, raw, what)
    return _load_text(path, raw, what, glove=format == "glove")


def _load_binary(path: Path, raw: bytes, what: str) -> tuple[list[str], np.ndarray]:
    nl = raw.find(b"\n")
    m = _HEADER.fullmatch(raw[:max(nl, 0)].removeprefix(codecs.BOM_UTF8))
    if nl < 0 or not m:
        raise QwemError(
            f"{what}: {path} should start with the header line 'V D' of word2vec's "
            f"binary format, got {raw[:40]!r}; this is not a word2vec binary file.")
    V, D = int(m.group(1)), int(m.group(2))
    # each word takes at least 2 + 4 D bytes (a letter, a space, D float32s): a
    # header that announces more than the file can hold is refused before W is made
    if V * (2 + 4 * D) > len(raw) - nl - 1:
        raise QwemError(
            f"{what}: {path} (word2vec binary) announces {V:,} words of {D:,} "
            f"dimensions, at least {V * (2 + 4 * D):,} bytes, but holds "
            f"{len(raw) - nl - 1:,} after its header; the header or the file is "
            "corrupt.")
    words: list[str] = []
    W = np.empty((V, D), dtype=np.float64)
    pos, n = nl + 1, len(raw)
    width = 4 * D
    for i in range(V):
        while pos < n and raw[pos] in b"\n\r":  # the C tool ends records with \n
            pos += 1
        sp = raw.find(b" ", pos, pos + 10_000)
        if sp < 0 or sp + 1 + width > n:
            got = "ends" if pos >= n else "is truncated or corrupt"
            raise QwemError(
                f"{what}: {path} (word2vec binary) {got} at word {i + 1} of the "
                f"{V:,} its header announces; write or download it again.")
        try:
            word = raw[pos:sp].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QwemError(
                f"{what}: {path} (word2vec binary) word {i + 1} is not UTF-8 "
                f"({exc.reason}): {raw[pos:sp][:40]!r}; the file is corrupt or this is "
                "not word2vec's binary format (force one with format=/--format)."
            ) from None
        if not word or _ASCII_SPACE.search(word):
            raise QwemError(
                f"{what}: {path} (word2vec binary) word {i + 1} ({word[:40]!r}) is "
                "empty or holds whitespace; the file is corrupt or not word2vec's "
                "binary format (force one with format=/--format).")
        words.append(word)
        W[i] = np.frombuffer(raw, dtype="<f4", count=D, offset=sp + 1)
        pos = sp + 1 + width
    if raw[pos:].strip():
        raise QwemError(
            f"{what}: {path} (word2vec binary) has {len(raw) - pos:,} bytes after the "
            f"{V:,} words its header announces; the header or the file is corrupt.")
    _check_finite(path, what, words, W, lambda row, col: repr(float(W[row, col])),
                  lambda row: f"word {row + 1}")
    return words, W


def _text_lines(path: Path, raw: bytes, what: str) -> list[str]:
    """The lines of a text file of vectors, trailing blank lines dropped.

    UTF-16/32 text (by its byte-order mark), bytes that are not UTF-8 and a file
    without a non-blank line are refused; a UTF-8 byte-order mark is dropped.
    """
    wide = next((name for bom, name in _WIDE_BOMS if raw.startswith(bom)), None)
    if wide is not None:
        raise QwemError(
            f"{what}: {path} is {wide} text (it starts with a {wide} byte-order "
            f"mark); convert it to UTF-8, e.g. `iconv -f {wide} -t UTF-8`."
        )
    try:
        text = raw.decode("utf-8-sig")  # drops a UTF-8 byte-order mark
    except UnicodeDecodeError as exc:
        raise QwemError(
            f"{what}: {path} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); if it is word2vec's binary format, read it with "
            "format='binary' (--format binary)."
        ) from None
    # lines end at "\n" only (U+2028 and the like may be inside a word)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip(_BLANKS):
        lines.pop()
    if not lines:
        raise QwemError(
            f"{what}: {path} is empty; expected a header line 'V D' followed "
            "by one line per word (or GloVe's lines 'word x_1 ... x_D')."
        )
    return lines


def _glove_shape(path: Path, lines: list[str], what: str) -> tuple[int, int]:
    """V and D of GloVe text: one word per line, D from the first line's numbers
    (word2vec text, and a first line without numbers, refused)."""
    _refuse_word2vec_header(path, lines, what)
    V, D = len(lines), _glove_values(_fields(lines[0]))
    if D < 1:
        raise QwemError(
            f"{what}: {path} line 1 should be a word followed by numbers "
            f"(GloVe), got {lines[0][:80]!r}.")
    return V, D


def _text_shape(path: Path, lines: list[str], what: str) -> tuple[int, int]:
    """V and D from word2vec text's header line 'V D', which must announce as many
    words as there are lines after it."""
    head = _fields(lines[0])
    try:
        if len(head) != 2:
            raise ValueError
        V, D = int(head[0]), int(head[1])
        if V < 0 or D < 0:
            raise ValueError
    except ValueError:
        raise QwemError(
            f"{what}: {path} line 1 should be the header 'V D' (two "
            f"non-negative integers), got {lines[0][:80]!r}; this is not a "
            "word2vec text file, or its header is missing (for GloVe's "
            "header-less text use format='glove', --format glove)."
        ) from None
    if len(lines) - 1 != V:
        raise QwemError(
            f"{what}: {path} header says {V} words but the file has "
            f"{len(lines) - 1} lines after it; the file is truncated or corrupt: "
            "write it again."
        )
    return V, D


def _split_words(body: list[str]) -> tuple[list[str], list[str]]:
    """Each line's first field (its word, "" for a blank line) and the rest of the
    line after it."""
    words: list[str] = []
    rests: list[str] = []
    for line in body:
        parts = _FIELD_SEP.split(line.lstrip(_BLANKS), maxsplit=1)
        words.append(parts[0] if parts else "")
        rests.append(parts[1] if len(parts) == 2 else "")
    return words, rests


def _text_values(path: Path, body: list[str], words: list[str], rests: list[str],
                 V: int, D: int, glove: bool) -> np.ndarray | None:
    """The (V, D) values of the lines, or None where a line does not parse.

    GloVe words may hold spaces: where the fast reader fails, the numbers are each
    line's last D fields, and ``words`` is corrected in place.
    """
    W = None
    if V * D:
        # numpy's C reader; it checks that every row has the same number of columns
        try:
            W = np.loadtxt(rests, dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            W = None
        if W is None and glove:  # GloVe words may hold spaces: numbers are the last D
            W = _glove_rows(path, body, D, words)
    elif not any(rests):  # D = 0: lines hold only the word
        W = np.zeros((V, D))
    return W


def _load_text(path: Path, raw: bytes, what: str, *, glove: bool
               ) -> tuple[list[str], np.ndarray]:
    """Words and vectors of word2vec text, or of GloVe's header-less text
    (``glove``); see :func:`load_word2vec`."""
    lines = _text_lines(path, raw, what)
    if glove:
        body, first_line = lines, 1
        V, D = _glove_shape(path, lines, what)
    else:
        body, first_line = lines[1:], 2
        V, D = _text_shape(path, lines, what)
    words, rests = _split_words(body)
    W = _text_values(path, body, words, rests, V, D, glove)
    if W is None or W.shape != (V, D) or not all(words):
        _raise_first_bad_line(path, body, D, first_line)

    def token(row, col):
        return repr(_fields(body[row])[col - D])

    _check_finite(path, what, words, W, token,
                  lambda row: f"line {row + first_line}")
    return words, W


def _glove_values(fields: list[str]) -> int:
    """How many numbers a GloVe line's fields hold: its trailing numeric fields (a
    word may hold spaces, ". . ."), all but the first when every field is a number
    (the word "1990")."""
    n = len(fields)
    while n and _is_number(fields[n - 1]):
        n -= 1
    return len(fields) - max(n, 1)


def _refuse_word2vec_header(path: Path, lines: list[str], what: str) -> None:
    """Refuse GloVe reading of word2vec text: a first line of exactly two integers
    ``V d`` followed by a line of a word and d numbers is word2vec's header."""
    head = _fields(lines[0])
    if len(head) != 2 or not all(f.isascii() and f.isdigit() for f in head) \
            or len(lines) < 2:
        return
    if _glove_values(_fields(lines[1])) == int(head[1]):
        raise QwemError(
            f"{what}: {path} looks like word2vec text, not GloVe: line 1 "
            f"{lines[0].strip(_BLANKS)[:40]!r} is word2vec's header 'V D' and the "
            f"next line holds a word and {int(head[1])} numbers; read it with "
            "format='text' or 'auto' (--format text or auto, not glove).")


def _glove_rows(path: Path, body: list[str], D: int, words: list[str]
                ) -> np.ndarray:
    """Rows of a GloVe file whose words may contain spaces (slow path); every row
    must hold D numbers, as the first does, else the first that does not is named."""
    rows = []
    for i, line in enumerate(body):
        spans = list(_FIELD.finditer(line))
        n = _glove_values([m.group() for m in spans])
        if n != D:
            got = (f"{n} number(s) after its word" if spans else "no word")
            raise QwemError(
                f"load_word2vec: {path} line {i + 1} has {len(spans)} fields, "
                f"expected {D + 1} (a word and {D} numbers, as line 1 has; {got}); "
                "GloVe rows must all have the same number of values: the file is "
                "corrupt or truncated, or is not GloVe text (force the format with "
                "format=/--format).")
        words[i] = line[:spans[-D].start()].strip(_BLANKS)
        rows.append([m.group() for m in spans[-D:]])
    return np.array(rows, dtype=np.float64).reshape(len(body), D)


def _first_duplicate(words: Sequence[str]) -> tuple[int, int] | None:
    """(first index, second index) of the first word that appears twice, or None."""
    seen: dict = {}
    for i, w in enumerate(words):
        if w in seen:
            return seen[w], i
        seen[w] = i
    return None


def _check_finite(path: Path, what: str, words: list[str], W: np.ndarray,
                  token, where) -> None:
    dup = _first_duplicate(words)
    if dup is not None:
        raise QwemError(
            f"{what}: {path} has the word {words[dup[0]]!r} twice ({where(dup[0])} and "
            f"{where(dup[1])}); a vocabulary holds each word once: the file is corrupt "
            "or was merged from two.")
    finite = np.isfinite(W).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        col = int(np.flatnonzero(~np.isfinite(W[row]))[0])
        raise QwemError(
            f"{what}: {path} {where(row)} ({words[row]!r}) has a non-finite "
            f"value {token(row, col)} (NaN, inf, or beyond float64's "
            "range); the embedding diverged or was not computed: fix the run and "
            "write the file again."
        )


# The numbers numpy's reader accepts (ASCII digits, no '_'), for naming a bad one.
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)",
                     re.ASCII | re.IGNORECASE)


def _raise_first_bad_line(path: Path, body: list[str], D: int, start: int) -> None:
    """Scan the vector lines in Python to name the first malformed one (slow path)."""
    for n, line in enumerate(body, start=start):
        fields = _fields(line)
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


def to_keyedvectors(words: Sequence[str], W):
    """Embeddings as gensim's ``KeyedVectors`` (float32, as gensim stores them).

    ``kv = to_keyedvectors(res.words, res.W)`` gives gensim's queries
    (``kv.most_similar``, ``kv.evaluate_word_analogies`` ...) on our embeddings.

    Parameters
    ----------
    words : sequence of str, length V
    W : (V, D) numpy array or torch tensor

    Returns
    -------
    gensim.models.KeyedVectors
    """
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        raise QwemError("to_keyedvectors needs gensim; install it with `pip install "
                        "gensim`") from None
    X, words = _checked(W, words, "to_keyedvectors")  # unique words, as gensim keys
    kv = KeyedVectors(vector_size=X.shape[1])
    kv.add_vectors(words, X.astype(np.float32))
    # Counts falling with the row, so gensim's save_word2vec_format (which sorts by
    # count) keeps our row order and does not warn about a missing count.
    kv.allocate_vecattrs(["count"], [np.int64])
    kv.expandos["count"][:] = np.arange(len(words), 0, -1)
    return kv


def from_keyedvectors(kv) -> tuple[list[str], np.ndarray]:
    """``(words, W)`` of gensim ``KeyedVectors`` (``W`` float64, rows in key order)."""
    return [str(w) for w in kv.index_to_key], np.asarray(kv.vectors, dtype=np.float64)
