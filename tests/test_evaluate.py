"""Tests for qwem_lib.evaluate: analogies, similarity, eigen-feature words."""

import json
import math

import numpy as np
import pytest
import torch

from qwem_lib.evaluate import (AnalogyResult, analogy_classic, analogy_pairs,
                               analogy_paper, feature_words, load_analogies,
                               load_similarity, report, similarity)
from qwem_lib.runtime.errors import QwemError


def _write(tmp_path, text, name="q.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _unit(X):
    X = np.asarray(X, dtype=np.float64)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n > 0, n, 1.0)


# ------------------------------------------------------------- hand-made analogies


def _family_embedding():
    """Unit vectors (c * concept axis, s * gender): woman - man + king = queen."""
    c, s = math.sqrt(1 - 0.2**2), 0.2
    rows = {
        "man": [c, 0, 0, -s], "woman": [c, 0, 0, s],
        "king": [0, c, 0, -s], "queen": [0, c, 0, s],
        "boy": [0, 0, c, -s], "girl": [0, 0, c, s],
        "female": [0, 0, 0, 1], "apple": [-1, -1, -1, 0], "void": [0, 0, 0, 0],
    }
    return list(rows), np.array(list(rows.values()))


def test_hand_made_analogies_all_correct(tmp_path):
    words, W = _family_embedding()
    q = _write(tmp_path, ": family\nman woman king queen\nKing Queen boy girl\n")
    res = analogy_paper(W, words, q, dtype=torch.float64)
    # pairs (man,woman), (king,queen), (boy,girl): 3 * 2 ordered analogies
    assert (res.n, res.correct, res.accuracy) == (6, 6, 1.0)
    cl = analogy_classic(W, words, q)
    assert (cl.n, cl.correct, cl.n_total, cl.coverage) == (2, 2, 2, 1.0)


def _angles_embedding():
    """2-D unit vectors at given angles (degrees); woman is man rotated by 10°."""
    deg = {"man": 0, "woman": 10, "king": 90, "queen": 100, "fish": 45, "rock": 200}
    words = list(deg)
    W = np.array([[math.cos(math.radians(a)), math.sin(math.radians(a))]
                  for a in deg.values()])
    return words, W


def test_exclusion_rule_matters(tmp_path):
    words, W = _angles_embedding()
    idx = {w: i for i, w in enumerate(words)}
    U = _unit(W)
    q = U[idx["woman"]] - U[idx["man"]] + U[idx["king"]]
    # without the exclusion the nearest word is an input (king, at 0.74 degrees)
    assert words[int(np.argmax(U @ q))] == "king"
    f = _write(tmp_path, ": family\nman woman king queen\n")
    cl = analogy_classic(W, words, f)
    assert (cl.n, cl.correct) == (1, 1)  # queen, once a, b, c are excluded
    # paper protocol: (man,woman)->(king,queen) and (king,queen)->(man,woman)
    pa = analogy_paper(W, words, f)
    assert (pa.n, pa.correct) == (2, 2)


def test_shared_answer_is_excluded(tmp_path):
    # pairs (man, woman) and (king, woman): the answer b' = b is excluded, so wrong
    words, W = _angles_embedding()
    f = _write(tmp_path, ": odd\nman woman king woman\n")
    pa = analogy_paper(W, words, f)
    assert (pa.n, pa.correct) == (2, 0)


# ---------------------------------------------------------------- counting rules


QUESTIONS = """\
: one
a b c d
A B e f
c d e f
a b x y
: two
g h i j
i j g h
: three
p q zz yy
: four
xx yy zz ww
"""
VOCAB = list("abcdefghijpq") + ["extra"]


def test_paper_count_is_sum_of_m_times_m_minus_1(tmp_path):
    f = _write(tmp_path, QUESTIONS)
    pairs = analogy_pairs(f, VOCAB)
    assert pairs == {"one": [("a", "b"), ("c", "d"), ("e", "f")],
                     "two": [("g", "h"), ("i", "j")], "three": [("p", "q")],
                     "four": []}
    W = np.random.default_rng(0).standard_normal((len(VOCAB), 4))
    res = analogy_paper(W, VOCAB, f)
    m = {"one": 3, "two": 2, "three": 1, "four": 0}
    assert res.n == sum(k * (k - 1) for k in m.values()) == 8
    assert {c: n for c, (_, n) in res.per_category.items()} == {
        c: k * (k - 1) for c, k in m.items()}
    # with a full vocabulary: one has 4 pairs, two 2, three 2, four 2
    assert res.n_total == 12 + 2 + 2 + 2
    assert math.isnan(res.per_category["four"][0])
    assert res.correct == sum(round(a * n) for a, n in res.per_category.values() if n)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["per_category"]["four"] == {"accuracy": None, "n": 0}


