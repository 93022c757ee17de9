"""qwem_lib.compare: the timed, cached runs behind chapter 5 and bench/."""

import bz2
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from qwem_lib import compare
from qwem_lib.corpus import load_tokens
from qwem_lib.corpus.cooccurrence import count_pairs
from qwem_lib.losses import keep_probs
from qwem_lib.pipeline import EmbedConfig, pair_statistics
from qwem_lib.runtime.cache import file_identity as cache_identity
from qwem_lib.runtime.errors import QwemError
from qwem_lib.word2vec import Word2VecConfig

WORDS = "a b c d e f g h i j k l".split()


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(1)
    p = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.2
    text = " ".join(rng.choice(WORDS, size=6000, p=p / p.sum()))
    path = tmp_path / "c.txt.bz2"
    path.write_bytes(bz2.compress(text.encode()))
    return str(path)


def test_gensim_sentences_hand_worked():
    ids = np.array([2, 0, 1, 1, 2])
    assert compare.gensim_sentences(ids, ["x", "y", "z"], length=2) == [
        ["z", "x"], ["y", "y"], ["z"]]


def test_subsampled_counts_are_counts_of_the_kept_stream(corpus):
    """EmbedConfig.subsample: the counts are the sum, over the seeded draws, of the
    plain window counts of the kept tokens (checked against an independent draw of
    the same keep probabilities), and frequent words lose their share."""
    V = 12
    cfg = EmbedConfig(corpus, V, 2, context_len=3, subsample=1e-2,
                      subsample_draws=3)
    tokens, P, u = pair_statistics(cfg, progress=False)
    ids = np.asarray(tokens.ids)
    _, P0, u0 = pair_statistics(EmbedConfig(corpus, V, 2, context_len=3),
                                progress=False)
    keep = keep_probs(np.bincount(ids, minlength=V), 1e-2).numpy()
    assert keep[0] < 0.5 and keep[-1] == 1.0
    # the most frequent word's share of pairs drops by about its keep probability
    ratio = float(u[0] / u0[0])
    assert ratio < 0.8
    # every draw keeps each token with its probability: total kept tokens agree
    C = count_pairs(ids, V, 3)
    total0 = float(C.sum())
    rng = np.random.default_rng(123)
    expect = np.mean([float(count_pairs(ids[rng.random(len(ids)) < keep[ids]], V,
                                        3).sum()) for _ in range(3)])
    assert abs(expect / total0 - keep[ids].mean() ** 1) < 0.1
    assert float(P.sum()) == pytest.approx(1.0)


def test_embed_config_key_holds_every_setting_and_the_corpus_content(corpus,
                                                                     tmp_path):
    """The key names the corpus by its content: the same text under another name
    shares it, another text under the same name does not."""
    cfg = EmbedConfig(corpus, 12, 2)
    key = cfg.key()
    assert key["vocab_size"] == 12 and key["embed_dim"] == 2
    assert key["corpus"]["sha256"] and "corpus.txt" not in json.dumps(key)
    copy = tmp_path / "elsewhere.txt.bz2"           # the same bytes, read the same way
    copy.write_bytes(Path(corpus).read_bytes())
    assert EmbedConfig(str(copy), 12, 2).key() == key
    assert EmbedConfig(copy, 12, 2).key() == key                 # a Path is accepted
    assert EmbedConfig(corpus, np.int64(12), np.int32(2)).key() == key
    for change in (dict(subsample=1e-3), dict(weight_power=0.5), dict(context_len=3),
                   dict(negatives=2.0), dict(scheme="text8")):
        assert EmbedConfig(corpus, 12, 2, **change).key() != key, change
    copy.write_bytes(bz2.compress(bz2.decompress(Path(corpus).read_bytes())
                                  + b" one more line\n"))
    assert EmbedConfig(str(copy), 12, 2).key() != key
    plain = tmp_path / "plain.txt"                  # the same bytes, read as text
    plain.write_bytes(Path(corpus).read_bytes())
    assert cache_identity(plain)["sha256"] == key["corpus"]["sha256"]
    assert cache_identity(plain)["read_as"] != key["corpus"]["read_as"]


