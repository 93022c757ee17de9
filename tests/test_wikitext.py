"""qwem_lib.corpus.wikitext.strip_markup: each construct by hand, bad input, and agreement
with mwparserfromhell on a real (shortened) English Wikipedia dump."""

import importlib.util
import io
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from qwem_lib import corpus
from qwem_lib.corpus.wikitext import strip_markup
from qwem_lib.runtime.errors import QwemError

ROOT = Path(__file__).resolve().parents[1]


def words(wikitext: str, **kwargs) -> list[str]:
    return corpus.normalise(strip_markup(wikitext, **kwargs), "paper").split()


# --------------------------------------------------------------------------------------
# Each construct, worked by hand


@pytest.mark.parametrize("wikitext, want", [
    # templates: dropped, nested to any depth, multi-line infoboxes, parameters
    ("a {{citation needed}} b", "a b"),
    ("a {{x|{{y|{{z|deep}}}}|w}} b", "a b"),
    ("{{Infobox person\n| name = Ada\n| image = {{img|a.jpg}}\n| born = {{birth date"
     "|1815|12|10}}\n}}\n'''Ada''' was a mathematician.", "ada was a mathematician"),
    ("{{{param|default}}} x", "x"),
    ("a {{outer|{{inner}}", "a outer"),  # unclosed: kept as text, inner dropped
    # wikilinks
    ("the [[capital city|capital]] of [[France]]", "the capital of france"),
    ("[[link]]s and [[a|b]]es", "links and bes"),
    ("[[Foo (bar)|]]", "foo bar"),  # pipe trick: the target
    ("[[:Category:Foo]]", "category foo"),  # a leading colon: an ordinary link
    ("[[wikt:word|word]] [[Star Trek: Voyager]]", "word star trek voyager"),
    # files: the caption (last non-option field, nested links resolved), alt text
    ("[[File:x.jpg|thumb|200px|A caption with [[link]]s]]", "a caption with links"),
    ("[[Image:x.png|left|upright=1.2|x150px|The [[Eiffel Tower|tower]], "
     "[http://x.org seen] at ''night'']]", "the tower seen at night"),
    ("[[File:x.jpg|thumb|alt=A dog|Rex]]", "a dog rex"),
    ("[[File:x.jpg|thumb|200px|right]] text", "text"),  # options only: nothing
    ("[[File:x.jpg]]", ""),
    # categories (name kept, prefix dropped) and interlanguage links (dropped)
    ("[[Category:Foo bar]][[Category:Baz|sort key]]", "foo bar baz"),
    ("[[de:Anarchismus]] [[be-x-old:Анархізм]] end", "end"),
    # tables: attributes and syntax go, cell text stays
    ('{| class="wikitable sortable"\n|+ The caption\n|-\n! scope="col" | Name !! Age'
     '\n|-\n| style="text-align:left" | cell || two\n| colspan="2" | wide\n|}',
     "the caption name age cell two wide"),
    ("before\n{|\n|-\n|a||b\n|}\nafter", "before a b after"),
    ("{{Infobox|x=\n{|\n|in a table in a template\n|}\n}}kept", "kept"),
    # references: text kept (as mwparserfromhell does), citation templates dropped
    ("word.<ref>Smith, ''Book''.</ref> next", "word smith book next"),
    ('a<ref name="x">{{cite web|url=http://x.org|title=T}}</ref>b<ref name="x" />c',
     "a b c"),
    ("x<references />y", "x y"),
    # comments
    ("a<!-- hidden [[x]] {{y}} -->b", "ab"),
    ("a <!-- unterminated, to the end", "a"),
    # invisible tags and their contents
    ("a <math>x^2 + {{y}}</math> b", "a b"),
    ("a<gallery>\nFile:a.jpg|Caption\n</gallery>b", "a b"),
    ("a<timeline>\nImageSize = width:100\n</timeline>b", "a b"),
    ("a <syntaxhighlight lang=python>print(x)</syntaxhighlight> b", "a b"),
    # other tags: dropped, contents kept
    ("<small>small</small> <span style='color:red'>red</span> x<sup>2</sup>",
     "small red x"),
    ("<div class=\"c\">block</div> a<br />b <nowiki>[[raw]]</nowiki>",
     "block a b raw"),
    ("H<sub>2</sub>O", "h o"),
    # headings, lists, bold and italic
    ("== History ==\ntext\n=== Early life ===", "history text early life"),
    ("* one\n** two\n# three\n: four\n; term : def", "one two three four term def"),
    ("'''bold''', ''italic'' and '''''both'''''", "bold italic and both"),
    # external links and URLs
    ("see [http://x.org Some text] and [https://y.org/p?q=1]", "see some text and"),
    ("at http://www.example.com/page.html today", "at today"),
    ("[//example.org protocol relative]", "protocol relative"),
    # entities and magic words
    ("a&nbsp;b &amp; c &lt;d&gt; caf&eacute;", "a b c d caf"),
    ("__TOC__ start __NOTOC__", "start"),
])
def test_constructs(wikitext, want):
    assert " ".join(words(wikitext)) == want


