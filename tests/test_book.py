"""The book's sources agree with each other.

Chapter pairs (``book/NN_topic.md`` and its ``.ipynb`` for Colab) hold the same cells and
no outputs; every chapter opens with the Colab link, the hidden setup cell and the
``QWEM_SCALE`` configuration cell; the table of contents names existing files; every
citation key is in ``book/references.bib``.  Executing the chapters is nbval's job
(``make test``), building them jupyter-book's (``make book``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MAX_LINE = 88


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---", 4)
    if end < 0:
        return {}
    return yaml.safe_load(text[4:end]) or {}


def _chapters() -> list[Path]:
    """Chapter sources: ``book/NN_*.md`` with a jupytext header."""
    return [p for p in sorted(BOOK.glob("[0-9][0-9]_*.md")) if "jupytext" in _front_matter(p)]


CHAPTERS = _chapters()
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"]["branch"]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)

    walk(toc)
    return files


def _cells(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    import jupytext

    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ())))
            for c in nb.cells]


def _code_cells(md: Path):
    import jupytext

    return [c for c in jupytext.read(md).cells if c.cell_type == "code"]


chapter = pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
# every jupytext page with a notebook twin: the chapters and the replication page
PAIRED = [p for p in sorted(BOOK.glob("*.md")) if "jupytext" in _front_matter(p)]


@pytest.mark.parametrize("md", PAIRED, ids=[p.stem for p in PAIRED])
def test_chapter_notebook_matches_markdown(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.relative_to(ROOT)} is missing: run `make sync`"
    assert _cells(ipynb) == _cells(md), (
        f"{ipynb.relative_to(ROOT)} differs from {md.name}: run `make sync`")


@chapter
def test_chapter_notebook_has_no_outputs(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"cell {i} of {md.stem}.ipynb has outputs: run `make sync`")


@chapter
def test_chapter_uses_python3_kernel(md):
    assert _front_matter(md).get("kernelspec", {}).get("name") == "python3"


@chapter
def test_chapter_is_in_toc(md):
    stem = md.relative_to(ROOT).with_suffix("").as_posix()
    assert stem in _toc_files(), f"{stem} is not in _toc.yml: it would not be built"


@chapter
def test_chapter_has_colab_link(md):
    org_repo = REPO_URL.split("github.com/", 1)[1]
    link = (f"https://colab.research.google.com/github/{org_repo}/blob/{BRANCH}/"
            f"{md.relative_to(ROOT).with_suffix('.ipynb').as_posix()}")
    text = md.read_text(encoding="utf-8")
    assert f"[Open in Colab]({link})" in text, f"no Colab link to {link}"
    assert "colab-badge.svg" not in text      # an external image: broken offline


@chapter
def test_chapter_setup_cell(md):
    setup = _code_cells(md)[0]
    src = setup.source
    assert "remove-cell" in setup.metadata.get("tags", []), "setup cell must be hidden"
    assert '"google.colab" in sys.modules' in src, "install only when in Colab"
    assert f'REPOSITORY = "{REPO_URL}"' in src, f"Colab install must use {REPO_URL}"
    assert 'f"git+{REPOSITORY}"' in src
    # a failed install is one readable line, not a CalledProcessError traceback
    assert "check=True" not in src and "raise SystemExit(" in src
    assert "device = book.setup()" in src   # figure style, seeds, CUDA when available


@chapter
def test_chapter_reads_scale(md):
    cells = _code_cells(md)
    assert "SCALE = book.scale()" in cells[1].source, (
        "the configuration cell (the first visible one) must read the scale switch")


@chapter
def test_chapter_code_lines_are_short(md):
    long = [line for c in _code_cells(md) for line in c.source.splitlines()
            if len(line) > MAX_LINE]
    assert not long, f"code lines longer than {MAX_LINE} characters: {long}"


MAX_CELL = 30  # lines of a code cell: one idea, no scrolling (helpers live in qwem_lib)


@chapter
def test_chapter_code_cells_are_short(md):
    long = [f"{len(c.source.splitlines())} lines: {c.source.splitlines()[0][:60]}"
            for c in _code_cells(md) if len(c.source.splitlines()) > MAX_CELL]
    assert not long, f"code cells longer than {MAX_CELL} lines: {long}"


def test_toc_files_exist():
    suffixes = (".md", ".ipynb", ".rst")
    missing = [f for f in _toc_files()
               if not any((ROOT / f).with_suffix(s).exists() for s in suffixes)]
    assert not missing, f"_toc.yml names missing files: {missing}"


def test_references_parse_and_cover_citations():
    from pybtex.database import parse_file

    keys = set(parse_file(str(BOOK / "references.bib"), bib_format="bibtex").entries)
    cite = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")
    cited = {
        (path.name, key.strip())
        for path in BOOK.glob("*.md")
        for group in cite.findall(path.read_text(encoding="utf-8"))
        for key in group.split(",")
    }
    unknown = sorted((name, key) for name, key in cited if key not in keys)
    assert not unknown, f"cited keys missing from references.bib: {unknown}"


def test_plotting_import_is_free():
    """Importing qwem_lib.plotting neither needs nor loads matplotlib."""
    code = ("import sys, qwem_lib.plotting; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_book_times_reports_each_chapter(tmp_path, capsys):
    """bench/book_times.py: seconds from the execution cache, this build vs earlier."""
    import datetime as dt
    import importlib.util
    import time

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    spec = importlib.util.spec_from_file_location(
        "book_times", ROOT / "bench" / "book_times.py")
    book_times = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book_times)

    book = tmp_path / "book"
    book.mkdir()
    cache = get_cache(str(tmp_path / "cache"))
    for name, seconds in (("01_a", 12.25), ("02_b", 3600.0)):
        (book / f"{name}.md").write_text("# x\n")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(name)])
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(book / f"{name}.md"),
                          data={"execution_seconds": seconds}), check_validity=False)
    (book / "03_c.md").write_text("# failed\n")
    rows = book_times.chapter_times(tmp_path / "cache", sorted(book.glob("*.md")))
    assert [(n, s) for n, s, _ in rows] == [("01_a", 12.25), ("02_b", 3600.0),
                                            ("03_c", None)]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for _, _, created in rows[:2]:
        assert abs((created.replace(tzinfo=None) - now).total_seconds()) < 60

    args = ["--cache", str(tmp_path / "cache"), "--book", str(book)]
    assert book_times.main(args + ["--since", str(time.time() - 60)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"01_a\s+12\s+executed", out)
    assert re.search(r"02_b\s+3600\s+executed", out)
    assert re.search(r"03_c\s+-\s+not executed", out)
    assert re.search(r"executed in this build\s+3612", out)
    book_times.main(args + ["--since", str(time.time() + 60)])   # built earlier
    out = capsys.readouterr().out
    assert re.search(r"01_a\s+12\s+from the cache", out)
    assert re.search(r"executed in this build\s+0\b", out)


def test_figures_fill_the_text_column():
    """Every figure is scaled to the page: multi-panel figures to the column's width,
    single panels to at least MIN_WIDTH, panel shapes kept."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qwem_lib import plotting

    for args, kw, width in [((3,), {}, plotting.PAGE_WIDTH),
                            ((2, 2), {}, plotting.PAGE_WIDTH),
                            ((1,), {}, plotting.MIN_WIDTH),
                            ((1,), {"panel_size": (8, 3)}, plotting.PAGE_WIDTH),
                            ((5,), {"panel_size": (2.8, 2.6)}, plotting.PAGE_WIDTH)]:
        fig, _ = plotting.new_figure(*args, **kw)
        w, h = fig.get_size_inches()
        pw, ph = kw.get("panel_size", plotting.PANEL_SIZE)
        ncols, nrows = (args + (1,))[:2]
        assert w == pytest.approx(width)
        assert (w / ncols) / (h / nrows) == pytest.approx(pw / ph)   # shape kept
        plt.close(fig)


