"""qwem data / qwem_lib.corpus.provenance: the named corpora rebuilt from their sources,
end to end against a file:// mirror of a small fake source (no network)."""

import hashlib
import re
from pathlib import Path

import pytest

from qwem_lib import cli
from qwem_lib.corpus import data, load_tokens, provenance

DIGITS = "zero one two three four five six seven eight nine".split()


def _doc(i, title, body):
    return f'<doc id="{i}" url="http://en.wikipedia.org/wiki?curid={i}" ' \
           f'title="{title}">\n{title}\n\n{body}\n</doc>\n'


PARTS = {
    "text/AA/wiki_00": _doc(12, "Anarchism", "Anarchism is a political philosophy.\n"
                            "In 1840, Proudhon wrote: \"Property is theft!\"")
    + _doc(25, "Autism", "Autism (ASD) affects 1 in 68 children; see §4.2."),
    "text/AA/wiki_01": _doc(39, "Albedo", "Albedo is the fraction of light "
                            "reflected; snow's is about 0.9.\n\nÉcole Polytechnique"),
    "text/AA/wiki_02": _doc(290, "A", "A is the first letter of the ISO basic Latin "
                            "alphabet. İstanbul, 3 K-types."),
}
LIMIT = 150


def reference_text8(raw: str) -> bytes:
    """The normalisation as PROVENANCE.md states it, line by line (independent of
    qwem_lib.corpus): drop <doc> lines and the title line after each, and </doc>
    lines; lowercase; digits to words; runs outside a-z to one space; join."""
    out, skip_title = [], False
    for line in raw.split("\n"):
        if line.startswith("<doc "):
            skip_title = True
            continue
        if skip_title:
            skip_title = False
            continue
        if line.startswith("</doc>"):
            continue
        line = line.lower()
        line = re.sub(r"[0-9]", lambda m: f" {DIGITS[int(m.group())]} ", line)
        line = re.sub(r"[^a-z]+", " ", line).strip()
        if line:
            out.append(line)
    text = " ".join(out).encode("ascii")
    if len(text) > LIMIT:
        head = text[:LIMIT + 1]
        text = head[:head.rfind(b" ")]
    return text


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// mirror of a three-file fake source, the recipes pointed at it (their
    own address unreachable), an empty cache and no QWEM_DATA."""
    root = tmp_path / "mirror"
    for rel, text in PARTS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text.encode("utf-8"))
    raw = "".join(PARTS.values()).encode("utf-8")
    derived = reference_text8(raw.decode("utf-8"))
    assert 0 < len(derived) <= LIMIT
    recipes = {
        "enwiki2015": provenance.Recipe(
            "enwiki2015", provenance.RECIPES["enwiki2015"].output,
            hashlib.sha256(raw).hexdigest(), len(raw), "a fake source",
            base_url="https://example.invalid/none", parts=tuple(PARTS)),
        "wiki2015-text8": provenance.Recipe(
            "wiki2015-text8", provenance.RECIPES["wiki2015-text8"].output,
            hashlib.sha256(derived).hexdigest(), len(derived), "derived",
            derived_from="enwiki2015", limit=LIMIT)}
    monkeypatch.setattr(provenance, "RECIPES", recipes)
    monkeypatch.setenv("QWEM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QWEM_DATA", raising=False)
    return root, raw, derived


def _corpora(tmp_path):
    folder = tmp_path / "cache" / "corpora"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qwem: error: "), err
    return err[0]


def test_fetch_rebuilds_enwiki2015_and_derives_wiki2015_text8(mirror, tmp_path,
                                                              capsys):
    root, raw, derived = mirror
    url = root.as_uri()
    assert cli.main(["data", "fetch", "wiki2015-text8", "--mirror", url,
                     "--quiet"]) == 0
    out = capsys.readouterr().out.strip()
    text8 = tmp_path / "cache" / "corpora" / "wiki2015_text8style_1e8.txt"
    wiki = tmp_path / "cache" / "corpora" / \
        "enwiki2015_first30729articles_wikiextractor.txt"
    assert out == str(text8)
    assert wiki.read_bytes() == raw and text8.read_bytes() == derived
    assert _corpora(tmp_path) == sorted([wiki.name, text8.name])   # no temporaries
    # the registry now finds both, and the tokens are the derived text's words
    assert data.resolve_corpus("enwiki2015", download=False)[0] == wiki
    assert cli.main(["data", "path", "wiki2015-text8"]) == 0
    assert capsys.readouterr().out.strip() == str(text8)
    words = derived.decode().split()
    tok = load_tokens("wiki2015-text8", 5, progress=False, cache=False)
    assert tok.n_tokens == len(words)
    # a second fetch reads nothing from the (now gone) mirror
    for rel in PARTS:
        (root / rel).unlink()
    assert cli.main(["data", "fetch", "enwiki2015", "--mirror", url, "--quiet"]) == 0


def test_checksum_mismatch_is_one_line_and_leaves_nothing(mirror, tmp_path,
                                                          monkeypatch, capsys):
    root, _, _ = mirror
    bad = dict(provenance.RECIPES)
    bad["enwiki2015"] = provenance.Recipe(**{**vars(bad["enwiki2015"]),
                                             "sha256": "0" * 64})
    monkeypatch.setattr(provenance, "RECIPES", bad)
    assert cli.main(["data", "fetch", "enwiki2015", "--mirror", root.as_uri(),
                     "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert "sha256" in line and "nothing was kept" in line
    assert _corpora(tmp_path) == []


def test_missing_source_file_is_one_line_and_leaves_nothing(mirror, tmp_path, capsys):
    root, _, _ = mirror
    (root / "text/AA/wiki_01").unlink()
    assert cli.main(["data", "fetch", "wiki2015-text8", "--mirror", root.as_uri(),
                     "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert "text/AA/wiki_01" in line and "nothing was kept" in line
    assert _corpora(tmp_path) == []


def test_a_source_that_derives_differently_is_refused(mirror, tmp_path, monkeypatch,
                                                      capsys):
    root, raw, _ = mirror
    bad = dict(provenance.RECIPES)
    bad["wiki2015-text8"] = provenance.Recipe(**{**vars(bad["wiki2015-text8"]),
                                                 "limit": LIMIT - 40})
    monkeypatch.setattr(provenance, "RECIPES", bad)
    assert cli.main(["data", "fetch", "wiki2015-text8", "--mirror", root.as_uri(),
                     "--quiet"]) == 2
    assert "text8 normalisation" in _one_line_error(capsys)
    # the verified source is kept; the derived file is not
    assert _corpora(tmp_path) == ["enwiki2015_first30729articles_wikiextractor.txt"]


def test_list_and_path_say_where_each_corpus_is_and_how_to_get_it(mirror, capsys):
    assert cli.main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(data.CORPORA)
    by_name = {line.split()[0]: line for line in lines}
    assert "bundled" in by_name["sample"] and "data_files" in by_name["sample"]
    assert "qwem data fetch enwiki2015" in by_name["enwiki2015"]
    assert "not on this machine" in by_name["wiki2015-text8"]
    assert "mattmahoney.net" in by_name["text8"]
    assert cli.main(["data", "path", "enwiki2015"]) == 2
    assert "qwem data fetch enwiki2015" in _one_line_error(capsys)
    assert cli.main(["data", "path", "nonsense"]) == 2
    assert "unknown corpus 'nonsense'" in _one_line_error(capsys)
    assert cli.main(["data", "fetch", "nonsense"]) == 2
    assert "unknown corpus" in _one_line_error(capsys)


def test_derive_text8_cuts_at_the_last_space(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("alpha beta gamma delta")
    n, digest = provenance.derive_text8(src, tmp_path / "out", 13, format="plain")
    assert (tmp_path / "out").read_bytes() == b"alpha beta"   # 14 bytes, cut
    assert n == 10 and digest == hashlib.sha256(b"alpha beta").hexdigest()
    n, _ = provenance.derive_text8(src, tmp_path / "all", None, format="plain")
    assert (tmp_path / "all").read_bytes() == b"alpha beta gamma delta" and n == 22


def test_the_registered_recipes():
    wiki = provenance.RECIPES["enwiki2015"]
    assert len(wiki.parts) == 400 and wiki.parts[0] == "text/AA/wiki_00"
    assert wiki.parts[-1] == "text/AD/wiki_99" and len(set(wiki.parts)) == 400
    assert "1c0fac92f29f17c1603bfffbe864e0dfdff66897" in wiki.base_url
    text8 = provenance.RECIPES["wiki2015-text8"]
    assert text8.derived_from == "enwiki2015" and text8.limit == 10**8
    assert text8.size <= text8.limit
    for recipe in provenance.RECIPES.values():     # found where fetch writes it
        assert recipe.output in data.CORPORA[recipe.name].also_accept
        assert re.fullmatch(r"[0-9a-f]{64}", recipe.sha256)
    assert Path(data.bundled_dir() / "PROVENANCE.md").is_file()
