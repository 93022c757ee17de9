"""Evaluate embeddings: word analogies, word similarity and eigen-feature words.

All functions take an embedding matrix ``W : (V, d)`` (numpy array or torch tensor, any
device and dtype) and ``words``, the vocabulary in row order.  Benchmark words are
lowercased, and a vocabulary word is found case-insensitively (the first row whose
lowercased word matches wins, as in gensim's ``case_insensitive=True``); our corpus
normaliser lowercases everything, so this only matters for foreign embeddings.

Two analogy protocols (the paper's benchmarks, arXiv 2502.09863, Fig. 3b):

* :func:`analogy_paper` -- the paper's: per category, the unique in-vocabulary word
  pairs ``(a, b)`` from the Google file; every ordered pair of distinct pairs
  ``(a, b), (a', b')`` is an analogy, answered by the word whose unit vector is nearest
  (cosine) to ``â' + b̂ - â``, excluding ``a, b, a'``.  At V = 10⁴ the paper gets 7614
  analogies in 14 categories.
* :func:`analogy_classic` -- Mikolov et al.'s: each question ``a b c d`` of the file
  whose four words are in the vocabulary, answered by 3CosAdd, ``b̂ - â + ĉ``,
  excluding ``a, b, c``.

Similarity (:func:`similarity`) is the Spearman correlation between cosine similarity
and human scores on the in-vocabulary pairs of MEN or WordSim-353.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import torch

from .corpus.data import eval_path
from .runtime._repr import short_repr
from .runtime.errors import QwemError
from .runtime.options import check_int

__all__ = [
    "AnalogyResult",
    "SimilarityResult",
    "load_analogies",
    "load_similarity",
    "analogy_pairs",
    "analogy_paper",
    "analogy_classic",
    "similarity",
    "feature_words",
    "parse_query",
    "neighbors",
    "SubspaceOverlap",
    "singular_basis",
    "subspace_overlap",
    "report",
    "SIMILARITY_BENCHMARKS",
]

Questions = Mapping[str, Sequence[tuple[str, str, str, str]]]
PathLike = Union[str, os.PathLike]

#: Short names of the bundled similarity benchmarks.
SIMILARITY_BENCHMARKS = ("men", "ws353", "ws353_sim", "ws353_rel")

# ----------------------------------------------------------------------------- results


def _num(x: float) -> float | None:
    """A float for JSON: NaN (no data) or inf becomes ``None``."""
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class AnalogyResult:
    """Accuracy of an analogy protocol.

    Attributes
    ----------
    accuracy : float
        ``correct / n`` over all categories (NaN when ``n == 0``).
    n : int
        Analogies answered (all four words in the vocabulary).
    correct : int
        Analogies whose prediction was the expected word.
    per_category : dict of str to (float, int)
        Category -> (accuracy, n); accuracy is NaN for a category with ``n == 0``.
    n_total : int
        Analogies the protocol would ask with every word in the vocabulary (classic:
        questions in the file; paper: sum over categories of M(M-1) for M unique
        pairs).
    protocol : str
        ``"paper"`` or ``"classic"``.
    """

    __repr__ = short_repr

    accuracy: float
    n: int
    correct: int
    per_category: dict[str, tuple[float, int]] = field(default_factory=dict)
    n_total: int = 0
    protocol: str = "paper"

    @property
    def coverage(self) -> float:
        """Fraction ``n / n_total`` of the analogies that could be asked."""
        return self.n / self.n_total if self.n_total else math.nan

    def to_dict(self) -> dict:
        """JSON-serialisable dict; NaN accuracies become ``None``."""
        return {
            "protocol": self.protocol,
            "accuracy": _num(self.accuracy),
            "n": int(self.n),
            "correct": int(self.correct),
            "n_total": int(self.n_total),
            "coverage": _num(self.coverage),
            "per_category": {
                c: {"accuracy": _num(acc), "n": int(n)}
                for c, (acc, n) in self.per_category.items()
            },
        }


@dataclass(frozen=True)
class SimilarityResult:
    """Spearman correlation of cosine similarity with human similarity scores.

    Attributes
    ----------
    spearman : float
        Spearman's rho over the in-vocabulary pairs (NaN when fewer than two pairs,
        or when either side is constant).
    n : int
        Pairs with both words in the vocabulary.
    n_total : int
        Pairs in the benchmark.
    """

    __repr__ = short_repr

    spearman: float
    n: int
    n_total: int

    def to_dict(self) -> dict:
        """JSON-serialisable dict; a NaN correlation becomes ``None``."""
        return {"spearman": _num(self.spearman), "n": int(self.n),
                "n_total": int(self.n_total)}


# ------------------------------------------------------------------------ benchmarks


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise QwemError(
            f"{what}: {path} does not exist (or is not a file); pass the path of an "
            "existing benchmark file, or None for the bundled one."
        )
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is fine
    except UnicodeDecodeError as exc:
        raise QwemError(
            f"{what}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "re-encode it as UTF-8."
        ) from None


def load_analogies(path: PathLike | None = None) -> dict[str, list[tuple[str, ...]]]:
    """Read a Google analogy file (Mikolov et al. 2013, ``questions-words.txt``).

    Parameters
    ----------
    path : str or PathLike, optional
        A file of ``: category`` header lines, each followed by questions ``a b c d``
        (read "a is to b as c is to d").  Default: the bundled file, 19,544 questions
        in 14 categories.

    Returns
    -------
    dict of str to list of (str, str, str, str)
        Category -> questions in file order, words lowercased.
    """
    path = eval_path("questions-words") if path is None else Path(path)
    out: dict[str, list[tuple[str, ...]]] = {}
    cat = None
    for n, line in enumerate(_read_lines(path, "load_analogies"), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            cat = line[1:].strip()
            if not cat:
                raise QwemError(f"load_analogies: {path} line {n} is a ':' header "
                                "without a category name; write ': name'.")
            out.setdefault(cat, [])
            continue
        fields = line.lower().split()
        if len(fields) != 4:
            raise QwemError(
                f"load_analogies: {path} line {n} has {len(fields)} words, expected 4 "
                f"('a b c d'): {line[:80]!r}; fix or remove the line."
            )
        if cat is None:
            raise QwemError(
                f"load_analogies: {path} line {n} is a question before any ': category'"
                " header; add a header line first."
            )
        out[cat].append(tuple(fields))
    if not any(out.values()):
        raise QwemError(f"load_analogies: {path} holds no questions; expected "
                        "': category' headers followed by lines 'a b c d'.")
    return out


def load_similarity(name_or_path: PathLike) -> list[tuple[str, str, float]]:
    """Read a word-similarity benchmark.

    Parameters
    ----------
    name_or_path : str or PathLike
        One of the bundled benchmarks -- ``"men"`` (MEN, 3,000 pairs, scores 0-50),
        ``"ws353"`` (WordSim-353, 353 pairs, 0-10), ``"ws353_sim"`` and ``"ws353_rel"``
        (its similarity and relatedness subsets, 203 and 252 pairs) -- or the path of a
        file with lines ``word1 word2 score`` (spaces or tabs; blank lines and lines
        starting with ``#`` are skipped).

    Returns
    -------
    list of (str, str, float)
        Pairs in file order, words lowercased.
    """
    if isinstance(name_or_path, str) and name_or_path in SIMILARITY_BENCHMARKS:
        path = eval_path(name_or_path)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise QwemError(
                f"load_similarity: {str(name_or_path)!r} is neither a bundled "
                f"benchmark ({', '.join(SIMILARITY_BENCHMARKS)}) nor an existing file; "
                "pass one of those names or a path."
            )
    pairs = []
    for n, line in enumerate(_read_lines(path, "load_similarity"), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = s.split()
        try:
            if len(fields) != 3:
                raise ValueError
            score = float(fields[2])
        except ValueError:
            raise QwemError(
                f"load_similarity: {path} line {n} should be 'word1 word2 score', got "
                f"{s[:80]!r}; fix or remove the line (comments start with '#')."
            ) from None
        pairs.append((fields[0].lower(), fields[1].lower(), score))
    if not pairs:
        raise QwemError(f"load_similarity: {path} holds no pairs; expected lines "
                        "'word1 word2 score'.")
    return pairs


def _questions(questions: Questions | PathLike | None) -> Questions:
    if questions is None or isinstance(questions, (str, os.PathLike)):
        return load_analogies(questions)
    return questions


def analogy_pairs(
    questions: Questions | PathLike | None = None, words: Sequence[str] | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Unique word pairs ``(a, b)`` of each analogy category (paper Secs. 4-5).

    Each question ``a b c d`` contributes the pairs ``(a, b)`` and ``(c, d)``.

    Parameters
    ----------
    questions : dict, str, PathLike or None
        Output of :func:`load_analogies`, a path to read, or None for the bundled file.
    words : sequence of str, optional
        If given, keep only pairs with both words in this vocabulary
        (case-insensitively).

    Returns
    -------
    dict of str to list of (str, str)
        Category -> unique lowercased pairs in order of first appearance.
    """
    qs = _questions(questions)
    index = None if words is None else _word_index(words)
    out = {}
    for cat, items in qs.items():
        seen: dict[tuple[str, str], None] = {}
        for q in items:
            a, b, c, d = (w.lower() for w in q)
            for p in ((a, b), (c, d)):
                if index is None or (p[0] in index and p[1] in index):
                    seen.setdefault(p, None)
        out[cat] = list(seen)
    return out


# ----------------------------------------------------------------------- computation


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check(W, words: Sequence[str], what: str) -> torch.Tensor:
    """Validate ``W`` against ``words``; return it as a tensor (dtype, device kept)."""
    if isinstance(W, torch.Tensor):
        T = W.detach()
    else:
        A = np.asarray(W)
        if not (np.issubdtype(A.dtype, np.floating)
                or np.issubdtype(A.dtype, np.integer)):
            raise QwemError(f"{what}: W has dtype {A.dtype}; pass a real (V, d) "
                            "matrix.")
        if not A.flags.writeable:  # torch.from_numpy warns on read-only arrays
            A = A.copy()
        T = torch.from_numpy(np.ascontiguousarray(A))
    if T.ndim != 2:
        raise QwemError(f"{what}: W must be a 2-D (V, d) matrix, got shape "
                        f"{tuple(T.shape)}; pass one row per word.")
    if T.shape[0] != len(words):
        raise QwemError(
            f"{what}: W has {T.shape[0]} rows but there are {len(words)} words; pass "
            "the vocabulary that W's rows follow (same length, same order)."
        )
    if T.is_complex():
        raise QwemError(f"{what}: W is complex; pass a real (V, d) matrix.")
    # A float64 sum is finite iff every entry is, barring overflow of huge float64
    # entries; only then run the full (slower) elementwise check.
    if T.numel() and not (bool(torch.isfinite(T.sum(dtype=torch.float64)))
                          or bool(torch.isfinite(T).all())):
        raise QwemError(
            f"{what}: W has NaN or inf entries; the embedding diverged or was not "
            "computed: fix the run (e.g. a smaller learning rate) before evaluating."
        )
    return T


def _unit_rows(T: torch.Tensor, device: torch.device,
               dtype: torch.dtype) -> torch.Tensor:
    """Rows of ``T`` scaled to unit norm; zero rows stay zero.

    Normalised in float64 so that tiny embeddings (small-init training starts near
    1e-12) neither underflow when squared nor lose precision; cast to ``dtype`` after.
    """
    X = T.to(device=device, dtype=torch.float64)
    norms = torch.linalg.vector_norm(X, dim=1, keepdim=True)
    return (X / norms.clamp_min(torch.finfo(torch.float64).tiny)).to(dtype)


def _word_index(words: Sequence[str]) -> dict[str, int]:
    """Lowercased word -> first row with that lowercased word."""
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        index.setdefault(w.lower(), i)
    return index


def _nearest(U: torch.Tensor, a, b, c, batch_size: int) -> np.ndarray:
    """3CosAdd: for each i, argmax over w not in {a, b, c} of cos(û_w, û_b - û_a + û_c).

    Parameters
    ----------
    U : (V, d) tensor
        Unit-normalised embeddings.
    a, b, c : (N,) int arrays
        Row ids.  The query need not be normalised: the argmax over w of
        ``û_w · q`` equals that of ``cos(û_w, q)``.

    Returns
    -------
    (N,) int64 ndarray
        Predicted row ids (ties: the lowest id).
    """
    N = len(a)
    out = np.empty(N, dtype=np.int64)
    ids = torch.from_numpy(np.stack([a, b, c], axis=1).astype(np.int64)).to(U.device)
    Ut = U.T.contiguous()
    B = max(1, min(batch_size, N))
    # Buffers reused across batches: fresh (B, V) tensors each time cost ~1.5x on CPU.
    q_buf = torch.empty(B, U.shape[1], dtype=U.dtype, device=U.device)
    s_buf = torch.empty(B, U.shape[0], dtype=U.dtype, device=U.device)
    for s in range(0, N, B):
        e = min(s + B, N)
        excl, q, scores = ids[s:e], q_buf[: e - s], s_buf[: e - s]
        torch.index_select(U, 0, excl[:, 1], out=q)
        q.sub_(U[excl[:, 0]]).add_(U[excl[:, 2]])
        torch.mm(q, Ut, out=scores)
        scores.scatter_(1, excl, -math.inf)
        if scores.device.type == "cpu":  # numpy's SIMD argmax is ~5x faster here
            out[s:e] = np.argmax(scores.numpy(), axis=1)
        else:
            out[s:e] = scores.argmax(dim=1).cpu().numpy()
    return out


def _tally(protocol: str, cats: list[str], cat_id: np.ndarray, hit: np.ndarray,
           n_total: int) -> AnalogyResult:
    n_cat = np.bincount(cat_id, minlength=len(cats))
    c_cat = np.bincount(cat_id, weights=hit, minlength=len(cats))
    per = {c: (float(c_cat[k] / n_cat[k]) if n_cat[k] else math.nan, int(n_cat[k]))
           for k, c in enumerate(cats)}
    n, correct = int(hit.size), int(hit.sum())
    return AnalogyResult(accuracy=correct / n if n else math.nan, n=n, correct=correct,
                         per_category=per, n_total=int(n_total), protocol=protocol)


def analogy_paper(W, words: Sequence[str],
                  questions: Questions | PathLike | None = None, *,
                  device=None, dtype: torch.dtype = torch.float32,
                  batch_size: int = 1024) -> AnalogyResult:
    """Analogy accuracy with the paper's protocol (arXiv 2502.09863, Fig. 3b).

    Per category, take the M unique pairs ``(a, b)`` with both words in the
    vocabulary (see :func:`analogy_pairs`).  Each of the M(M-1) ordered pairs of
    distinct pairs ``(a, b), (a', b')`` is one analogy: predict ``b'`` as the word
    whose unit embedding is nearest in cosine to ``â' + b̂ - â``, searching the whole
    vocabulary except ``a``, ``b`` and ``a'``.

    Parameters
    ----------
    W : (V, d) numpy array or torch tensor
    words : sequence of str, length V
    questions : dict, str, PathLike or None
        Output of :func:`load_analogies`, a path, or None for the bundled Google file.
    device : str or torch.device, optional
        Default: CUDA if available, else CPU.
    dtype : torch.dtype
        Precision of the nearest-neighbour search (float32 is plenty; float64 for
        exact comparisons in tests).
    batch_size : int
        Analogies scored per matrix product (memory ~ batch_size x V x 4 bytes).

    Returns
    -------
    AnalogyResult
        Overall accuracy is total correct / total analogies (not a mean over
        categories); ``n_total`` counts the analogies with a full vocabulary.
    """
    T = _check(W, words, "analogy_paper")
    qs = _questions(questions)
    index = _word_index(words)
    all_pairs = analogy_pairs(qs)
    cats = list(all_pairs)
    cols: list[list[np.ndarray]] = [[], [], [], [], []]  # a, b, a', b', category
    n_total = 0
    for k, cat in enumerate(cats):
        n_total += len(all_pairs[cat]) * (len(all_pairs[cat]) - 1)
        P = np.array([(index[x], index[y]) for x, y in all_pairs[cat]
                      if x in index and y in index], dtype=np.int64).reshape(-1, 2)
        m = len(P)
        i, j = np.nonzero(~np.eye(m, dtype=bool))  # ordered pairs of distinct pairs
        for col, x in zip(cols, (P[i, 0], P[i, 1], P[j, 0], P[j, 1],
                                 np.full(len(i), k, dtype=np.int64))):
            col.append(x)
    a, b, c, d, cat_id = (np.concatenate(x) if x else np.zeros(0, np.int64)
                          for x in cols)
    U = _unit_rows(T, _device(device), dtype)
    pred = _nearest(U, a, b, c, batch_size)
    return _tally("paper", cats, cat_id, pred == d, n_total)


def analogy_classic(W, words: Sequence[str],
                    questions: Questions | PathLike | None = None, *,
                    device=None, dtype: torch.dtype = torch.float32,
                    batch_size: int = 1024) -> AnalogyResult:
    """Analogy accuracy with Mikolov et al.'s protocol (3CosAdd on the question file).

    A question ``a b c d`` counts only if all four words are in the vocabulary; the
    prediction is the word whose unit embedding is nearest in cosine to
    ``b̂ - â + ĉ``, excluding ``a``, ``b`` and ``c``.

    Parameters
    ----------
    W, words, questions, device, dtype, batch_size
        As in :func:`analogy_paper`.

    Returns
    -------
    AnalogyResult
        ``n_total`` is the number of questions in the file; ``coverage = n / n_total``.
    """
    T = _check(W, words, "analogy_classic")
    qs = _questions(questions)
    index = _word_index(words)
    cats = list(qs)
    rows, cat_id = [], []
    n_total = 0
    for k, cat in enumerate(cats):
        for q in qs[cat]:
            n_total += 1
            ids = [index.get(w.lower()) for w in q]
            if None not in ids:
                rows.append(ids)
                cat_id.append(k)
    R = np.array(rows, dtype=np.int64).reshape(-1, 4)
    U = _unit_rows(T, _device(device), dtype)
    pred = _nearest(U, R[:, 0], R[:, 1], R[:, 2], batch_size)
    return _tally("classic", cats, np.array(cat_id, dtype=np.int64), pred == R[:, 3],
                  n_total)


def similarity(W, words: Sequence[str],
               pairs: Sequence[tuple[str, str, float]] | PathLike, *,
               device=None) -> SimilarityResult:
    """Spearman correlation between cosine similarity and human scores.

    Parameters
    ----------
    W : (V, d) numpy array or torch tensor
    words : sequence of str, length V
    pairs : list of (str, str, float), or a benchmark name or path
        Human-scored pairs (see :func:`load_similarity`, which is called for a name
        such as ``"men"`` or a path).
    device : str or torch.device, optional

    Returns
    -------
    SimilarityResult
        Spearman's rho (tied scores get their mean rank, as in
        ``scipy.stats.spearmanr``) over pairs with both words in the vocabulary.
        Cosines are computed in float64, so near-ties are ranked faithfully.
    """
    T = _check(W, words, "similarity")
    if isinstance(pairs, (str, os.PathLike)):
        pairs = load_similarity(pairs)
    index = _word_index(words)
    kept = [(index[x.lower()], index[y.lower()], float(s)) for x, y, s in pairs
            if x.lower() in index and y.lower() in index]
    n = len(kept)
    if n < 2:
        return SimilarityResult(math.nan, n, len(pairs))
    dev = _device(device)
    i = torch.tensor([k[0] for k in kept], device=T.device)
    j = torch.tensor([k[1] for k in kept], device=T.device)
    Ui, Uj = _unit_rows(T[i], dev, torch.float64), _unit_rows(T[j], dev, torch.float64)
    cos = (Ui * Uj).sum(dim=1).cpu().numpy()
    human = np.array([k[2] for k in kept])
    return SimilarityResult(_spearman(cos, human), n, len(pairs))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]  # first element of each run of equal values
    starts = np.r_[np.flatnonzero(new), len(x)]
    mean_rank = (starts[:-1] + starts[1:] + 1) / 2.0  # ranks start..stop-1, 1-based
    ranks = np.empty(len(x))
    ranks[order] = mean_rank[np.cumsum(new) - 1]
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of tie-averaged ranks.

    Same definition as ``scipy.stats.spearmanr`` (checked in the tests); written out
    here because importing ``scipy.stats`` takes seconds.  NaN if either side is
    constant.
    """
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / den if den > 0 else math.nan


def feature_words(W, words: Sequence[str], n_features: int = 10, n_words: int = 8, *,
                  device=None) -> list[list[str]]:
    """Words that load most on each of the first eigen-features (paper Sec. 3, Fig. 1).

    For the closed-form embeddings ``W = V_d S_d^{1/2}`` column ``k`` is the k-th
    eigenvector of ``M*`` (scaled), so the words with the largest component along it
    show what the feature "means" (in the paper's Wikipedia: celebrity biographies,
    government, geography).

    A word's score on feature ``k`` is the cosine between its embedding and the k-th
    axis, ``W[i, k] / ||W[i]||``.  An eigenvector's sign is arbitrary, so each column is
    first flipped to make the sum of the cubes of its entries (its skew) positive: the
    listed, largest side is then the heavier tail, where a feature's topic words sit.

    Parameters
    ----------
    W : (V, d) numpy array or torch tensor
    words : sequence of str, length V
    n_features : int
        Number of leading columns to describe (at most d are used).
    n_words : int
        Words per feature (at most V).
    device : str or torch.device, optional

    Returns
    -------
    list of list of str
        ``out[k]`` holds the ``n_words`` words with the largest signed score on
        feature ``k``, best first.
    """
    T = _check(W, words, "feature_words")
    if n_features < 0 or n_words < 0:
        raise QwemError("feature_words: n_features and n_words must be >= 0.")
    k_max, top = min(n_features, T.shape[1]), min(n_words, T.shape[0])
    dev = _device(device)
    U = _unit_rows(T, dev, torch.float64)[:, :k_max]
    X = T.to(device=dev, dtype=torch.float64)[:, :k_max]
    X = X / X.abs().amax(dim=0).clamp_min(torch.finfo(torch.float64).tiny)
    sign = torch.where((X ** 3).sum(dim=0) < 0, -1.0, 1.0).to(U)
    idx = torch.topk(U * sign, top, dim=0).indices.T.cpu().tolist()  # (k_max, top)
    return [[words[i] for i in col] for col in idx]


@dataclass(frozen=True, eq=False)
class SubspaceOverlap:
    """Result of :func:`subspace_overlap`.

    Attributes
    ----------
    matrix : (k, k) float64 numpy array
        ``matrix[a, b] = (u_a · v_b)^2``, the squared overlap of A's a-th and B's b-th
        basis vector (paper, Fig. 5).  Rows and columns each sum to at most 1.
    mean_cos2 : float
        ``||U^T V||_F^2 / k``: the mean squared cosine of the k principal angles
        between the two k-dimensional subspaces (1: the same subspace; about k/V for
        unrelated random subspaces).
    cos2 : (k,) float64 numpy array
        The squared cosines of the principal angles, descending.
    """

    __repr__ = short_repr

    matrix: np.ndarray
    mean_cos2: float
    cos2: np.ndarray


def singular_basis(W, k: int | None = None, *, basis: bool = False) -> torch.Tensor:
    """Orthonormal ``(V, k)`` basis of W's top-k left singular vectors (float64, CPU).

    With ``basis=True`` W's columns are taken as an orthonormal basis already, in
    their given order (e.g. eigenvectors of M* sorted by eigenvalue): an orthonormal
    matrix has all singular values 1, so an SVD would order its columns arbitrarily.
    """
    T = torch.as_tensor(W).detach().to(device="cpu", dtype=torch.float64)
    if T.ndim != 2:
        raise QwemError(f"expected a (V, d) matrix, got shape {tuple(T.shape)}")
    k = T.shape[1] if k is None else int(k)
    if not 1 <= k <= min(T.shape):
        raise QwemError(f"k = {k} must be between 1 and min(V, d) = {min(T.shape)}")
    if basis:
        return T[:, :k]
    return torch.linalg.svd(T, full_matrices=False).U[:, :k]


def subspace_overlap(A, B, k: int | None = None, *, a_basis: bool = False,
                     b_basis: bool = False) -> SubspaceOverlap:
    """How much two embeddings' top-k singular subspaces coincide (paper, Fig. 3b).

    Embeddings are compared through their left singular vectors (the directions in
    word space), which are invariant to any rotation ``W -> W R`` of the embedding
    dimensions (the loss's symmetry).  For the closed-form ``W = V_d Λ^{1/2}`` they
    are the eigenvectors of M*.

    Parameters
    ----------
    A, B : (V, d_A), (V, d_B) numpy arrays or torch tensors
        Rows in the same vocabulary order.
    k : int, optional
        Number of leading directions compared; default ``min(d_A, d_B)``.
    a_basis, b_basis : bool
        Take A (B) as an orthonormal basis as is (see :func:`singular_basis`).

    Returns
    -------
    SubspaceOverlap
    """
    A_t, B_t = torch.as_tensor(A), torch.as_tensor(B)
    if A_t.ndim != 2 or B_t.ndim != 2 or A_t.shape[0] != B_t.shape[0]:
        raise QwemError("subspace_overlap needs two (V, d) matrices over the same "
                        f"vocabulary, got {tuple(A_t.shape)} and {tuple(B_t.shape)}")
    k = min(A_t.shape[1], B_t.shape[1]) if k is None else int(k)
    U = singular_basis(A_t, k, basis=a_basis)
    Vb = singular_basis(B_t, k, basis=b_basis)
    C = U.T @ Vb
    cos = torch.linalg.svdvals(C).clamp(max=1.0)
    return SubspaceOverlap((C * C).numpy(), float((C * C).sum()) / k,
                           (cos * cos).numpy())


_OPERATOR = re.compile(r"\s+([+-])\s+")


def parse_query(text: str, words: Sequence[str] | None = None
                ) -> tuple[list[str], list[str]]:
    """Split a query such as ``"king - man + woman"`` into positive and negative words.

    Terms are joined by ``+`` or ``-`` with spaces around them, so hyphenated words
    (``well-known``) stay whole; a leading ``-`` negates the first term.  When
    ``words`` is given, a term that is not in it (case-insensitively) but splits on
    ``+``/``-`` into words that are (``king-man+woman``) is split.

    Returns
    -------
    positive, negative : lists of str
    """
    if not isinstance(text, str) or not text.strip():
        raise QwemError(f"empty query {text!r}; give a word or an expression such as "
                        "'king - man + woman'")
    text = text.strip()
    sign = "+"
    if text[0] in "+-" and len(text) > 1 and text[1].isspace():
        sign, text = text[0], text[1:].strip()
    parts = _OPERATOR.split(text)
    terms = [(sign, parts[0])] + list(zip(parts[1::2], parts[2::2]))
    index = None if words is None else _word_index(words)
    positive: list[str] = []
    negative: list[str] = []
    for sign, term in terms:
        pieces = [(sign, term)]
        if index is not None and term.lower() not in index and \
                re.search(r"\w[+-]\w", term):
            split = re.split(r"(?<=\w)([+-])(?=\w)", term)
            cand = [(sign, split[0])] + [
                ("+" if (op == "+") == (sign == "+") else "-", w)
                for op, w in zip(split[1::2], split[2::2])]
            if all(w.lower() in index for _, w in cand):
                pieces = cand
        for sg, w in pieces:
            if not w or w in "+-" or any(c.isspace() for c in w):
                raise QwemError(f"cannot read the query {text!r}: put spaces around "
                                "'+' and '-', e.g. 'king - man + woman'")
            (positive if sg == "+" else negative).append(w)
    if not positive:
        raise QwemError(f"the query {text!r} has no positive word; e.g. 'king - man + "
                        "woman'")
    return positive, negative


def neighbors(W, words: Sequence[str], query: str | Sequence[str], *,
              negative: Sequence[str] = (), k: int = 10, device=None
              ) -> list[tuple[str, float]]:
    """Nearest words to a word or an analogy expression (3CosAdd, cosine).

    The query vector is ``Σ û_p - Σ û_n`` over the positive and negative words' unit
    embeddings (for ``king - man + woman`` the analogy protocol's ``b - a + c``);
    every word is ranked by the cosine of its embedding with it, and the query words
    themselves are left out, as the analogy protocol does (gensim's ``most_similar``
    ranks the same way).

    Parameters
    ----------
    W : (V, d) numpy array or torch tensor
    words : sequence of str, length V
        Looked up case-insensitively (the first row of each lowercased word).
    query : str or sequence of str
        A word, an expression (see :func:`parse_query`), or the positive words.
    negative : sequence of str
        Extra negative words (with a list ``query``).
    k : int
        How many neighbours.

    Returns
    -------
    list of (word, cosine), best first
    """
    k = check_int(k, "k", "-k")
    if isinstance(query, str):
        pos, neg = parse_query(query, words)
    else:
        pos, neg = [str(w) for w in query], []
    neg = neg + [str(w) for w in negative]
    T = _check(W, words, "neighbors")
    index = _word_index(words)
    missing = [w for w in pos + neg if w.lower() not in index]
    if missing:
        raise QwemError(f"not in the vocabulary ({len(words):,} words): "
                        f"{', '.join(repr(w) for w in missing)}")
    dev = _device(device)
    U = _unit_rows(T, dev, torch.float64)
    rows_p = [index[w.lower()] for w in pos]
    rows_n = [index[w.lower()] for w in neg]
    q = U[rows_p].sum(0) - (U[rows_n].sum(0) if rows_n else 0.0)
    norm = torch.linalg.vector_norm(q)
    if not bool(norm > 0):
        raise QwemError("the query vector is zero (its words' embeddings cancel or "
                        "are zero); no direction to rank by")
    scores = U @ (q / norm)
    scores[rows_p + rows_n] = -math.inf
    k = min(int(k), len(words) - len(set(rows_p + rows_n)))
    top = torch.topk(scores, k) if k > 0 else None
    if top is None:
        return []
    return [(words[i], float(c)) for c, i in zip(top.values.tolist(),
                                                 top.indices.tolist())]


def report(W, words: Sequence[str], device=None, *, cache: bool = False) -> dict:
    """All benchmarks at once, as a JSON-serialisable dict (``qwem eval FILE``).

    Parameters
    ----------
    W : (V, d) numpy array or torch tensor
    words : sequence of str, length V
    device : str or torch.device, optional
    cache : bool
        Read the report from the cache (``"reports"``) and store it there, keyed by
        the content of W (its values, shape and dtype) and of the words, the device
        type, the bundled benchmark files and this module's code: the chapters'
        builds evaluate many stored embeddings again, and a report of V = 10⁵ words
        takes seconds.

    Returns
    -------
    dict
        Keys ``analogy_paper``, ``analogy_classic`` (see :meth:`AnalogyResult.to_dict`),
        ``men``, ``ws353``, ``ws353_sim``, ``ws353_rel`` (see
        :meth:`SimilarityResult.to_dict`), ``vocab_size`` and ``dim``.  Missing data
        (no in-vocabulary pairs) shows as ``None`` with ``n = 0``; an undefined score
        (a correlation over fewer than two pairs, or with constant cosines) is
        ``None`` too, so the dict holds no NaN or inf and
        ``json.dumps(..., allow_nan=False)`` works.

    Raises
    ------
    QwemError
        If W has NaN or inf entries, or does not match ``words``.
    """
    T = _check(W, words, "report")
    if not cache:
        return _report(T, words, device)
    import hashlib
    import json

    from .runtime import cache as cache_mod
    from .runtime.devices import default_device

    digest = hashlib.sha256(np.ascontiguousarray(T.detach().cpu().numpy()))
    digest.update(f"{tuple(T.shape)} {T.dtype}".encode())
    digest.update("\0".join(words).encode())
    files = ["questions-words", *SIMILARITY_BENCHMARKS]
    key = {"embeddings": digest.hexdigest(), "device": default_device(device).type,
           "benchmarks": {f: cache_mod.file_identity(eval_path(f)) for f in files}}
    out, _ = cache_mod.cached(
        "reports", key,
        lambda: {"json": np.array(json.dumps(_report(T, words, device)))},
        code=("qwem_lib.evaluate",))
    return json.loads(str(out["json"]))


def _report(T: torch.Tensor, words: Sequence[str], device) -> dict:
    """:func:`report` of the checked embeddings ``T``."""
    qs = load_analogies()
    out = {
        "analogy_paper": analogy_paper(T, words, qs, device=device).to_dict(),
        "analogy_classic": analogy_classic(T, words, qs, device=device).to_dict(),
    }
    for name in SIMILARITY_BENCHMARKS:
        out[name] = similarity(T, words, name, device=device).to_dict()
    out["vocab_size"], out["dim"] = int(T.shape[0]), int(T.shape[1])
    return out