def test_book_table_renders_markdown():
    from qwem_lib import book

    md = book.table([("svd(M*)", 0.5034, None), ("a|b", 0.25, 12)],
                    ["method", "analogies", "time (s)"], formats=["", ".1%", ".0f"])
    lines = md.data.splitlines()
    assert lines[0] == "| method | analogies | time (s) |"
    assert lines[1] == "|:---|---:|---:|"                 # numbers right-aligned
    assert lines[2] == "| svd(M*) | 50.3% | – |"
    assert lines[3] == "| a\\|b | 25.0% | 12 |"
    with pytest.raises(ValueError, match="3 cells"):
        book.table([(1, 2)], ["a", "b", "c"])


def test_book_scale_switch(monkeypatch):
    from qwem_lib import book
    from qwem_lib.runtime.errors import QwemError

    monkeypatch.delenv("QWEM_SCALE", raising=False)
    assert book.scale() == "full"
    monkeypatch.setenv("QWEM_SCALE", "small")
    assert book.scale() == "small"
    monkeypatch.setenv("QWEM_SCALE", "huge")
    with pytest.raises(QwemError, match="QWEM_SCALE"):
        book.scale()


# ----------------------------------------------------------------------------------
# every number the prose states is glued
# ----------------------------------------------------------------------------------

#: Words after which a number names a part of the paper or of the book, or a version:
#: "Setting 3.1", "App. A.2", "Figures 1–8", "eq. (4.2)", "Python 3.11".
_REFERENCE = re.compile(
    r"(?:Setting|Settings|Sec\.|Section|Sections|App\.|Appendix|Fig\.|Figs\.|Figure|"
    r"Figures|Table|Tables|Eq\.|eq\.|Theorem|Lemma|Proposition|Result|Definition|"
    r"Algorithm|§|[Cc]hapter|[Cc]hapters|Python|version|v)\s*\(?$")
