"""A fast, forgiving MediaWiki markup stripper: wikitext in, plain text out.

:func:`strip_markup` turns the wikitext of one page of a MediaWiki XML dump into the
plain text a reader sees, for building a word corpus.  It is about fifteen
regular-expression passes over the page plus two small stack scanners (for nested
``{{ }}`` and ``[[ ]]``), so it runs in time linear in the length of the page and
many times faster than ``mwparserfromhell.parse(text).strip_code()`` (measured in
``bench/README.md``, "wikitext.py").  It is not a renderer: it drops what a word corpus does not want (templates,
mathematics, file options, table syntax, URLs) and keeps the words of the prose,
the headings, the lists, the table cells, the link texts and the image captions.

The passes, in order:

1. HTML comments ``<!-- -->`` are dropped (an unterminated one runs to the end of
   the page, as in MediaWiki).
2. Tags whose contents are not prose are dropped with their contents:
   ``mwparserfromhell``'s invisible tags (``categorytree``, ``gallery``,
   ``graph``, ``imagemap``, ``inputbox``, ``math``, ``score``, ``section``,
   ``templatedata``, ``timeline``) and source code and formulae (``source``,
   ``syntaxhighlight``, ``chem``, ``ce``, ``hiero``).  References
   (``<ref>…</ref>``, ``<references>…</references>``) are dropped with their
   contents only with ``keep_refs=False``; by default, as ``mwparserfromhell``
   0.7 does, the text of a reference is kept (the templates in it, such as
   ``{{cite web}}``, still go in pass 3) and only its tags go in pass 6.  A
   self-closing tag (``<ref name="x" />``) is dropped; an opening tag never closed
   is dropped alone.  A space replaces each element dropped.
3. Templates, parser functions and parameters ``{{ }}``/``{{{ }}}`` are dropped,
   nested to any depth, multi-line infoboxes included.  An unclosed ``{{`` is
   kept as text (the templates inside it are still dropped), as
   ``mwparserfromhell`` does.
4. External links: ``[http://x.org Some text]`` → ``Some text``;
   ``[http://x.org]`` → nothing.
5. Wikilinks, innermost first: ``[[target|text]]`` → ``text``, ``[[target]]`` →
   ``target``.  ``[[File:x.jpg|thumb|200px|alt=Alt text|A caption]]`` (or
   ``Image:``) → ``Alt text A caption``: the caption (the last field that is not
   an image option) after the ``alt=`` text, and nothing when both are missing.
   ``[[Category:Foo bar]]`` → ``Foo bar``, the name without the ``Category:``
   prefix.  Interlanguage links (unpiped, with a lowercase language-code prefix
   such as ``[[de:Foo]]``) → nothing.  A leading colon (``[[:Category:Foo]]``)
   makes an ordinary link.
6. The remaining HTML tags go and their contents stay (``<nowiki>``, ``<pre>``,
   ``<small>``, ``<span>``, ``<div>``, ``<sup>``...); a block tag (``<br>``,
   ``<p>``, ``<div>``, ``<li>``, ``<ref>``...) becomes a space, an inline one
   (``<small>``, ``<sup>``, ``<span>``...) nothing.
7. Line starts: list and indent markers (``*#:;``) go; table lines lose their
   syntax: the ``{|``, ``|-`` and ``|}`` lines go, a cell line
   ``| a || style="x" | b`` keeps the cell contents ``a`` and ``b`` (what precedes
   a cell's single ``|`` is its attributes), header cells (``!``, ``!!``) and
   captions (``|+``) alike; headings lose their ``=`` runs.
8. Bold and italic quotes (two or more ``'``), behaviour switches (``__TOC__``)
   and bare URLs (``http://…``) go.
9. HTML entities are decoded (:func:`html.unescape`) last, so that
   ``&lt;ref&gt;`` stays text; a no-break space becomes a plain space.

Against ``mwparserfromhell`` on the pages of gensim's shortened English test dump it
keeps nearly all of its words (the multiset overlap of the words after
``qwem_lib.corpus.normalise(..., "paper")``; ``bench/wikitext.py`` measures it, the
tests require 98 %).  What it drops is mostly markup that ``mwparserfromhell``
keeps: file options (``thumb``, ``px``, ``left``, ``right``, ``upright``), the
``Category`` prefix, URLs (``http``, ``www``, ``com``) and the attributes of the
tables it fails to parse (``bgcolor``, ``style``, ``align``).  Keeping the
``Category`` word would make it one of the commonest words of a dump for little
overlap; dropping category names too would lose more than it gains.
``keep_refs=False`` drops the text of references, a sizeable share of a page's
words.

Every pattern is bounded or possessive, the stack scanners loop once per bracket
(not per character) and cap the nesting they follow, so unbalanced brackets,
unterminated tags and comments and giant pages cost linear time, and no ``str``
makes it raise.
"""

