"""Words to ids: the tokeniser (numpy word keys, no Python loop per token), the
vocabulary of the top V words, and a corpus as in-vocabulary token ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Iterable, Iterator

import numpy as np

from ..runtime.errors import QwemError
from .text import _word_bounds

_AZ_SPACE = b"abcdefghijklmnopqrstuvwxyz "
_BYTE_MASK = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], np.uint64)
_IDX_BITS = 23  # word positions packed below a 40-bit key in one int64 sort key
_LONGER = (1 << 40) - 1  # 5-bit groups of 31: no word of <= 8 letters a-z has it


def _pack5(x: np.ndarray) -> np.ndarray:
    """Pack the low 5 bits of the 8 bytes of each uint64 into its low 40 bits.

    For letters a-z (0x61-0x7a) the low 5 bits are 1-26, never 0, so the packed
    value of a word of at most 8 letters (later bytes zeroed) is unique.  Works in
    place: ``x`` (a fresh uint64 array) is overwritten and returned.
    """
    for keep, move, shift in ((0x001F001F001F001F, 0x03E003E003E003E0, 3),
                              (0x000003FF000003FF, 0x000FFC00000FFC00, 6),
                              (0x00000000000FFFFF, 0x000000FFFFF00000, 12)):
        high = x >> shift
        high &= move
        x &= keep
        x |= high
    return x


def _py_key(word: bytes) -> int:
    """The integer key of a word of at most 12 letters a-z (as in ``_Tokeniser``)."""
    return sum((c & 31) << (5 * i) for i, c in enumerate(word))


def _is_az(word: bytes) -> bool:
    return word.isalpha() and word.islower()  # bytes methods: ASCII only


class _Tokeniser:
    """Map words to global ids (in order of first appearance) and collect them.

    Words of at most 12 letters a-z are identified by an exact integer key (5 bits per
    letter) computed for a whole buffer at once with numpy; unique keys are found by
    sorting, so the Python dictionary is consulted once per distinct word per
    buffer, not once per token.  Longer or non a-z words go through a dictionary of
    bytes.
    """

    def __init__(self):
        self.words: list[bytes] = []
        self._by_key: dict[int, int] = {}
        self._by_bytes: dict[bytes, int] = {}
        self._parts: list[np.ndarray] = []

    def _new_id(self, word: bytes, key: int | None = None) -> int:
        new = len(self.words)
        self.words.append(word)
        if key is None and len(word) <= 12 and _is_az(word):
            key = _py_key(word)
        if key is None:
            self._by_bytes[word] = new
        else:
            self._by_key[key] = new
        return new

    def _word_id(self, word: bytes) -> int:
        if len(word) <= 12 and _is_az(word):
            found = self._by_key.get(_py_key(word))
        else:
            found = self._by_bytes.get(word)
        return self._new_id(word) if found is None else found

    def _ids_of_keys(self, keys: np.ndarray, first: np.ndarray, buf: bytes,
                     starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Global ids of distinct keys; ``first``: a word index holding each key.

        The placeholder key ``_LONGER`` gets id -1 (its words are mapped later).
        """
        keys_list = keys.tolist()
        found = np.fromiter(map(self._by_key.get, keys_list, repeat(-1)), np.int32,
                            len(keys_list))
        missing = np.flatnonzero(found < 0)
        if len(missing) and keys_list[missing[-1]] == _LONGER:
            missing = missing[:-1]  # keys are sorted: the placeholder comes last
        if len(missing):
            at = first[missing]
            found[missing] = [
                self._new_id(buf[s:e], keys_list[j]) for j, s, e in
                zip(missing.tolist(), starts[at].tolist(), ends[at].tolist())]
        return found

    def add(self, buf: bytes) -> None:
        """Add the words of a buffer whose only separator is the space."""
        if buf.translate(None, _AZ_SPACE):  # not only a-z: the general (slow) path
            words = buf.split()
            local = {w: self._word_id(w) for w in set(words)}
            self._parts.append(np.fromiter(map(local.__getitem__, words), np.int32,
                                           len(words)))
            return
        starts, ends = _word_bounds(buf)
        if not len(starts):
            return
        length = ends - starts
        padded = buf + bytes(16)
        # eight bytes starting at every offset (an unaligned, overlapping view)
        at = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
        first8 = _pack5(at[starts] & _BYTE_MASK[np.minimum(length, 8)])
        long = np.flatnonzero(length > 8)
        low_of_long = first8[long]
        key = first8.view(np.int64)
        key[long] = _LONGER  # one group for all longer words, mapped below
        ids = np.empty(len(starts), np.int32)
        step = 1 << _IDX_BITS
        for lo in range(0, len(key), step):  # one slice unless > 8M words
            part = key[lo:lo + step]
            packed = np.sort((part << _IDX_BITS) | np.arange(len(part)))
            skey, sidx = packed >> _IDX_BITS, packed & (step - 1)
            head = np.empty(len(packed), bool)
            head[0] = True
            np.not_equal(skey[1:], skey[:-1], out=head[1:])
            heads = np.flatnonzero(head)
            gid = self._ids_of_keys(skey[heads], sidx[heads] + lo, buf, starts, ends)
            ids[sidx + lo] = gid[np.cumsum(head) - 1]

        mid = long[length[long] <= 12]  # 9-12 letters: a 60-bit key
        if len(mid):
            high = _pack5(at[starts[mid] + 8] & _BYTE_MASK[length[mid] - 8])
            high <<= 40
            high |= low_of_long[length[long] <= 12]
            uniq, first, inverse = np.unique(high.view(np.int64), return_index=True,
                                             return_inverse=True)
            gid = self._ids_of_keys(uniq, mid[first], buf, starts, ends)
            ids[mid] = gid[inverse.ravel()]

        for i in long[length[long] > 12].tolist():
            ids[i] = self._word_id(buf[starts[i]:ends[i]])
        self._parts.append(ids)

    def result(self) -> tuple[list[bytes], np.ndarray]:
        """(distinct words, token ids (N,) int32); the tokeniser is emptied."""
        parts, self._parts = self._parts, []
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        return self.words, ids