#: A decimal number, a percentage, a number with thousands separators, or a size
#: such as "70M" / "2B" (an integer or a word such as "sixfold" is not caught).
_NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+)"
                     r"(?:\s?%|(?=[MBk]\b)[MBk])?(?![\w])")


def _prose(text: str) -> str:
    """A chapter's Markdown without what is not prose a number could be typed into:
    front matter, code and directive blocks, math, inline code and roles (``{glue}``,
    ``{cite}``, ``{eq}``...), labels, comments and link targets."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1\s*$", "", text, flags=re.S | re.M)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$(?:\s*\([\w-]+\))?", " ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$\n]+?(?<!\\)\$", " ", text)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)     # roles: glue, cite, eq, ref
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"^\([\w-]+\)=\s*$", "", text, flags=re.M)
    text = re.sub(r"\]\([^)]*\)", "]", text)            # link targets
    return text


def unglued_numbers(text: str) -> list[str]:
    """Decimal numbers, percentages, grouped integers and M/B/k sizes typed into the
    prose of ``text`` (a chapter's MyST source), each with a little context.  Plain
    integers are allowed (counts of chapters, "top 3", years); a number right after a
    reference word (Setting 3.1, App. A.2, Figure 3b, Python 3.11) is a citation."""
    prose = _prose(text)
    found = []
    for m in _NUMBER.finditer(prose):
        token = m.group(0)
        plain_int = re.fullmatch(r"\d+", token) is not None
        if plain_int:
            continue
        if _REFERENCE.search(prose[max(0, m.start() - 20):m.start()]):
            continue
        found.append(prose[max(0, m.start() - 25):m.end() + 10].replace("\n", " "))
    return found


PROSE = sorted(BOOK.glob("*.md"))


@pytest.mark.parametrize("md", PROSE, ids=[p.stem for p in PROSE])
def test_prose_numbers_are_glued(md):
    """Every decimal, percentage or grouped number in a page's prose is glued from
    the cell that computed it (or from qwem_lib.paper), in math, or a citation."""
    found = unglued_numbers(md.read_text(encoding="utf-8"))
    assert not found, (f"{md.name} types numbers into its prose; glue them "
                       f"(book.Results.glue, {{glue:text}}): {found}")


def test_planted_prose_number_is_found():
    """The check above catches a number typed into the prose, and only that."""
    md = BOOK / "01_quartic_loss.md"
    text = md.read_text(encoding="utf-8")
    assert unglued_numbers(text) == []
    planted = text.replace("\n## ", "\nThe closed form scores 62.1% here.\n\n## ", 1)
    assert any("62.1%" in hit for hit in unglued_numbers(planted))
    for number in ("0.0702", "4,911", "70M", "3.5"):
        hits = unglued_numbers(f"Para one.\n\nIt gives {number} on the test.\n")
        assert len(hits) == 1 and number in hits[0], (number, hits)
    allowed = ("Setting 3.1 and App. A.2 and Figure 3b; Python 3.11.",
               "glued {glue:text}`acc:.1%` and math $0.5 x^2$ and $$\n1.5\n$$ (eq-a)",
               "```{code-cell} ipython3\nx = 0.25\n```", "top 3 of 200 modes in 2025")
    for text in allowed:
        assert unglued_numbers(text) == [], text


def test_point_at_repository_rewrites_links_and_install_lines(tmp_path):
    """One place for the address: _config.yml's repository, copied by make sync into
    each chapter's Colab link and install line (idempotent; a bad url refused)."""
    import shutil

    from qwem_lib import book
    from qwem_lib.runtime.errors import QwemError

    (tmp_path / "book").mkdir()
    for name in ("01_quartic_loss.md", "05_word2vec.md"):
        shutil.copy(ROOT / "book" / name, tmp_path / "book" / name)
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    (tmp_path / "_config.yml").write_text(
        config.replace(f"url: {REPO_URL}", "url: https://github.com/someone/fork")
        .replace(f"branch: {BRANCH}", "branch: dev"), encoding="utf-8")
    changed = book.point_at_repository(tmp_path)
    assert sorted(p.name for p in changed) == ["01_quartic_loss.md", "05_word2vec.md"]
    for md in changed:
        text = md.read_text(encoding="utf-8")
        assert REPO_URL not in text
        assert ("[Open in Colab](https://colab.research.google.com/github/someone/fork"
                f"/blob/dev/book/{md.stem}.ipynb)") in text
        assert 'REPOSITORY = "https://github.com/someone/fork"' in text
    assert book.point_at_repository(tmp_path) == []          # nothing left to change
    (tmp_path / "_config.yml").write_text(
        config.replace(f"url: {REPO_URL}", "url: ftp://example.org/x"), encoding="utf-8")
    with pytest.raises(QwemError, match="repository must have url"):
        book.point_at_repository(tmp_path)
