"""The book's computed numbers (qwem_lib.book.Results), the paper's table
(qwem_lib.paper) and the verdicts of the page "The paper, result by result"
(qwem_lib.book.ledger)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qwem_lib import book, paper
from qwem_lib.book import ledger

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


# ---------------------------------------------------------------- Results -------

def test_results_round_trip(tmp_path):
    R = book.Results("03_x", scale_name="small", directory=tmp_path)
    import numpy as np
    import torch

    assert R.glue("acc", np.float64(0.625)) == np.float64(0.625)
    R.glue("n", np.int64(4911))
    R.glue("ahead", torch.tensor(True))
    R.glue("verdict", "level")
    # not complete until done(): a chapter that failed half way is not read
    assert book.load_results("03_x", scale_name="small", directory=tmp_path) is None
    R.done()
    values = book.load_results("03_x", scale_name="small", directory=tmp_path)
    assert values == {"acc": 0.625, "n": 4911, "ahead": True, "verdict": "level"}
    assert type(values["n"]) is int and type(values["ahead"]) is bool
    # another scale, or results of other code, are not read
    assert book.load_results("03_x", scale_name="full", directory=tmp_path) is None
    path = tmp_path / "small" / "03_x.json"
    data = json.loads(path.read_text())
    data["code"] = "0" * 20
    path.write_text(json.dumps(data))
    assert book.load_results("03_x", scale_name="small", directory=tmp_path) is None


def test_results_start_afresh(tmp_path):
    R = book.Results("04_y", scale_name="small", directory=tmp_path)
    R.glue("a", 1)
    R.done()
    book.Results("04_y", scale_name="small", directory=tmp_path)   # a new run
    assert book.load_results("04_y", scale_name="small", directory=tmp_path) is None


def test_results_refuse_what_cannot_be_glued(tmp_path):
    R = book.Results("05_z", scale_name="small", directory=tmp_path)
    with pytest.raises(ValueError, match="non-finite"):
        R.glue("x", float("nan"))
    with pytest.raises(TypeError, match="number, a bool or a string"):
        R.glue("x", [1, 2])
    with pytest.raises(ValueError, match="glue keys"):
        R.glue("a b", 1)


# ---------------------------------------------------------------- paper -------

def test_paper_table():
    assert paper.value("fig3b_mstar_analogy") == pytest.approx(0.663)
    assert paper.value("fig3b_pmi_analogy") == pytest.approx(0.084)
    assert paper.ref("nonneg_eigenvalues") == "App. A.2"
    for m in paper.BENCHMARK_METHODS:
        for b in paper.BENCHMARKS:
            v = paper.value(f"fig3b_{m}_{b}")
            assert 0 < v < 1 and paper.ref(f"fig3b_{m}_{b}") == "Fig. 3b"
    with pytest.raises(KeyError, match="no 'nope'"):
        paper.value("nope")


# ---------------------------------------------------------------- ledger -------

def _row(rule, tol, partly=None, paper_key="fig3b_mstar_analogy", fmt=".3f"):
    return ledger.Row("t", "test", "Fig. 0", "01_a", "sec-a", "x", rule, paper_key,
                      tol=tol, partly=partly, fmt=fmt)


@pytest.mark.parametrize("rule, tol, partly, ours, verdict", [
    ("close", 0.03, 0.10, 0.663, "reproduced"),
    ("close", 0.03, 0.10, 0.634, "reproduced"),        # 0.029 off
    ("close", 0.03, 0.10, 0.632, "partly"),            # 0.031 off
    ("close", 0.03, 0.10, 0.764, "not reproduced"),    # 0.101 off
    ("close", 0.03, None, 0.60, "not reproduced"),
    ("at_most", 0.25, 0.5, 0.25, "reproduced"),
    ("at_most", 0.25, 0.5, 0.3, "partly"),
    ("at_most", 0.25, 0.5, 0.6, "not reproduced"),
    ("at_least", 0.9, 0.7, 0.95, "reproduced"),
    ("at_least", 0.9, 0.7, 0.8, "partly"),
    ("at_least", 0.9, 0.7, 0.5, "not reproduced"),
    ("true", 0, None, True, "reproduced"),
    ("true", 0, None, False, "not reproduced"),
])
def test_verdict_rules(rule, tol, partly, ours, verdict):
    v = ledger.assess(_row(rule, tol, partly), {"01_a": {"x": ours}})
    assert v.verdict == verdict


def test_missing_results_are_not_attempted():
    row = _row("close", 0.03)
    assert ledger.assess(row, {"01_a": {}}).verdict == "not attempted"
    v = ledger.assess(row, {"01_a": None})
    assert v.verdict == "not attempted" and "no complete results" in v.reason


def test_reason_names_the_gap_and_the_corpus():
    row = ledger.ROWS[[r.id for r in ledger.ROWS].index("fig3b_mstar_analogy")]
    v = ledger.assess(row, {"03_wikipedia_mstar": {"fig3b_mstar_analogy": 0.621,
                                                   "n_tokens": 70_300_000,
                                                   "corpus": "enwiki2015"}})
    assert v.verdict == "partly"
    assert v.ours == "62.1%" and v.paper == "66.3%"
    assert "-4.2 points" in v.reason and "70.3M tokens" in v.reason
    assert "2.0B" in v.reason and v.setting.startswith("enwiki2015, 70.3M tokens")


def test_rows_are_well_formed():
    ids = [r.id for r in ledger.ROWS]
    assert len(ids) == len(set(ids))
    for r in ledger.ROWS:
        assert r.chapter in ledger.CHAPTERS
        assert r.rule in ("close", "at_most", "at_least", "true")
        if r.rule == "close":
            assert r.paper in paper.PUBLISHED, r.id
        assert (BOOK / f"{r.chapter}.md").is_file()
    # the results the issue names, one row each at least
    for needed in ["fig1", "fig2_small", "fig3a", "fig3b_mstar_analogy", "fig4",
                   "fig5", "fig6", "fig7", "fig8", "nonneg", "spike_mean",
                   "power_law", "rank_one", "appc", "pmi"]:
        assert needed in ids
    for m in paper.BENCHMARK_METHODS:
        for b in paper.BENCHMARKS:
            assert f"fig3b_{m}_{b}" in ids


def test_rows_link_to_existing_sections():
    """Every row's section label exists in its chapter (the page links to it)."""
    for r in ledger.ROWS:
        text = (BOOK / f"{r.chapter}.md").read_text(encoding="utf-8")
        assert re.search(rf"^\({re.escape(r.section)}\)=\s*$", text, re.M), (
            f"{r.chapter}.md has no label ({r.section})= for row {r.id}")