def test_bad_subsample():
    with pytest.raises(QwemError, match=r"subsample \(--subsample\) must be a "
                       r"finite number >= 0"):
        EmbedConfig("x", 12, 2, subsample=-1).validate()
    with pytest.raises(QwemError, match="subsample_draws"):
        EmbedConfig("x", 12, 2, subsample=1e-3, subsample_draws=0).validate()


def test_closed_form_run_is_cached_with_its_time(corpus):
    cfg = EmbedConfig(corpus, 12, 3)
    a = compare.closed_form_run(cfg)
    assert not a.cached and a.seconds > 0 and a.name == "svd(mstar)"
    b = compare.closed_form_run(cfg)
    assert b.cached and b.seconds == a.seconds and b.words == a.words
    np.testing.assert_array_equal(a.W, b.W)
    c = compare.closed_form_run(cfg, cache="refresh")
    assert not c.cached
    np.testing.assert_allclose(np.abs(c.W), np.abs(a.W), atol=1e-6)
    with pytest.raises(QwemError, match="cache must be"):
        compare.closed_form_run(cfg, cache="yes")


def test_untimed_closed_form_run_reuses_tokens_and_timed_runs(corpus, monkeypatch):
    """timed=False (an ablation's row): cached tokens may be read, the run is stored
    apart from timed runs and says so; a stored timed run is returned instead."""
    from qwem_lib import pipeline

    seen = []
    real = pipeline._tokens
    monkeypatch.setattr(pipeline, "_tokens",
                        lambda config, watch, cache, progress:
                        seen.append(cache) or real(config, watch, cache, progress))
    timed = compare.closed_form_run(EmbedConfig(corpus, 12, 3))
    assert seen == [False] and timed.info["timed"] is True   # from the corpus file
    again = compare.closed_form_run(EmbedConfig(corpus, 12, 3), timed=False)
    assert seen == [False] and again.cached and again.seconds == timed.seconds
    other = EmbedConfig(corpus, 12, 3, context_len=3)
    untimed = compare.closed_form_run(other, timed=False)
    assert seen == [False, True] and not untimed.cached
    assert untimed.info["timed"] is False
    assert compare.closed_form_run(other, timed=False).cached   # stored apart
    assert seen == [False, True]
    # a timed request never returns the untimed run
    t2 = compare.closed_form_run(other)
    assert t2.info["timed"] is True and not t2.cached


def test_untimed_word2vec_run_reuses_tokens_and_timed_runs(corpus, monkeypatch):
    """The same for word2vec: an untimed run may read cached tokens, is stored apart
    and says so; a stored timed run is returned instead; a timed request never gets
    the untimed run."""
    seen = []
    real = compare._tokens
    monkeypatch.setattr(compare, "_tokens", lambda c, v, s, cache:
                        seen.append(cache) or real(c, v, s, cache))
    cfg = Word2VecConfig(embed_dim=3, window=2, epochs=1)
    timed = compare.word2vec_run(corpus, 12, cfg, threads=1, device="cpu")
    assert seen == [False] and timed.info["timed"] is True
    again = compare.word2vec_run(corpus, 12, cfg, threads=1, device="cpu",
                                 timed=False)
    assert seen == [False] and again.cached and again.seconds == timed.seconds
    other = Word2VecConfig(embed_dim=3, window=3, epochs=1)
    untimed = compare.word2vec_run(corpus, 12, other, threads=1, device="cpu",
                                   timed=False)
    assert seen == [False, True] and not untimed.cached
    assert untimed.info["timed"] is False
    assert compare.word2vec_run(corpus, 12, other, threads=1, device="cpu",
                                timed=False).cached
    t2 = compare.word2vec_run(corpus, 12, other, threads=1, device="cpu")
    assert seen == [False, True, False] and t2.info["timed"] is True
    assert not t2.cached
    # one thread: the untimed run trained the same vectors from cached tokens
    np.testing.assert_array_equal(t2.W, untimed.W)