def test_plain_text_is_kept_verbatim_apart_from_the_ends():
    text = "Plain prose, with punctuation: (brackets) and 1984's numbers!\nNext line."
    assert strip_markup("\n" + text + "\n") == text


def test_outputs_plain_text():
    got = strip_markup("'''Paris''' is the [[capital city|capital]] of "
                       "[[France]].{{citation needed}}<ref>{{cite web}}</ref>")
    assert got == "Paris is the capital of France."
    assert strip_markup("a&nbsp;b") == "a b"
    assert strip_markup("&#233;t&eacute; &lt;ref&gt;") == "été <ref>"


def test_references_can_be_dropped():
    text = 'a<ref name="x">Smith, p. 4.</ref>b<ref name="y"/>c<ref>d</ref> e'
    assert words(text) == ["a", "smith", "p", "b", "c", "d", "e"]
    assert words(text, keep_refs=False) == ["a", "b", "c", "e"]
    assert words("a<references>\n<ref name=x>R</ref>\n</references>b",
                 keep_refs=False) == ["a", "b"]


def test_unclosed_tags_drop_only_the_tag():
    assert words("a <math>x b") == ["a", "x", "b"]
    assert words("a <ref>b c", keep_refs=False) == ["a", "b", "c"]


def test_stray_closers_are_harmless():
    assert words("a}} b ]] c |} d ]] e") == ["a", "b", "c", "d", "e"]


# --------------------------------------------------------------------------------------
# Bad input: terminates quickly, never raises

N = 200_000