def _canonical_order(words: list, counts: np.ndarray) -> np.ndarray:
    """Indices sorting words by count (descending), then word (ascending)."""
    n = len(words)
    alphabetical = np.empty(n, np.int64)
    alphabetical[sorted(range(n), key=words.__getitem__)] = np.arange(n)
    return np.lexsort((alphabetical, -np.asarray(counts)))


# --------------------------------------------------------------------------------------
# Vocabulary and token data


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The V most frequent words, most frequent first (ties: alphabetical).

    Attributes
    ----------
    words : tuple of str, (V,)
        Word of each id.
    counts : ndarray of int64, (V,)
        Corpus count of each word (before any removal).
    word_to_id : dict
        ``word -> id``; built on construction.
    """

    words: tuple[str, ...]
    counts: np.ndarray
    word_to_id: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        words = tuple(self.words)
        counts = np.asarray(self.counts, dtype=np.int64)
        if counts.shape != (len(words),):
            raise ValueError(f"counts has shape {counts.shape}, expected "
                             f"({len(words)},)")
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "word_to_id", {w: i for i, w in enumerate(words)})
        if len(self.word_to_id) != len(words):
            raise ValueError("the vocabulary has repeated words")

    @classmethod
    def from_counts(cls, counts: dict[str, int] | Iterable[tuple[str, int]],
                    vocab_size: int) -> "Vocabulary":
        """Top-``vocab_size`` words by count (descending), ties by word (ascending)."""
        items = list(dict(counts).items())
        if vocab_size < 1 or vocab_size > len(items):
            raise QwemError(f"vocab_size must be between 1 and {len(items)} (the "
                            f"number of distinct words), not {vocab_size}")
        words = [w for w, _ in items]
        cnt = np.array([c for _, c in items], dtype=np.int64)
        top = _canonical_order(words, cnt)[:vocab_size]
        return cls(tuple(words[i] for i in top), cnt[top])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.word_to_id

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.words == other.words and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self.words[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"Vocabulary(V={len(self)}, words=({head}{more}))"

    def id(self, word: str) -> int:
        """Id of ``word``; ``KeyError`` if it is out of vocabulary."""
        try:
            return self.word_to_id[word]
        except KeyError:
            raise KeyError(f"{word!r} is not in the vocabulary (V={len(self)})") \
                from None

    def ids(self, words: Iterable[str]) -> np.ndarray:
        """Ids of several words, ``(n,)`` int64; ``KeyError`` for an unknown one."""
        return np.array([self.id(w) for w in words], dtype=np.int64)

    @property
    def unigram(self) -> np.ndarray:
        """Counts normalised to sum 1, ``(V,)`` float64 (over in-vocabulary tokens)."""
        return self.counts / self.counts.sum()


@dataclass(frozen=True, eq=False)
class TokenData:
    """A corpus as in-vocabulary token ids (paper's setup).

    Attributes
    ----------
    ids : ndarray of int32, (N,)
        Token ids in corpus order, out-of-vocabulary tokens removed (as in the paper,
        before any windowing, so words on either side of a removed token become
        neighbours).
    vocab : Vocabulary
        ``V`` words; ``ids`` index into it.
    n_tokens : int
        Tokens before removing out-of-vocabulary ones.
    source : str
        What was read: path, format, scheme, article filter.
    """

    ids: np.ndarray
    vocab: Vocabulary
    n_tokens: int
    source: str

    @property
    def n_kept(self) -> int:
        """In-vocabulary tokens, ``len(ids)``."""
        return len(self.ids)

    @property
    def coverage(self) -> float:
        """Fraction of tokens that are in the vocabulary (the paper: 87% at V=10^4)."""
        return len(self.ids) / self.n_tokens if self.n_tokens else 0.0

    def __repr__(self) -> str:
        return (f"TokenData({len(self.ids):,} of {self.n_tokens:,} tokens kept, "
                f"V={len(self.vocab)}, source={self.source!r})")