def test_closed_form_is_computed_once_for_chapters_and_runs(corpus, monkeypatch):
    """A closed form stored by pipeline.closed_form (a chapter) is what
    closed_form_run reads, with the stage times of the run that computed it, and
    the other way round; an entry without stage times is recomputed."""
    from qwem_lib import pipeline

    calls = []
    real = pipeline._top_eigenpairs
    monkeypatch.setattr(pipeline, "_top_eigenpairs",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = EmbedConfig(corpus, 12, 3)
    first = pipeline.closed_form(cfg, progress=False)
    assert not first.cached and len(calls) == 1
    run = compare.closed_form_run(cfg)
    assert len(calls) == 1                       # read back, not recomputed
    assert run.info["stages"] == first.timings
    assert run.seconds == pytest.approx(sum(first.timings.values()))
    np.testing.assert_array_equal(run.W, first.W.numpy().astype(np.float32))
    again = pipeline.closed_form(cfg, progress=False)
    assert again.cached and "load cache" in again.timings

    other = EmbedConfig(corpus, 12, 2)            # first computed by the timed run
    run2 = compare.closed_form_run(other)
    assert len(calls) == 2 and not run2.cached
    assert pipeline.closed_form(other, progress=False).cached and len(calls) == 2

    # refresh recomputes; keep_target always computes
    compare.closed_form_run(cfg, cache="refresh")
    assert len(calls) == 3
    fresh = pipeline.closed_form(cfg, progress=False, cache="timed", keep_target=True)
    assert not fresh.cached and fresh.target is not None     # computed, not read
    assert len(calls) == 4 and fresh.timings != run.info["stages"]
    with pytest.raises(QwemError, match="cache must be"):
        pipeline.closed_form(cfg, progress=False, cache="yes")


def test_closed_form_of_many_pairs_shares_the_trainers_eigenbasis(corpus,
                                                                   monkeypatch):
    """From k >= V/4 the closed form takes the dense eigenbasis: the same eigenpairs
    as the Krylov solver, from the M* the trainer decomposes, bit for bit, so the
    eigenbasis cache (keyed by M's content) serves both."""
    import torch

    from qwem_lib import pipeline, spectral
    from qwem_lib import train as train_mod
    from qwem_lib.losses import reweighting
    from qwem_lib.train import TrainConfig

    V, k = 12, 4
    cfg = EmbedConfig(corpus, V, k)
    _, P, u = pair_statistics(cfg, progress=False)
    seen = []
    real = spectral.eigenbasis
    spy = lambda M, **kw: seen.append((M.clone(), kw)) or real(M, **kw)  # noqa: E731
    monkeypatch.setattr(pipeline, "eigenbasis", spy)
    monkeypatch.setattr(train_mod, "eigenbasis", spy)
    train_mod.train(TrainConfig(embed_dim=k, steps=2, lr=1e-4, basis="eigen"), P, u,
                    progress=False, cache=True)
    res = pipeline.closed_form(cfg, progress=False, cache=True)
    assert len(seen) == 2
    assert torch.equal(seen[0][0], seen[1][0])       # one M*, one cache entry
    assert seen[0][1]["cache"] is None and seen[1][1]["cache"] is None
    M = reweighting("setting31", P, u).target(P, u)
    lam = np.linalg.eigvalsh(M.numpy())[::-1][:k]
    np.testing.assert_allclose(res.eigvals.numpy(), lam, rtol=1e-10)
    assert float(res.residuals.max()) < 1e-10 * abs(lam[0])
    ref = spectral.top_eigh(M, k)
    np.testing.assert_allclose(np.abs(res.eigvecs.numpy().T @ ref.eigvecs.numpy()),
                               np.eye(k), atol=1e-6)
    pipeline.closed_form(EmbedConfig(corpus, V, k, context_len=5), progress=False,
                         cache=False)
    assert seen[-1][1]["cache"] is False             # no cache: none written
    seen.clear()
    pipeline.closed_form(EmbedConfig(corpus, V, 2), progress=False, cache=False)
    assert not seen                                  # k < V/4: the Krylov solver


def test_word2vec_run_matches_the_trainer(corpus):
    from qwem_lib.word2vec import train_word2vec
    cfg = Word2VecConfig(embed_dim=3, window=2, negatives=2, subsample=0, epochs=1,
                         batch_size=16, tied=False)
    run = compare.word2vec_run(corpus, 12, cfg, cache=False)
    tok = load_tokens(corpus, 12, progress=False)
    ref = train_word2vec(cfg, tok.ids, 12, progress=False)
    np.testing.assert_array_equal(run.W, ref.W.double().numpy())
    assert run.words == list(tok.vocab.words)
    assert run.history.step == ref.history.step


def test_word2vec_run_fraction_is_the_start_of_the_whole_run(corpus):
    """fraction=0.4 of a 3-epoch run: exactly the whole run's checkpoints up to 40%
    of its words, on the whole run's schedule (one thread: bit for bit)."""
    cfg = Word2VecConfig(embed_dim=3, window=2, negatives=2, subsample=0, epochs=3,
                         tied=True)
    whole = compare.word2vec_run(corpus, 12, cfg, threads=1, cache=False,
                                 n_checkpoints=12)
    part = compare.word2vec_run(corpus, 12, cfg, threads=1, cache=False,
                                n_checkpoints=12, fraction=0.4)
    stop = math.ceil(0.4 * 3 * part.info["n_tokens"])
    n = len(part.history.step)
    assert 2 <= n < len(whole.history.step)
    assert part.history.step == whole.history.step[:n]
    np.testing.assert_array_equal(part.history.s2(), whole.history.s2()[:n])
    assert part.info["checkpoint_words"][-1] <= stop \
        < whole.info["checkpoint_words"][n]
    assert 0 < part.info["steps"] < whole.info["steps"]
    for bad in (0, 1.5, "half"):
        with pytest.raises(QwemError, match="fraction"):
            compare.word2vec_run(corpus, 12, cfg, fraction=bad, cache=False)


def test_gensim_run_rows_follow_our_vocabulary(corpus):
    """W's rows are gensim's vectors of our words, in our order (one worker, same
    seed: gensim is deterministic, so a direct gensim model must agree)."""
    gensim = pytest.importorskip("gensim")
    cfg = Word2VecConfig(embed_dim=3, window=2, negatives=2, subsample=0,
                         epochs=1, tied=False)
    run = compare.gensim_run(corpus, 12, cfg, workers=1, cache=False)
    tok = load_tokens(corpus, 12, progress=False)
    words = list(tok.vocab.words)
    assert run.words == words
    ids = np.asarray(tok.ids)
    model = gensim.models.Word2Vec(
        vector_size=3, window=2, negative=2, ns_exponent=0.75, sample=0,
        alpha=0.025, min_alpha=0.025 * 1e-4, sg=1, hs=0, min_count=1, workers=1,
        seed=1)
    model.build_vocab_from_freq(dict(zip(words, np.bincount(ids).tolist())))
    sents = compare.gensim_sentences(ids, words)
    model.train(sents, total_examples=len(sents), total_words=len(ids), epochs=1)
    for i in (0, 5, 11):
        np.testing.assert_allclose(run.W[i], model.wv[words[i]], rtol=1e-6)
    with pytest.raises(QwemError, match="untied"):
        compare.gensim_run(corpus, 12, Word2VecConfig(embed_dim=3, tied=True),
                           cache=False)


def test_weighted_closed_form_is_stationary_for_its_weights(corpus):
    """weight_power β: W = Γ⁻¹·top-d factor of ΓM*Γ is a stationary point of the
    weighted loss Σ g_i g_j ((WWᵀ)_ij - M*_ij)² (its gradient 4 (G∘(WWᵀ-M*)) W
    vanishes), matches an independent numpy eigh, and beats Setting 3.1's W on
    that loss."""
    import torch

    from qwem_lib.pipeline import closed_form
    from qwem_lib.targets import m_star
    V, d, beta = 12, 3, 0.75
    cfg = EmbedConfig(corpus, V, d, weight_power=beta)
    res = closed_form(cfg, progress=False, cache=False)
    W = res.W.numpy()
    tokens, P, u = pair_statistics(cfg, progress=False)
    M = m_star(P, u).numpy()
    f = np.bincount(np.asarray(tokens.ids), minlength=V) / len(tokens.ids)
    g = f ** beta / np.mean(f ** beta)
    G = np.outer(g, g)
    grad = 4 * (G * (W @ W.T - M)) @ W
    assert np.linalg.norm(grad) < 1e-8 * np.linalg.norm(G * M) * np.linalg.norm(W)
    lam, U = np.linalg.eigh(np.sqrt(G) * M)
    ref = U[:, -d:] * np.sqrt(np.clip(lam[-d:], 0, None)) / np.sqrt(g)[:, None]
    np.testing.assert_allclose(W @ W.T, ref @ ref.T, atol=1e-8)
    W0 = closed_form(EmbedConfig(corpus, V, d), progress=False, cache=False).W.numpy()

    def loss(X):
        return float((G * (X @ X.T - M) ** 2).sum())
    assert loss(W) < loss(W0)
    # cached eigenpairs give the same W (the row scale is stored with them)
    a = closed_form(cfg, progress=False).W
    b = closed_form(cfg, progress=False).W
    torch.testing.assert_close(a, b)
    np.testing.assert_allclose(a.numpy() @ a.numpy().T, W @ W.T, atol=1e-8)


def test_qwem_run_converges_to_the_closed_form(corpus):
    """Trained QWEM (auto lr capped, auto steps) ends at svd(M*): its squared
    singular values are M*'s top eigenvalues, and the run records its lr/steps."""
    from qwem_lib.train import TrainConfig
    V, d = 12, 2
    cfg = EmbedConfig(corpus, V, d)
    run = compare.qwem_run(cfg, TrainConfig(embed_dim=d, init_scale=1e-6,
                                            time_factor=3.0), lr_cap=0.2,
                           cache=False)
    lam = np.asarray(run.info["eigvals"])
    s2 = np.linalg.svd(run.W, compute_uv=False) ** 2
    np.testing.assert_allclose(s2, lam, rtol=1e-3)
    assert run.info["lr"] <= 0.2 / lam[0] * (1 + 1e-12)
    assert run.history.step[-1] == run.info["steps"]
    ref = compare.closed_form_run(cfg, cache=False)
    assert evaluate_overlap(run.W, ref.W) > 0.999


def test_qwem_run_decomposes_m_star_once_and_counts_a_stored_basis(corpus,
                                                                   monkeypatch):
    """In the eigenbasis, qwem_run's spectrum, lr and trainer share one
    decomposition of M*; one stored by another run is read back, and the run's
    seconds count it at the seconds stored with it."""
    import scipy.linalg

    import qwem_lib.spectral as spectral
    from qwem_lib.pipeline import pair_statistics
    from qwem_lib.targets import m_star
    from qwem_lib.train import TrainConfig
    V, d = 12, 2
    cfg = EmbedConfig(corpus, V, d)
    tc = TrainConfig(embed_dim=d, init_scale=1e-6, time_factor=3.0)
    calls = []
    real = scipy.linalg.eigh
    monkeypatch.setattr(scipy.linalg, "eigh",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(spectral, "top_eigh", lambda *a, **k: 1 / 0)  # not used
    first = compare.qwem_run(cfg, tc, cache=False)
    assert len(calls) == 1 and first.info["eigenbasis_cached"] is False
    lam_all = np.linalg.eigvalsh(m_star(*pair_statistics(
        cfg, progress=False)[1:]).numpy())[::-1]
    np.testing.assert_allclose(first.info["eigvals"], lam_all[:d], rtol=1e-12)
    # another run stored this M*'s basis, and it took 1,000 s there
    monkeypatch.setattr(spectral, "_CACHE_MIN_V", 1)
    clock = iter([0.0, 1000.0])

    class FakeTime:
        @staticmethod
        def perf_counter():
            return next(clock)
    with monkeypatch.context() as m:
        m.setattr(spectral, "time", FakeTime)
        spectral.eigenbasis(m_star(*pair_statistics(cfg, progress=False)[1:]))
    calls.clear()
    second = compare.qwem_run(cfg, tc)   # cache=False would decompose afresh
    assert not calls and second.info["eigenbasis_cached"] is True
    assert second.info["eigenbasis_seconds"] == 1000.0 and second.seconds >= 1000.0
    np.testing.assert_allclose(second.W, first.W, rtol=0, atol=1e-12)


def evaluate_overlap(A, B):
    from qwem_lib.evaluate import subspace_overlap
    return subspace_overlap(A, B).mean_cos2


def test_closed_forms_count_the_corpus_once_for_targets_of_the_same_counts(
        corpus, monkeypatch):
    """M*, PPMI, PMI and word2vec's target of one window share one reading and
    counting; each result equals closed_form's alone, is stored where closed_form
    looks, and its timings are its cost from the file (shared stages included)."""
    import qwem_lib.pipeline as pipeline
    from qwem_lib.pipeline import closed_form, closed_forms
    V, d = 12, 3
    same = [EmbedConfig(corpus, V, d, method=m) for m in ("mstar", "ppmi", "pmi")]
    same.append(EmbedConfig(corpus, V, d, negatives=5.0, neg_power=0.75,
                            weight_power=0.5))
    other = EmbedConfig(corpus, V, d, context_len=4)          # other counts
    alone = [closed_form(c, progress=False, cache=False) for c in same + [other]]
    counted = []
    real = pipeline.count_pairs
    monkeypatch.setattr(pipeline, "count_pairs",
                        lambda *a, **k: counted.append(a[2]) or real(*a, **k))
    got = closed_forms(same + [other], progress=False, cache="timed")
    assert sorted(counted) == [4, 16]                       # one count per window
    for a, b in zip(alone, got):
        torch.testing.assert_close(b.eigvals, a.eigvals, rtol=0, atol=0)
        torch.testing.assert_close(b.W, a.W, rtol=0, atol=0)
        assert set(b.timings) == {"read+tokenise", "count", "target", "eigen"}
    shared = {k: got[0].timings[k] for k in ("read+tokenise", "count")}
    assert all({k: g.timings[k] for k in shared} == shared for g in got[:4])
    assert got[0].timings["target"] != got[1].timings["target"]
    counted.clear()                 # stored where closed_form looks, with its timings
    again = closed_form(same[1], progress=False, cache="timed")
    assert again.cached and not counted and again.timings == got[1].timings
    assert [g.cached for g in closed_forms(same, progress=False)] == [True] * 4
    with pytest.raises(QwemError, match="EmbedConfig"):
        closed_forms([same[0], "ppmi"])
    import qwem_lib.runtime.memory as memory  # memory checked before any counting
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1)
    counted.clear()
    fresh = [EmbedConfig(corpus, V, d, method=m, context_len=5)
             for m in ("ppmi", "pmi")]
    with pytest.raises(QwemError, match="needs about"):
        closed_forms(fresh, progress=False)
    assert not counted


# ----------------------------------------------------------------------------------
# a run on the theory's clock
# ----------------------------------------------------------------------------------

def _trained(info, t, s2, V=2):
    """A Run whose history recorded the squared singular values ``s2`` at ``t``."""
    from qwem_lib.runtime.history import History

    n = len(t)
    hist = History(step=list(range(n)), t=list(t), loss=[0.0] * n,
                   singular_values=np.sqrt(np.asarray(s2)).tolist(),
                   analogy=[None] * n)
    return compare.Run("run", WORDS[:V], np.zeros((V, 2)), 0.0, info, hist)


S2 = [[1e-4, 1e-4], [1e-2, 1e-4], [1.0, 1e-3]]   # mode 2 never reaches λ_2/2


def test_flow_time_hand_worked():
    """QWEM records flow time itself; word2vec's Σ η becomes (1 + k)/V² of it."""
    t = [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(compare.flow_time(_trained({"train": {}}, t, S2)),
                                  t)
    w2v = _trained({"config": {"negatives": 3}}, t, S2, V=4)   # (1 + 3)/16 = 1/4
    np.testing.assert_allclose(compare.flow_time(w2v), [0.0, 0.25, 0.5])
    gensim = compare.Run("word2vec (gensim)", WORDS[:2], np.zeros((2, 2)), 0.0)
    with pytest.raises(QwemError, match="no training history"):
        compare.flow_time(gensim)


def test_half_learned_times_hand_worked():
    """Mode 1 (λ = 0.2) passes λ/2 = 0.1 between s² = 1e-2 at t = 1 and 1 at t = 2:
    halfway in log s², t = 1.5; mode 2 never does.  The flow's time from σ = 0.01 is
    λ^{-1} ln((λ - σ²)/σ²)."""
    lam, sigma = [0.2, 0.1], 0.01
    qwem = compare.half_learned_times(_trained({"train": {}}, [0, 1, 2], S2), lam,
                                      sigma)
    assert qwem.measured[0] == pytest.approx(1.5) and np.isnan(qwem.measured[1])
    expect = [math.log((x - 1e-4) / 1e-4) / x for x in lam]
    np.testing.assert_allclose(qwem.theory, expect, rtol=1e-12)
    # word2vec, k = 1, V = 2: flow time is half the recorded one
    w2v = compare.half_learned_times(
        _trained({"config": {"negatives": 1}}, [0, 1, 2], S2), lam, sigma)
    assert w2v.measured[0] == pytest.approx(0.75)
    np.testing.assert_array_equal(w2v.theory, qwem.theory)


def test_half_learned_times_of_the_exact_flow_match_the_theory():
    """A run that follows the gradient flow's sigmoids, recorded on a fine grid, is
    half-learned when the flow says."""
    from qwem_lib.dynamics import init_scale_to_s2, mode_trajectory

    lam, sigma = np.array([3.0, 2.0, 1.0]), 1e-3
    t = np.linspace(0.0, 20.0, 4001)
    s2 = mode_trajectory(t, lam, init_scale_to_s2(sigma)).numpy()
    half = compare.half_learned_times(_trained({"train": {}}, t, s2), lam, sigma)
    np.testing.assert_allclose(half.measured, half.theory, rtol=1e-4)
    assert np.all(np.diff(half.theory) > 0)      # smaller λ: learned later


def test_word2vec_growth_rates_match_a_dense_reference(corpus, isolated_cache,
                                                       monkeypatch):
    """μ_k: the top eigenvalues of 2(P_sub - kQ)V²/(1 + k), Q_ij = (P_i n_j + n_i
    P_j)/2 with n ∝ count^{3/4}, built densely in numpy; the buffer updated a few
    rows at a time gives the same bits as in one piece; a second call reads the
    rates back from the cache, and other settings miss it."""
    V, k = 12, 2
    config = Word2VecConfig(embed_dim=2, window=3, negatives=k, subsample=1e-2)
    mu = compare.word2vec_growth_rates(corpus, V, config, 4)
    cfg = EmbedConfig(corpus, V, 2, context_len=3, negatives=float(k),
                      neg_power=0.75, subsample=1e-2)
    tokens, P, u = pair_statistics(cfg, progress=False)
    P, u = P.numpy(), u.numpy()
    n = np.bincount(tokens.ids, minlength=V) ** 0.75
    n = n / n.sum()
    Q = (np.outer(u, n) + np.outer(n, u)) / 2
    ref = np.linalg.eigvalsh(2 * (P - k * Q) * V ** 2 / (1 + k))[::-1][:4]
    np.testing.assert_allclose(mu, ref, rtol=1e-9)
    monkeypatch.setattr(compare, "_GROWTH_ROWS", 5)             # rows 5 + 5 + 2
    np.testing.assert_array_equal(
        compare.word2vec_growth_rates(corpus, V, config, 4, cache=False), mu)
    computed = []
    real = compare._growth_rates
    monkeypatch.setattr(compare, "_growth_rates",
                        lambda *a: computed.append(a[1]) or real(*a))
    np.testing.assert_array_equal(
        compare.word2vec_growth_rates(corpus, V, config, 4), mu)  # from the cache
    assert computed == []
    compare.word2vec_growth_rates(corpus, V, config, 3)
    compare.word2vec_growth_rates(corpus, V, replace(config, window=2), 4)
    assert computed == [3, 4]


def test_counts_are_cached_once_per_window_and_read_back_equal(corpus, isolated_cache,
                                                               monkeypatch):
    """pair_statistics stores a corpus's window counts ("counts" cache, sparse) and
    reads them back for any target of the same counts: P_ij equal bit for bit, no
    second count; another window or subsampling counts again; cache=False neither
    reads nor writes."""
    import qwem_lib.pipeline as pipeline
    from qwem_lib.pipeline import pair_statistics
    from qwem_lib.runtime.cache import cache_dir
    counted = []
    real = pipeline.count_pairs
    monkeypatch.setattr(pipeline, "count_pairs",
                        lambda *a, **k: counted.append(a[2]) or real(*a, **k))
    V = 12
    _, P0, u0 = pair_statistics(EmbedConfig(corpus, V, 3), progress=False,
                                cache=False)
    assert counted == [16] and not (cache_dir() / "counts").exists()
    _, P1, u1 = pair_statistics(EmbedConfig(corpus, V, 3), progress=False)
    assert len(list((cache_dir() / "counts").iterdir())) == 1
    _, P2, u2 = pair_statistics(EmbedConfig(corpus, V, 5, method="ppmi",
                                            negatives=5.0), progress=False)
    assert counted == [16, 16]                   # read back: no third count
    for P, u in ((P1, u1), (P2, u2)):
        assert torch.equal(P, P0) and torch.equal(u, u0)
    pair_statistics(EmbedConfig(corpus, V, 3, context_len=4), progress=False)
    pair_statistics(EmbedConfig(corpus, V, 3, subsample=0.05, subsample_draws=1),
                    progress=False)
    assert counted == [16, 16, 4, 16]
    assert len(list((cache_dir() / "counts").iterdir())) == 3


def test_sparse_arrays_of_counts_round_trip():
    """The CSR arrays of a dense matrix, built in row blocks that do not divide V,
    give back the matrix (zero rows and a zero last row included)."""
    from scipy.sparse import csr_matrix

    from qwem_lib.pipeline import _dense_counts, _sparse_arrays
    rng = np.random.default_rng(0)
    C = torch.from_numpy(rng.random((23, 23)) * (rng.random((23, 23)) < 0.3))
    C[5] = 0
    C[-1] = 0
    arrays = _sparse_arrays(C, rows=4)
    assert arrays["indptr"][-1] == int((C != 0).sum())
    np.testing.assert_array_equal(csr_matrix(C.numpy()).indptr, arrays["indptr"])
    assert torch.equal(_dense_counts(arrays, 23, "cpu"), C)