from __future__ import annotations

import html
import re
from operator import itemgetter

__all__ = ["strip_markup"]

_FLAGS = re.IGNORECASE

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)

_INVISIBLE = ("categorytree", "gallery", "graph", "imagemap", "inputbox", "math",
              "score", "section", "templatedata", "timeline",
              # not prose either: source code, chemistry, hieroglyphs
              "source", "syntaxhighlight", "chem", "ce", "hiero")
_REFS = ("ref", "references")


def _opener(names) -> re.Pattern:
    """An opening (or self-closing) tag of one of ``names``; bounded attributes."""
    alternatives = "|".join(sorted(names, key=len, reverse=True))
    return re.compile(r"<(%s)(?=[\s/>])([^<>]{0,2000}+)>" % alternatives, _FLAGS)


_INVISIBLE_OPEN = _opener(_INVISIBLE)
_INVISIBLE_REFS_OPEN = _opener(_INVISIBLE + _REFS)
_INVISIBLE_CLOSE = {name: re.compile(r"</%s\s*+>" % name, _FLAGS)
                    for name in _INVISIBLE + _REFS}

_SIMPLE_TEMPLATE = re.compile(r"\{\{[^{}]*+\}\}")  # no braces inside
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}")

# Links without nesting: no colon (so no namespace) and at most one pipe.
_PLAIN_LINK = re.compile(r"\[\[([^\[\]|:\n]*+)\]\]")
_PIPED_LINK = re.compile(r"\[\[[^\[\]|:\n]*+\|([^\[\]|]++)\]\]")
_GROUP_1 = itemgetter(1)  # faster than the replacement template r"\1"
_LINK_TOKEN = re.compile(r"\[\[|\]\]")
_MAX_LINK_DEPTH = 32  # deeper [[ are kept as text (bounds the work on bad input)

_URL_SCHEMES = r"(?:https?:|ftps?:|mailto:|news:|ircs?:|gopher:|//)"
_EXT_LINK = re.compile(
    r"\[%s[^\s\[\]<>\"]{0,2000}+(?:[ \t]++([^\[\]\n]{0,2000}+))?\]" % _URL_SCHEMES,
    _FLAGS)
_BARE_URL = re.compile(r"(?:https?|ftps?)://[^\s<>\[\]\"{}|]*+")

_BLOCK_TAGS = (
    "br p div li ul ol dl dd dt hr td th tr table tbody thead caption center "
    "blockquote h1 h2 h3 h4 h5 h6 poem ref references").split()
_BLOCK_TAG = re.compile(r"</?(?:%s)(?=[\s/>])[^<>]{0,2000}+>" % "|".join(
    sorted(_BLOCK_TAGS, key=len, reverse=True)), _FLAGS)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*+(?:[\s/][^<>]{0,2000}+)?>")

# The line passes run on the text with a newline put in front, so that every line
# starts after a "\n" (a literal first character makes the search fast).
_LIST = re.compile(r"\n[*#:;]++[ \t]*+")
_TABLE_LINE = re.compile(r"\n[ \t]*+(\{\||\|\}|\|-|\|\+|\||!)([^\n]*+)")
_HEADER_CELLS = re.compile(r"!!|\|\|")
_HEADING = re.compile(r"\n=[^\n]*+")
_QUOTES = re.compile(r"''+")
_MAGIC = re.compile(r"__[A-Z]{2,30}+__")

