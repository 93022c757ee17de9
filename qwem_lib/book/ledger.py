"""The paper, result by result: each published result beside the book's own.

One :class:`Row` per result of Karkada et al. (arXiv 2502.09863) that the book
reproduces or tries to: where the paper states it, its value (from
:mod:`qwem_lib.paper`), the chapter and section that computes ours, the key under which
that chapter glued it (:class:`qwem_lib.book.Results`), a tolerance, and the rule that
turns the two into a verdict: *reproduced*, *partly*, *not reproduced*, or *not
attempted* (the chapter computes nothing for it, or did not record it at this scale).
The page ``book/replication.md`` builds its table with :func:`assess`; nothing in it is
typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from .. import paper

__all__ = ["VERDICTS", "Row", "ROWS", "Verdict", "assess", "CHAPTERS"]

VERDICTS = ("reproduced", "partly", "not reproduced", "not attempted")

#: The chapters whose results the rows read, in the book's order.
CHAPTERS = ("01_quartic_loss", "02_gradient_flow", "03_wikipedia_mstar", "04_training",
            "05_word2vec", "06_linear_representations", "07_ablations")


@dataclass(frozen=True)
class Row:
    """One result of the paper and how the book's value is judged against it.

    ``ours`` is a key of the chapter's glued values, or a function of them (for a
    derived quantity such as a difference of two overlaps).  ``rule``:

    * ``"close"``: reproduced if ``|ours - paper| <= tol``, partly if ``<= partly``;
    * ``"at_most"`` / ``"at_least"``: reproduced if ``ours <= tol`` (``>= tol``),
      partly if ``ours <= partly`` (``>= partly``);
    * ``"true"``: reproduced if ``ours`` is true.

    ``paper`` is a key of :data:`qwem_lib.paper.PUBLISHED` (its value is the target of
    ``"close"``), or a short text for a claim with no number.  ``notes`` maps a
    verdict to the one-line reason shown with it (``{ours}``, ``{paper}``, ``{diff}``
    and the chapter's ``{tokens}`` are filled in).
    """

    id: str
    result: str
    ref: str
    chapter: str
    section: str
    ours: str | Callable[[Mapping], object]
    rule: str
    paper: str
    tol: float = 0.0
    partly: float | None = None
    fmt: str = ".3f"
    notes: Mapping[str, str] = field(default_factory=dict)
    corpus_dependent: bool = False

    def paper_value(self):
        return paper.value(self.paper) if self.paper in paper.PUBLISHED else None


@dataclass(frozen=True)
class Verdict:
    row: Row
    verdict: str
    ours: str          # formatted, "–" when not attempted
    paper: str         # formatted
    setting: str       # corpus and sizes of our run
    reason: str


def _fmt(value, spec: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def _tokens(n) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _setting(values: Mapping) -> str:
    parts = []
    if values.get("corpus"):
        parts.append(str(values["corpus"]))
    if values.get("n_tokens"):
        parts.append(f"{_tokens(values['n_tokens'])} tokens")
    if values.get("vocab_size"):
        parts.append(f"V = {values['vocab_size']:,}")
    if values.get("embed_dim"):
        parts.append(f"d = {values['embed_dim']:,}")
    return ", ".join(parts) or "–"


def _judge(row: Row, ours, target) -> str:
    if row.rule == "true":
        return "reproduced" if bool(ours) else "not reproduced"
    x = float(ours)
    if row.rule == "close":
        gap = abs(x - float(target))
        if gap <= row.tol:
            return "reproduced"
        return "partly" if row.partly is not None and gap <= row.partly else \
            "not reproduced"
    if row.rule == "at_most":
        if x <= row.tol:
            return "reproduced"
        return "partly" if row.partly is not None and x <= row.partly else \
            "not reproduced"
    if row.rule == "at_least":
        if x >= row.tol:
            return "reproduced"
        return "partly" if row.partly is not None and x >= row.partly else \
            "not reproduced"
    raise ValueError(f"unknown rule {row.rule!r}")


_DEFAULT_NOTES = {
    "reproduced": "within the tolerance",
    "partly": "outside the tolerance, within the looser band",
    "not reproduced": "outside both bands",
    "not attempted": "the book computes nothing for this result yet",
}


def _amount(x: float, row: Row) -> str:
    if row.fmt.endswith("%"):
        return f"{x * 100:g} points" if row.rule == "close" else format(x, ".0%")
    return format(x, "g")


def _tolerance(row: Row) -> str:
    if row.rule == "true":
        return ""
    sign = {"close": "±", "at_most": "≤ ", "at_least": "≥ "}[row.rule]
    text = f"tolerance {sign}{_amount(row.tol, row)}"
    if row.partly is not None:
        text += f", partly {sign}{_amount(row.partly, row)}"
    return text


def _diff(diff, row: Row) -> str:
    if diff is None:
        return "–"
    if row.fmt.endswith("%"):
        return f"{diff * 100:+.1f} points"
    return format(diff, "+" + row.fmt.lstrip("+"))


def assess(row: Row, chapters: Mapping[str, Mapping | None]) -> Verdict:
    """The verdict of ``row`` given each chapter's glued values (None: the chapter
    has no complete results at this scale)."""
    values = chapters.get(row.chapter) or {}
    target = row.paper_value()
    paper_text = _fmt(target, row.fmt) if target is not None else row.paper
    try:
        ours = row.ours(values) if callable(row.ours) else values.get(row.ours)
    except (KeyError, TypeError):
        ours = None
    if ours is None:
        why = row.notes.get("not attempted", _DEFAULT_NOTES["not attempted"])
        if chapters.get(row.chapter) is None and row.chapter:
            why = f"{row.chapter} has no complete results at this scale"
        return Verdict(row, "not attempted", "–", paper_text, "–", why)
    verdict = _judge(row, ours, target)
    diff = (float(ours) - float(target)) if (target is not None and row.rule == "close"
                                              and not isinstance(ours, bool)) else None
    reason = row.notes.get(verdict, _DEFAULT_NOTES[verdict])
    reason = reason.format(ours=_fmt(ours, row.fmt), paper=paper_text,
                           diff=_diff(diff, row), tokens=_tokens(values.get("n_tokens")),
                           paper_tokens=_tokens(paper.value("corpus_tokens")))
    if verdict != "reproduced" and row.corpus_dependent:
        reason += (f"; our corpus has {_tokens(values.get('n_tokens'))} tokens, the "
                   f"paper's {_tokens(paper.value('corpus_tokens'))}")
    tolerance = _tolerance(row)
    return Verdict(row, verdict, _fmt(ours, row.fmt), paper_text, _setting(values),
                   reason + (f" ({tolerance})" if tolerance else ""))


# ----------------------------------------------------------------------------------
# the rows, in the paper's order
# ----------------------------------------------------------------------------------

def _notes(text: str, failed: str | None = None) -> dict[str, str]:
    """The same reason for every verdict but *not reproduced* (``failed``, if given)."""
    return {"reproduced": text, "partly": text, "not reproduced": failed or text}


def _fig3b_rows() -> list[Row]:
    names = {"word2vec": "word2vec", "qwem": "QWEM", "mstar": "svd(M⋆)",
             "ppmi": "svd(PPMI)", "pmi": "svd(PMI)"}
    where = {"word2vec": ("05_word2vec", "sec-ch05-benchmarks"),
             "qwem": ("04_training", "sec-ch04-benchmarks"),
             "mstar": ("03_wikipedia_mstar", "sec-ch03-benchmarks"),
             "ppmi": ("03_wikipedia_mstar", "sec-ch03-benchmarks"),
             "pmi": ("03_wikipedia_mstar", "sec-ch03-benchmarks")}
    bench = {"analogy": ("Google analogies", ".1%", 0.03, 0.10),
             "men": ("MEN", ".3f", 0.03, 0.08),
             "ws353": ("WS353", ".3f", 0.03, 0.08)}
    rows = []
    for b, (bname, fmt, tol, partly) in bench.items():
        for m in paper.BENCHMARK_METHODS:
            chapter, section = where[m]
            rows.append(Row(
                id=f"fig3b_{m}_{b}", result=f"{bname}, {names[m]}", ref="Fig. 3b",
                chapter=chapter, section=section, ours=f"fig3b_{m}_{b}", rule="close",
                paper=f"fig3b_{m}_{b}", tol=tol, partly=partly, fmt=fmt,
                corpus_dependent=True,
                notes={"reproduced": "{ours} against {paper}",
                       "partly": "{ours} against {paper} ({diff})",
                       "not reproduced": "{ours} against {paper} ({diff})",
                       "not attempted": "this scale does not score this method"}))
    return rows


ROWS: tuple[Row, ...] = (
    Row("result3", "Result 3: from small random init the flow follows the aligned "
        "sigmoids, mode k learned at τ_k", "Sec. 3", "02_gradient_flow",
        "sec-ch02-sequential", "flow_halftime_err", "at_most", "agree", tol=0.15,
        partly=0.3, fmt=".1%",
        notes={"reproduced": "integrated flow's half-learned times within {ours} of "
                             "the closed form's",
               "partly": "integrated flow's half-learned times within {ours}",
               "not reproduced": "half-learned times off by up to {ours}"}),
    Row("fig1", "Fig. 1: from small init, M⋆'s eigenvectors are learned one at a "
        "time, largest first", "Fig. 1", "04_training", "sec-ch04-stepwise",
        "fig1_in_order", "true", "one at a time, in order",
        notes={"reproduced": "the modes cross half their value in order",
               "not reproduced": "the modes are not learned in order"}),
    Row("fig2_small", "Fig. 2: QWEM's half-learned times follow the closed form "
        "(σ = 10⁻¹²)", "Fig. 2", "04_training", "sec-ch04-singular-values",
        "fig2_halftime_err_small", "at_most", "agree", tol=0.25, partly=0.5,
        fmt=".1%", notes=_notes("largest error {ours} over the modes checked",
                                "largest error {ours}")),
    Row("fig2_w2v_init", "Fig. 2: the same from the word2vec-style init (σ = 0.1)",
        "Fig. 2", "04_training", "sec-ch04-singular-values", "fig2_halftime_err_w2v",
        "at_most", "agree", tol=0.25, partly=0.5, fmt=".1%",
        notes=_notes("largest error {ours} over the modes checked",
                     "largest error {ours}")),
    Row("fig2_word2vec", "Fig. 2: word2vec's singular values follow QWEM's theory up "
        "to a constant factor in time", "Fig. 2", "05_word2vec", "sec-ch05-dynamics",
        "fig2_w2v_halftime_spread", "at_most", "a constant factor", tol=1.25,
        partly=2.0, fmt=".2f",
        notes=_notes("measured/theory half-times vary by ×{ours} over the modes",
                     "measured/theory half-times vary by ×{ours}")),
    Row("fig3a", "Fig. 3a: the top eigenvectors of M⋆ are topics (biographies, "
        "government, places)", "Fig. 3a", "03_wikipedia_mstar", "sec-ch03-features",
        "fig3a_topics_matched", "at_least", "feature_topics", tol=3, partly=1, fmt="d",
        notes={"reproduced": "all three of the paper's themes among our top three",
               "partly": "{ours} of the paper's three themes among our top three",
               "not reproduced": "none of the paper's themes among our top three"},
        corpus_dependent=True),
    *_fig3b_rows(),
    Row("fig3b_ranking", "Fig. 3b: on analogies svd(M⋆) beats svd(PPMI), which beats "
        "svd(PMI)", "Fig. 3b", "03_wikipedia_mstar", "sec-ch03-benchmarks",
        lambda v: v["fig3b_mstar_analogy"] > v["fig3b_ppmi_analogy"]
        > v["fig3b_pmi_analogy"], "true", "M⋆ > PPMI > PMI",
        notes={"reproduced": "same order", "not reproduced": "a different order"}),
    Row("top5", "Trained QWEM's top 5 singular vectors span M⋆'s top 5 eigenvectors",
        "Sec. 3", "04_training", "sec-ch04-singular-values", "top5_overlap", "close",
        "top5_overlap", tol=0.01, partly=0.05, fmt=".3f"),
    Row("fig4", "Fig. 4: a category's task vectors are a Marchenko–Pastur bulk plus "
        "one outlier", "Fig. 4", "06_linear_representations", "sec-ch06-mp",
        "fig4_outlier_separated", "true", "bulk + outlier",
        notes={"reproduced": "the outlier stands beyond the fitted bulk's edge",
               "not reproduced": "no outlier beyond the fitted bulk's edge"}),
    Row("fig5", "Fig. 5: word2vec's top directions are closer to svd(M⋆)'s than to "
        "svd(PPMI)'s", "Fig. 5", "05_word2vec", "sec-ch05-overlaps",
        lambda v: v["fig5_w2v_mstar_overlap"] - v["fig5_w2v_ppmi_overlap"], "at_least",
        "closer to M⋆", tol=0.0, partly=-0.02, fmt="+.3f",
        notes=_notes("overlap with svd(M⋆) minus overlap with svd(PPMI): {ours}",
                     "closer to svd(PPMI): overlap difference {ours}")),
    Row("fig6", "Fig. 6: the other categories show the same spike", "Fig. 6",
        "06_linear_representations", "sec-ch06-families",
        lambda v: v["fig6_families_with_outlier"] / v["fig6_families"], "at_least",
        "every category", tol=1.0, partly=0.5, fmt=".0%",
        notes={"reproduced": "every category has the outlier",
               "partly": "{ours} of the categories have the outlier",
               "not reproduced": "{ours} of the categories have the outlier"}),
    Row("fig7", "Fig. 7: as d grows the SNR rises then falls, its peak tracking "
        "the category's analogy accuracy", "Fig. 7", "06_linear_representations",
        "sec-ch06-snr", "fig7_tracks", "true", "SNR peak tracks accuracy",
        notes={"reproduced": "the SNR peak tracks the accuracy",
               "not reproduced": "accuracy peaks later than the SNR"}),
    Row("fig8", "Fig. 8: normalised top-1 cosine of the analogy against d", "Fig. 8",
        "06_linear_representations", "sec-ch06-snr", "fig8_top1_cosine", "true",
        "rises with d",
        notes={"not attempted": "the book does not compute the top-1 cosine yet"}),
    Row("nonneg", "About half of M⋆'s eigenvalues are non-negative (count per 10⁴ "
        "eigenvalues)", "App. A.2", "03_wikipedia_mstar", "sec-ch03-spectra",
        lambda v: v["nonneg_fraction"] * paper.value("vocab_size"), "close",
        "nonneg_eigenvalues", tol=500, partly=1500, fmt=",.0f",
        corpus_dependent=True),
    Row("power_law", "The eigenvalues of M⋆ decay as a power law, λ_k ∝ k^−0.6",
        "App. A", "03_wikipedia_mstar", "sec-ch03-spectra",
        "spectrum_exponent_mstar", "close", "spectrum_exponent", tol=0.1, partly=0.25,
        fmt="+.2f", corpus_dependent=True),
    Row("spike_mean", "Each category's spike is its mean task vector (overlap > 0.9)",
        "App. A.6", "06_linear_representations", "sec-ch06-mean",
        "spike_mean_overlap_min", "at_least", "spike_mean_overlap", tol=0.9,
        partly=0.7, fmt=".2f",
        notes=_notes("smallest overlap over the categories {ours}")),
    Row("theorem1", "Theorem 1: under Setting 3.1 the QWEM loss is (g/4)‖WWᵀ − M⋆‖² "
        "+ const", "Thm. 1", "01_quartic_loss", "sec-ch01-theorem1", "theorem1_err",
        "at_most", "an identity", tol=1e-10, fmt=".1e",
        notes={"reproduced": "largest relative error {ours} on real statistics"}),
    Row("rank_one", "With rank-one pair weights G = ggᵀ the closed form is "
        "Γ⁻¹ svd(ΓM⋆Γ)", "Sec. 3", "01_quartic_loss", "sec-ch01-rank-one",
        "rank_one_err", "at_most", "stationary, minimal", tol=1e-8, fmt=".1e",
        notes={"reproduced": "relative gradient {ours} at the closed form"}),
    Row("appc", "App. C: a sufficient condition on σ for learning in order",
        "App. C", "02_gradient_flow", "sec-ch02-appc", "appc_holds", "true",
        "sufficient",
        notes={"reproduced": "every run of the σ sweep that meets it learns one mode "
                             "at a time",
               "not reproduced": "a run that meets it does not learn one mode at a "
                                 "time"}),
    Row("pmi", "App. D.1: PMI = 2 artanh(M⋆/2)", "App. D.1", "01_quartic_loss",
        "sec-ch01-pmi", "pmi_identity_err", "at_most", "an identity", tol=1e-10,
        fmt=".1e", notes={"reproduced": "largest error {ours} over observed pairs"}),
    Row("ablation", "Stepwise learning comes from Setting 3.1's reweighting, not from "
        "the quartic approximation", "App. (ablation)", "07_ablations", "sec-ch07-stepwise",
        lambda v: bool(v["ablation_reweighting_stepwise"])
        and not v["ablation_quartic_needed"], "true", "from the reweighting",
        notes={"reproduced": "reweighted losses learn stepwise, quartic or not",
               "not reproduced": "{ours}"}),
    Row("coverage", "The top 10⁴ words cover 87% of the tokens", "Sec. 4",
        "03_wikipedia_mstar", "sec-ch03-corpus", "vocab_coverage", "close",
        "vocab_coverage", tol=0.02, partly=0.06, fmt=".1%", corpus_dependent=True),
)