@pytest.mark.parametrize("name, text", [
    ("unmatched {{", "{{" * N),
    ("unmatched [[", "[[" * N),
    ("unmatched [[ with text", "[[a " * N),
    ("unmatched }} and ]]", "}}]]" * N),
    ("deeply nested {{ }}", "{{" * N + "}}" * N),
    ("deeply nested [[ | ]]", "[[a|" * N + "]]" * N),
    ("nested file links", "[[File:a.jpg|" * N + "]]" * N),
    ("unmatched {|", "{|\n" * N),
    ("unterminated comments", "<!--" * N),
    ("unclosed refs", "<ref>" * N + "<ref name=" * N),
    ("unclosed math then one closer", "<math>" * N + "</math>"),
    ("unclosed tags", "<b " * N),
    ("unclosed external links", "[http://a.org " * N),
    ("long = run", "=a" + "=" * (10 * N) + "b"),
    ("many pipes", "\n|" + "|x|" * N),
    ("everything unbalanced", "{{[[<ref>{|<!--[http://x " * (N // 10)),
])
def test_pathological_input_is_linear(name, text):
    start = time.perf_counter()
    out = strip_markup(text)
    assert isinstance(out, str)
    assert time.perf_counter() - start < 3.0, name  # about 0.1 s here


def test_random_markup_soup_never_raises():
    rng = random.Random(0)
    pieces = ["{{", "}}", "{{{", "}}}", "[[", "]]", "[", "]", "{|", "|}", "|-", "|+",
              "||", "!!", "|", "!", "<ref>", "</ref>", "<ref name=a/>", "<!--", "-->",
              "<math>", "</math>", "<b>", "</b>", "<br/>", "<", ">", "/>", "''", "'''",
              "==", "=", "\n", "*", "#", ":", ";", "&amp;", "&", "&#", "http://x.org",
              "File:", "Category:", "de:", "thumb", "200px", "alt=", "__TOC__", "a",
              "b ", " "]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        assert isinstance(strip_markup(text), str)


# --------------------------------------------------------------------------------------
# iter_mediawiki's choice of stripper

DUMP = """<mediawiki><siteinfo><sitename>W</sitename></siteinfo>
<page><title>A</title><ns>0</ns><id>1</id><revision><id>1</id><text>\
'''A''' is a [[letter]].{{stub}}
[[File:A.svg|thumb|The letter]]</text></revision></page>
</mediawiki>"""


@pytest.mark.parametrize("markup, want", [
    ("fast", "a is a letter the letter"),
    ("mwparserfromhell", "a is a letter thumb the letter"),
])
def test_iter_mediawiki_markup_choice(markup, want):
    pages = list(corpus.iter_mediawiki(io.BytesIO(DUMP.encode()), markup=markup))
    assert [corpus.normalise(p, "paper") for p in pages] == [want]


def test_iter_mediawiki_default_is_fast():
    assert (list(corpus.iter_mediawiki(io.BytesIO(DUMP.encode())))
            == list(corpus.iter_mediawiki(io.BytesIO(DUMP.encode()), markup="fast")))


def test_iter_mediawiki_unknown_markup_is_refused():
    with pytest.raises(QwemError, match="fast, mwparserfromhell"):
        next(corpus.iter_mediawiki(io.BytesIO(DUMP.encode()), markup="bogus"))


# --------------------------------------------------------------------------------------
# Agreement with mwparserfromhell on a real dump


def _markup_tokens() -> frozenset:
    spec = importlib.util.spec_from_file_location(
        "bench_wikitext", ROOT / "bench" / "wikitext.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.MARKUP_TOKENS


@pytest.fixture(scope="module")
def enwiki_counts():
    """Word counts of all the articles of gensim's shortened English dump, both ways.

    About 517,000 words (mwparserfromhell's), the whole dump: about 8 s.
    """
    gensim = pytest.importorskip("gensim")
    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data",
                        "enwiki-latest-pages-articles1.xml-p000000010p000030302-"
                        "shortened.bz2")
    if not os.path.exists(path):
        pytest.skip("gensim's test dump is not installed")
    counts = {}
    for markup in ("mwparserfromhell", "fast"):
        with corpus.open_binary(path) as fh:
            counts[markup] = Counter(
                w for page in corpus.iter_mediawiki(fh, path, markup=markup)
                for w in corpus.normalise(page, "paper").split())
    return counts["mwparserfromhell"], counts["fast"]


@pytest.mark.slow
def test_keeps_98_percent_of_mwparserfromhell_words(enwiki_counts):
    reference, ours = enwiki_counts
    total = sum(reference.values())
    assert total > 500_000
    kept = sum(min(c, ours[w]) for w, c in reference.items())
    assert kept / total >= 0.98, kept / total  # 0.990 when written


@pytest.mark.slow
def test_at_most_2_percent_of_our_words_are_not_mwparserfromhell_words(enwiki_counts):
    """Precision beside recall: a stripper that removed nothing would keep all of
    mwparserfromhell's words, and add the markup's.  Our words beyond its counts
    (per word, the excess of ours over its) are at most 2% of ours."""
    reference, ours = enwiki_counts
    total = sum(ours.values())
    extra = sum(max(0, c - reference[w]) for w, c in ours.items())
    assert extra / total <= 0.02, extra / total


@pytest.mark.slow
def test_no_more_markup_words_at_the_top_than_mwparserfromhell(enwiki_counts):
    markup = _markup_tokens()
    reference, ours = enwiki_counts
    for top in (200, 1000):
        theirs = [w for w, _ in reference.most_common(top) if w in markup]
        mine = [w for w, _ in ours.most_common(top) if w in markup]
        assert len(mine) <= len(theirs), (top, mine, theirs)
    assert "thumb" in [w for w, _ in reference.most_common(200)]  # the test bites
    assert ours["thumb"] + ours["px"] + ours["http"] < 20