_FILE_NAMESPACES = frozenset(("file", "image"))
_IMAGE_OPTIONS = frozenset(
    "thumb thumbnail frame framed frameless border left right center centre none "
    "baseline sub super top text-top middle bottom text-bottom upright".split())
_IMAGE_KEYS = frozenset(
    "upright alt link page class lang thumb thumbnail frame manualthumb".split())
_IMAGE_SIZE = re.compile(r"\s*+(?:\d++\s*+)?(?:x\s*+\d++\s*+)?px\s*+", _FLAGS)
_LANGUAGE_PREFIX = re.compile(r"[a-z]{2,3}(?:-[a-z]{1,8}){0,3}")
_NOT_LANGUAGES = frozenset(("doi", "wmf", "mw", "iso", "rfc", "oeis", "arxiv"))


def _drop_invisible(text: str, opener: re.Pattern) -> str:
    """Replace the elements ``opener`` finds, contents and all, by a space (pass 2)."""
    out, pos = [], 0
    # The first closing tag found at or after some start, per tag name: a later
    # search from a start before it finds it again, so each name is searched for
    # O(number of closers) times in all, and a missing closer is not searched
    # for again (no quadratic scans over unclosed openers).
    closer: dict[str, tuple[int, int]] = {}
    for m in opener.finditer(text):
        start = m.start()
        if start < pos:
            continue
        out.append(text[pos:start])
        pos = m.end()
        if m.group(2).rstrip().endswith("/"):
            continue  # self-closing
        name = m.group(1).lower()
        found = closer.get(name)
        if found is None or (found[0] >= 0 and found[0] < pos):
            c = _INVISIBLE_CLOSE[name].search(text, pos)
            found = (c.start(), c.end()) if c else (-1, -1)
            closer[name] = found
        if found[0] >= 0:
            pos = found[1]
    out.append(text[pos:])
    return " ".join(out)  # a space for each element dropped


def _drop_templates(text: str) -> str:
    """Drop the balanced ``{{ }}`` spans, nested to any depth (pass 3)."""
    for _ in range(3):  # the innermost ones, fast, while there are some
        text, n = _SIMPLE_TEMPLATE.subn("", text)
        if "{{" not in text:
            return text
        if not n:
            break
    stack: list[int] = []
    spans: list[tuple[int, int]] = []  # sorted, disjoint
    for m in _TEMPLATE_TOKEN.finditer(text):
        if text[m.start()] == "{":
            stack.append(m.start())
        elif stack:
            start = stack.pop()
            while spans and spans[-1][0] > start:
                spans.pop()  # inside this one
            spans.append((start, m.end()))
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _image_caption(fields: list[str]) -> str:
    """The text of a file link: its alt text and its caption.

    The caption is the last field that is not an image option (size, placement,
    frame, ``upright``, ``link=``...); the alt text is the value of ``alt=``.
    """
    alt, caption = "", ""
    for field in reversed(fields):
        key = field.strip()
        low = key.lower()
        if not key or low in _IMAGE_OPTIONS or _IMAGE_SIZE.fullmatch(key):
            continue
        if "=" in low:
            name = low.split("=", 1)[0].strip()
            if name == "alt":
                alt = alt or key.split("=", 1)[1]
                continue
            if name in _IMAGE_KEYS:
                continue
        caption = caption or field
    return f"{alt} {caption}" if alt and caption else alt or caption


def _resolve_link(content: str) -> str:
    """The visible text of a wikilink, given what is between its brackets."""
    visible = content.startswith(":")
    if visible:
        content = content[1:]
    target, pipe, text = content.partition("|")
    if ":" in target and not visible:
        prefix, _, name = target.partition(":")
        ns = prefix.strip().lower()
        if ns in _FILE_NAMESPACES:
            return _image_caption(text.split("|")) if pipe else ""
        if ns == "category":
            return f" {name} "  # not shown inline: keep its words apart
        if (not pipe and _LANGUAGE_PREFIX.fullmatch(prefix)
                and prefix not in _NOT_LANGUAGES):
            return ""  # interlanguage link: shown in the sidebar, not the text
    if pipe and text:
        return text
    return target