# ------------------------------------------------------ glue keys in the prose ---

_GLUE_USE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")


def _glued_keys(md: Path) -> set[str]:
    """Keys a page's code glues: the literal or f-string key of a ``.glue(`` call,
    and any string literal (keys glued in a loop, ``for key in ("a", "b")``)."""
    text = md.read_text(encoding="utf-8")
    calls = set(re.findall(r"""\.glue\(\s*f?["']([^"'\n]+)["']""", text))
    return calls | set(re.findall(r"""["'](\w+)["']""", text))


@pytest.mark.parametrize("md", sorted(BOOK.glob("*.md")), ids=lambda p: p.stem)
def test_glued_keys_exist(md):
    """Every {glue:text}`key` the prose pastes is glued by a cell (of this page, or
    of the page it names with ``page::key``)."""
    text = md.read_text(encoding="utf-8")
    for use in _GLUE_USE.findall(text):
        where, _, key = use.rpartition("::") if "::" in use else ("", "", use)
        key = key.split(":", 1)[0]
        where = where[:-3] if where.endswith(".md") else where
        page = (md.parent / f"{where}.md") if where else md
        assert page.is_file(), f"{md.name}: glue from a missing page {where!r}"
        keys = _glued_keys(page)
        templated = [k for k in keys if "{" in k]
        assert key in keys or any(re.fullmatch(re.sub(r"\{[^}]*\}", r"\\w+", k), key)
                                  for k in templated), (
            f"{md.name} pastes {use!r} but {page.name} glues no {key!r}")


def test_a_key_holds_one_value(tmp_path):
    R = book.Results("06_w", scale_name="small", directory=tmp_path)
    R.glue("x", 0.5)
    R.glue("x", 0.5)                                   # the same value: fine
    with pytest.raises(ValueError, match="already glued"):
        R.glue("x", 0.25)