def test_classic_coverage(tmp_path):
    f = _write(tmp_path, QUESTIONS)
    W = np.random.default_rng(0).standard_normal((len(VOCAB), 4))
    res = analogy_classic(W, VOCAB, f)
    assert res.n_total == 8
    assert res.n == 3 + 2  # one: 3 of 4 questions; two: both; three, four: none
    assert res.coverage == pytest.approx(5 / 8)
    assert {c: n for c, (_, n) in res.per_category.items()} == {
        "one": 3, "two": 2, "three": 0, "four": 0}


def test_no_analogies_in_vocabulary(tmp_path):
    f = _write(tmp_path, QUESTIONS)
    W = np.ones((2, 3))
    for fn in (analogy_paper, analogy_classic):
        res = fn(W, ["zzz", "yyy"], f)
        assert res.n == 0 and res.correct == 0 and math.isnan(res.accuracy)
        assert res.to_dict()["accuracy"] is None


# ------------------------------------------------- independent brute-force reference


def _brute_force_paper(W, words, questions):
    """The paper's protocol with plain Python loops (Fig. 3b)."""
    U = _unit(W)
    index = {}
    for i, w in enumerate(words):
        index.setdefault(w.lower(), i)
    per = {}
    for cat, qs in questions.items():
        pairs = []
        for a, b, c, d in qs:
            for p in ((a, b), (c, d)):
                if p[0] in index and p[1] in index and p not in pairs:
                    pairs.append(p)
        n = hits = 0
        for p1 in pairs:
            for p2 in pairs:
                if p1 == p2:
                    continue
                a, b, a2, b2 = (index[w] for w in (*p1, *p2))
                q = U[a2] + U[b] - U[a]
                best, best_cos = None, -np.inf
                for w in range(len(words)):
                    if w in (a, b, a2):
                        continue
                    cos = U[w] @ q / np.linalg.norm(q)
                    if cos > best_cos:
                        best, best_cos = w, cos
                n += 1
                hits += best == b2
        per[cat] = (hits, n)
    return per


def _brute_force_classic(W, words, questions):
    U = _unit(W)
    index = {w: i for i, w in enumerate(words)}
    per = {}
    for cat, qs in questions.items():
        n = hits = 0
        for q in qs:
            if not all(w in index for w in q):
                continue
            a, b, c, d = (index[w] for w in q)
            scores = U @ (U[b] - U[a] + U[c])
            scores[[a, b, c]] = -np.inf
            n += 1
            hits += int(np.argmax(scores)) == d
        per[cat] = (hits, n)
    return per


def _random_case(seed=0, V=60, d=5):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(V)]
    W = rng.standard_normal((V, d))
    W[:, 0] += 1.0  # a common direction, as in real embeddings
    pool = words + ["oov1", "oov2", "oov3"]
    questions = {}
    for cat, n_pairs in (("alpha", 6), ("beta", 4), ("gamma", 9)):
        ids = rng.choice(len(pool), size=(n_pairs, 2), replace=False)
        pairs = [(pool[i], pool[j]) for i, j in ids]
        offset = rng.standard_normal(d)  # the category's "task vector", plus noise
        for i, j in ids:
            if i < V and j < V:
                W[j] = W[i] + 1.5 * offset + 0.6 * rng.standard_normal(d)
        qs = []
        for _ in range(12):
            i, j = rng.choice(n_pairs, size=2, replace=False)
            qs.append((*pairs[i], *pairs[j]))
        questions[cat] = qs
    return W, words, questions