def _resolve_links(text: str) -> str:
    """Replace each ``[[...]]`` by its visible text, innermost first (pass 5)."""
    text = _PLAIN_LINK.sub(_GROUP_1, text)
    text = _PIPED_LINK.sub(_GROUP_1, text)
    if "[[" not in text:
        return text
    frames: list[list[str]] = [[]]
    last = 0
    for m in _LINK_TOKEN.finditer(text):
        start = m.start()
        if text[start] == "[":
            if len(frames) > _MAX_LINK_DEPTH:
                continue  # too deep: kept as text
            frames[-1].append(text[last:start])
            frames.append([])
            last = m.end()
        elif len(frames) > 1:
            frame = frames.pop()
            frame.append(text[last:start])
            frames[-1].append(_resolve_link("".join(frame)))
            last = m.end()
    frames[-1].append(text[last:])
    # Unclosed [[ stay as text, in order (frame i+1 follows all of frame i).
    return "[[".join("".join(frame) for frame in frames)


def _heading(m: re.Match) -> str:
    return "\n" + m.group().strip(" \t\n=")


def _cell_text(cell: str) -> str:
    """A table cell's contents: what follows its attributes' single ``|``."""
    bar = cell.find("|")
    return cell[bar + 1:] if bar >= 0 else cell


def _table_line(m: re.Match) -> str:
    marker, rest = m.group(1), m.group(2)
    if marker in ("{|", "|}", "|-"):
        return "\n"
    if marker == "|":
        cells = rest.split("||")
    elif marker == "!":
        cells = _HEADER_CELLS.split(rest)
    else:  # "|+": a caption
        cells = [rest]
    return "\n" + " ".join(_cell_text(cell) for cell in cells)


def strip_markup(wikitext: str, *, keep_refs: bool = True) -> str:
    """Turn MediaWiki markup into plain text.

    Parameters
    ----------
    wikitext : str
        The source of one page (the ``<text>`` of a dump's ``<page>``).
    keep_refs : bool
        Keep the text of references (``<ref>…</ref>``), as ``mwparserfromhell``
        does (the default), or drop them with their contents, as WikiExtractor and
        gensim do.  The templates in a reference (``{{cite web|…}}``) go either way.

    Returns
    -------
    str
        The text of the page with the markup removed: the words of the prose,
        headings, list items, table cells, link texts and image captions, separated
        by the whitespace and punctuation they had, without leading or trailing
        whitespace.  Templates, comments, mathematics, galleries, file options,
        table attributes and URLs are dropped (see the module documentation for
        every rule).  Runs in time linear in ``len(wikitext)`` whatever the input,
        and never raises on a ``str``.

    Notes
    -----
    Namespaces are recognised by their English names (``File``, ``Image``,
    ``Category``), as in the English Wikipedia's dumps; in other languages' dumps
    file and category links are treated as ordinary links.

    Examples
    --------
    >>> strip_markup("'''Paris''' is the [[capital city|capital]] of "
    ...              "[[France]].{{citation needed}}<ref>{{cite web}}</ref>")
    'Paris is the capital of France.'
    >>> strip_markup("[[File:Eiffel.jpg|thumb|200px|The [[Eiffel Tower]]]]")
    'The Eiffel Tower'
    """
    text = wikitext
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    if "<" in text:
        text = _drop_invisible(
            text, _INVISIBLE_OPEN if keep_refs else _INVISIBLE_REFS_OPEN)
    if "{{" in text:
        text = _drop_templates(text)
    if "[" in text:
        text = _EXT_LINK.sub(lambda m: m.group(1) or "", text)
        if "[[" in text:
            text = _resolve_links(text)
    if "<" in text:
        text = _TAG.sub("", _BLOCK_TAG.sub(" ", text))
    text = "\n" + text
    text = _LIST.sub("\n", text)
    if "|" in text or "!" in text:
        text = _TABLE_LINE.sub(_table_line, text)
    if "\n=" in text:
        text = _HEADING.sub(_heading, text)
    if "''" in text:
        text = _QUOTES.sub("", text)
    if "__" in text:
        text = _MAGIC.sub("", text)
    if "://" in text:
        text = _BARE_URL.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    return text.strip()