def _hits(res):
    """Category -> (correct, n) from an AnalogyResult."""
    return {c: (round(a * n) if n else 0, n) for c, (a, n) in res.per_category.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_paper_protocol_matches_brute_force(seed):
    W, words, questions = _random_case(seed)
    ref = _brute_force_paper(W, words, questions)
    for dtype in (torch.float64, torch.float32):
        res = analogy_paper(W, words, questions, dtype=dtype, batch_size=7)
        assert _hits(res) == ref
    assert res.n == sum(n for _, n in ref.values()) > 0
    assert res.correct == sum(h for h, _ in ref.values())


def test_classic_protocol_matches_brute_force():
    W, words, questions = _random_case(2)
    ref = _brute_force_classic(W, words, questions)
    res = analogy_classic(torch.from_numpy(W), words, questions, dtype=torch.float64,
                          batch_size=5)
    assert _hits(res) == ref


# -------------------------------------------------------------------- similarity


def test_spearman_perfect_negative_and_by_hand():
    # words on the unit circle: cos(w0, wk) decreases with the angle k * 20 degrees
    ang = np.radians(np.arange(8) * 20.0)
    W = np.stack([np.cos(ang), np.sin(ang)], axis=1) * np.arange(1, 9)[:, None]
    words = [f"w{k}" for k in range(8)]
    near = [("w0", f"w{k}", 10.0 - k) for k in range(1, 8)]
    assert similarity(W, words, near).spearman == pytest.approx(1.0)
    far = [(a, b, -s) for a, b, s in near]
    assert similarity(W, words, far).spearman == pytest.approx(-1.0)

    # arbitrary scores: Spearman = Pearson correlation of the ranks (no ties)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3))
    pairs = [("w0", "w3", 2.0), ("w1", "w2", 7.5), ("w4", "w6", 1.0),
             ("w5", "w7", 4.0), ("w2", "w6", 9.0), ("w3", "w5", 3.3),
             ("oov", "w1", 5.0)]
    U = _unit(X)
    cos = np.array([U[int(a[1])] @ U[int(b[1])] for a, b, _ in pairs[:-1]])
    human = np.array([s for *_, s in pairs[:-1]])
    r1, r2 = np.argsort(np.argsort(cos)), np.argsort(np.argsort(human))
    expected = np.corrcoef(r1, r2)[0, 1]
    res = similarity(X, words, pairs)
    assert res.spearman == pytest.approx(expected, abs=1e-12)
    assert (res.n, res.n_total) == (6, 7)


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    from qwem_lib.evaluate import _spearman

    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.integers(0, 6, size=40).astype(float)  # many ties, like MEN's scores
        y = x + rng.integers(0, 4, size=40)
        assert _spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert math.isnan(_spearman(np.ones(5), np.arange(5.0)))


def test_similarity_degenerate():
    W = np.array([[1.0, 0.0], [0.0, 0.0], [0.5, 0.5]])  # a zero-norm row
    words = ["a", "b", "c"]
    res = similarity(W, words, [("a", "zz", 1.0), ("a", "c", 2.0)])
    assert (res.n, res.n_total) == (1, 2) and math.isnan(res.spearman)
    assert res.to_dict() == {"spearman": None, "n": 1, "n_total": 2}
    res = similarity(W, words, [("a", "b", 1.0), ("a", "c", 2.0)])
    assert res.spearman == pytest.approx(1.0)  # cos(a, zero row) = 0 < cos(a, c)


# ------------------------------------------------------------ benchmark files


def test_bundled_benchmarks():
    qs = load_analogies()
    assert len(qs) == 14
    assert sum(len(v) for v in qs.values()) == 19544
    assert qs["capital-common-countries"][0] == ("athens", "greece", "baghdad", "iraq")
    sizes = {"men": 3000, "ws353": 353, "ws353_sim": 203, "ws353_rel": 252}
    for name, size in sizes.items():
        pairs = load_similarity(name)
        assert len(pairs) == size
        assert all(a == a.lower() and b == b.lower() for a, b, _ in pairs)
    assert max(s for *_, s in load_similarity("men")) == 50.0
    assert max(s for *_, s in load_similarity("ws353")) == 10.0


def test_benchmark_file_errors(tmp_path):
    with pytest.raises(QwemError, match="neither a bundled benchmark"):
        load_similarity("simlex")
    with pytest.raises(QwemError, match="line 2"):
        load_similarity(_write(tmp_path, "# c\na b\n", "s.txt"))
    with pytest.raises(QwemError, match="line 2"):
        load_analogies(_write(tmp_path, ": cat\na b c\n"))
    with pytest.raises(QwemError, match="before any"):
        load_analogies(_write(tmp_path, "a b c d\n"))
    with pytest.raises(QwemError, match="does not exist"):
        load_analogies(tmp_path / "missing.txt")
    p = _write(tmp_path, "# comment\n\nTiger\tcat\t7.35\nsun sunlight 50\n", "ok.txt")
    assert load_similarity(p) == [("tiger", "cat", 7.35), ("sun", "sunlight", 50.0)]


# ------------------------------------------------------------- feature words


def test_feature_words_sign_convention():
    words = ["a", "b", "c", "d", "e", "f"]
    # column 0: a heavy negative tail (a, b) -> flipped so a, b are listed first;
    # column 1: a heavy positive tail (f, e) -> kept
    W = np.array([[-5.0, 0.1], [-4.0, 0.2], [1.0, 0.1], [1.0, 0.3], [1.0, 2.0],
                  [0.5, 3.0]])
    out = feature_words(W, words, n_features=2, n_words=2)
    assert out == [["a", "b"], ["f", "e"]]
    # flipping a column's sign does not change the answer
    W2 = W * np.array([-1.0, -1.0])
    assert feature_words(torch.from_numpy(W2), words, 2, 2) == out
    # ranking is by cosine with the axis, not by raw size
    W3 = np.array([[0.0, 1.0], [10.0, 3.0], [0.0, -0.5]])
    assert feature_words(W3, ["x", "y", "z"], 2, 1)[1] == ["x"]
    # sizes are clamped to d and V
    assert [len(x) for x in feature_words(W, words, 10, 100)] == [6, 6]


# ------------------------------------------------------------------ report


def test_report_is_json_and_robust():
    words, W = _family_embedding()
    words = words + ["tiger", "cat", "sun", "sunlight"]
    rng = np.random.default_rng(0)
    W = np.vstack([W, rng.standard_normal((4, 4))])
    r = report(torch.from_numpy(W).float(), words, device="cpu")
    json.dumps(r, allow_nan=False)
    assert set(r) == {"analogy_paper", "analogy_classic", "men", "ws353", "ws353_sim",
                      "ws353_rel", "vocab_size", "dim"}
    assert (r["vocab_size"], r["dim"]) == (len(words), 4)
    # family category: man/woman, king/queen, boy/girl are in the Google file
    assert r["analogy_paper"]["per_category"]["family"]["n"] >= 6
    assert r["analogy_paper"]["per_category"]["capital-world"] == {"accuracy": None,
                                                                   "n": 0}
    assert r["analogy_classic"]["n_total"] == 19544
    assert r["ws353_rel"]["n"] == 0 and r["ws353_rel"]["spearman"] is None


def test_report_is_cached_by_the_content_of_the_embeddings(isolated_cache,
                                                           monkeypatch):
    """report(cache=True) is report(); a second call reads it back without
    evaluating; another W (one entry changed), other words or cache=False evaluate."""
    import qwem_lib.evaluate as ev
    words, W = _family_embedding()
    W = torch.from_numpy(W).float()
    plain = report(W, words, device="cpu")
    assert report(W, words, device="cpu", cache=True) == plain
    evaluated = []
    real = ev._report
    monkeypatch.setattr(ev, "_report",
                        lambda T, w, d: evaluated.append(len(w)) or real(T, w, d))
    assert report(W.numpy().copy(), words, device="cpu", cache=True) == plain
    assert evaluated == []                   # the same values, as a numpy array
    report(W.double(), words, device="cpu", cache=True)       # another dtype
    W2 = W.clone()
    W2[3, 1] += 0.5
    assert report(W2, words, device="cpu", cache=True) != plain
    renamed = words[:-1] + ["zzz"]
    report(W, renamed, device="cpu", cache=True)
    report(W, words, device="cpu")
    assert evaluated == [len(words)] * 4


def test_input_validation():
    words, W = _family_embedding()
    with pytest.raises(QwemError, match="rows"):
        analogy_paper(W[:-1], words)
    bad = W.copy()
    bad[0, 0] = np.nan
    with pytest.raises(QwemError, match="NaN"):
        report(bad, words)
    with pytest.raises(QwemError, match="2-D"):
        similarity(W[0], words[:1], "men")


def test_case_insensitive_vocabulary(tmp_path):
    words, W = _angles_embedding()
    words = [w.capitalize() for w in words]
    f = _write(tmp_path, ": family\nman woman king queen\n")
    assert analogy_classic(W, words, f).correct == 1
    assert isinstance(analogy_paper(W, words, f), AnalogyResult)


def test_subspace_overlap_hand_worked_and_invariant():
    from qwem_lib.evaluate import subspace_overlap

    # Hand-worked: span(e1, e2) against span(e1, (e2 + e3)/sqrt2): principal angles
    # 0 and 45 degrees, so cos^2 = (1, 1/2) and the mean 3/4.
    E = np.eye(4)
    A = E[:, :2] * np.array([3.0, 1.0])          # singular values 3 > 1
    B = np.stack([E[:, 0] * 2.0, (E[:, 1] + E[:, 2]) / np.sqrt(2)], axis=1)
    ov = subspace_overlap(A, B)
    assert ov.mean_cos2 == pytest.approx(0.75, abs=1e-12)
    assert np.allclose(ov.cos2, [1.0, 0.5], atol=1e-12)
    assert np.allclose(ov.matrix, [[1.0, 0.0], [0.0, 0.5]], atol=1e-12)
    # Rotating the embedding dimensions changes nothing; a random pair of 3-dim
    # subspaces of R^400 overlaps about k/V.
    rng = np.random.default_rng(0)
    W = rng.normal(size=(400, 3)) * np.array([5.0, 2.0, 1.0])
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    assert subspace_overlap(W, W @ Q).mean_cos2 == pytest.approx(1.0, abs=1e-12)
    rand = subspace_overlap(W, rng.normal(size=(400, 3))).mean_cos2
    assert rand < 0.05
    with pytest.raises(QwemError, match="same vocabulary"):
        subspace_overlap(W, W[:10])


FAMILY = ["king", "queen", "man", "woman", "boy", "girl"]


@pytest.mark.parametrize("words, W", [
    (["king", "queen", "xyzzy"], np.random.default_rng(4).standard_normal((3, 3))),
    (FAMILY, np.zeros((6, 3))),  # every cosine 0: constant, no correlation
    (FAMILY, np.zeros((6, 0))),  # no dimensions at all
    ([], np.zeros((0, 3))),
], ids=["three words", "zeros", "no columns", "empty"])
def test_report_is_strict_json_when_almost_nothing_is_covered(words, W):
    """Degenerate embeddings: undefined scores are None, never NaN or inf."""
    r = report(W, words, device="cpu")
    text = json.dumps(r, allow_nan=False)  # the CLI writes strict JSON
    assert "NaN" not in text and "Infinity" not in text
    assert (r["vocab_size"], r["dim"]) == W.shape
    for name in ("men", "ws353", "ws353_sim", "ws353_rel"):
        assert r[name]["spearman"] is None  # < 2 pairs, or constant cosines
        assert r[name]["n"] <= 15
    for protocol in ("analogy_paper", "analogy_classic"):
        res = r[protocol]
        assert res["n_total"] > 1000 and res["coverage"] < 0.01
        assert (res["accuracy"] is None) == (res["n"] == 0)
        assert all((c["accuracy"] is None) == (c["n"] == 0)
                   for c in res["per_category"].values())


def test_report_refuses_non_finite_in_one_line():
    words, W = _family_embedding()
    for bad in (np.inf, -np.inf, np.nan):
        T = torch.from_numpy(W.copy()).float()
        T[3, 1] = bad
        with pytest.raises(QwemError, match="report: W has NaN or inf") as info:
            report(T, words, device="cpu")
        assert "\n" not in str(info.value)
    huge = W * 1e308  # finite entries whose float64 sum overflows: still accepted
    json.dumps(report(huge, words, device="cpu"), allow_nan=False)


def test_to_dict_turns_nan_and_inf_into_none():
    res = AnalogyResult(accuracy=math.inf, n=0, correct=0,
                        per_category={"c": (math.nan, 0)}, n_total=0)
    d = res.to_dict()
    assert d["accuracy"] is None and d["coverage"] is None
    assert d["per_category"]["c"]["accuracy"] is None
    json.dumps(d, allow_nan=False)


def test_benchmark_files_may_start_with_a_utf8_bom(tmp_path):
    q = tmp_path / "q.txt"
    q.write_bytes(b"\xef\xbb\xbf: family\nman woman king queen\n")
    assert load_analogies(q) == {"family": [("man", "woman", "king", "queen")]}
    s = tmp_path / "s.txt"
    s.write_bytes(b"\xef\xbb\xbfking queen 8.5\nman woman 7\n")
    assert load_similarity(s) == [("king", "queen", 8.5), ("man", "woman", 7.0)]
