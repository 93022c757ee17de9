"""MediaWiki markup strippers: ours (``fast``) against ``mwparserfromhell``, one run.

Both run the whole dump path of :func:`qwem_lib.corpus.iter_mediawiki`, single
threaded, one after the other: read (and decompress) the dump, parse its XML, strip
the wikitext of each main-namespace article, normalise it (``paper`` scheme) and
split it into words.  For each it prints the pages, the words, the seconds and the
words (tokens) per second on one core, then:

- the speed ratio, over the whole path and over stripping + normalising alone (the
  whole path less a third run whose stripper returns nothing: reading and XML);
- the multiset overlap: the share of ``mwparserfromhell``'s words that ours keeps,
  ``sum_w min(ours_w, mwp_w) / sum_w mwp_w`` over the normalised words;
- the markup tokens (:data:`MARKUP_TOKENS`) among each one's 100 and 1,000 most
  frequent words, with their ranks;
- the words ``mwparserfromhell`` keeps more often than ours, with both counts, and
  the other way round, so a reader sees what is lost and what is gained.

It exits with status 1 unless ours is at least 3 times as fast over the whole path,
keeps at least 98 % of the words, and has no more markup tokens in either top list.

Usage::

    . .venv/bin/activate
    python bench/wikitext.py                      # gensim's test dump, ~15 s
    python bench/wikitext.py --dump enwiki-latest-pages-articles1.xml.bz2 --pages 2000

The default dump is the shortened English dump that ships with gensim's tests
(106 articles, about 517,000 words).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from itertools import islice
from pathlib import Path
from unittest import mock

#: Words that come from wiki markup rather than prose: file options (``thumb``,
#: ``px``...), reference and citation templates, URLs and file extensions, HTML and
#: table syntax and attributes, entities written out, magic words, template names.
#: None is a common English word; some ambiguous markup words (``left``, ``right``,
#: ``center``, ``style``, ``small``, ``category``) are left out on purpose, so the
#: count is a lower bound.
MARKUP_TOKENS = frozenset("""
    thumb thumbnail frameless upright px alt
    ref reflist refn cite sfn harvnb
    http https www com org html htm php asp aspx url
    jpg jpeg png svg gif tif tiff ogg pdf
    nbsp ndash mdash amp quot
    br div span sup td tr colspan rowspan wikitable sortable plainrowheaders
    bgcolor valign align nowrap
    toc notoc nowiki defaultsort infobox flagicon hlist ifeq ifexpr
    accessdate archiveurl archivedate deadurl wikt
""".split())

PATHS = ("mwparserfromhell", "fast")


def default_dump() -> Path:
    import gensim
    return Path(gensim.__file__).parent / "test" / "test_data" / (
        "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")


def run(dump: Path, markup: str, pages: int | None) -> tuple[int, Counter, float]:
    """Pages, word counts and seconds of the whole path with the ``markup`` stripper.

    Counting the words is not timed.
    """
    from qwem_lib import corpus

    counts: Counter = Counter()
    n_pages, seconds = 0, 0.0
    with corpus.open_binary(dump) as fh:
        start = time.perf_counter()
        for text in islice(corpus.iter_mediawiki(fh, dump, markup=markup), pages):
            words = corpus.normalise(text, "paper").split()
            seconds += time.perf_counter() - start
            counts.update(words)
            n_pages += 1
            start = time.perf_counter()
        seconds += time.perf_counter() - start
    return n_pages, counts, seconds


def overlap(ours: Counter, reference: Counter) -> float:
    """Share of the reference's words (with multiplicity) that ``ours`` has too."""
    total = sum(reference.values())
    return sum(min(c, ours[w]) for w, c in reference.items()) / max(total, 1)


def markup_in_top(counts: Counter, top: int) -> list[str]:
    return [f"{w}#{rank}" for rank, (w, _) in enumerate(counts.most_common(top), 1)
            if w in MARKUP_TOKENS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", type=Path, default=None,
                    help="a *-pages-articles*.xml[.bz2] dump (default: gensim's "
                         "shortened English test dump)")
    ap.add_argument("--pages", type=int, default=None,
                    help="only the first N main-namespace articles")
    ap.add_argument("--examples", type=int, default=15,
                    help="how many differing words to show each way")
    args = ap.parse_args(argv)
    dump = args.dump or default_dump()
    if not dump.exists():
        sys.exit(f"{dump} does not exist")

    from _machine import machine  # bench/_machine.py; here, as tests import this file

    print(machine("mwparserfromhell"))
    print(f"dump {dump} ({dump.stat().st_size / 2**20:.1f} MiB)")
    results = {name: run(dump, name, args.pages) for name in PATHS}
    import qwem_lib.corpus.wikitext
    with mock.patch.object(qwem_lib.corpus.wikitext, "strip_markup", lambda text: ""):
        _, _, base = run(dump, "fast", args.pages)  # reading and XML alone

    print(f"\n{'stripper':18s} {'pages':>6s} {'words':>10s} {'seconds':>8s} "
          f"{'words/s/core':>13s} {'strip+norm s':>13s}")
    speed = {}
    for name, (n_pages, counts, seconds) in results.items():
        words = sum(counts.values())
        speed[name] = words / seconds
        print(f"{name:18s} {n_pages:6d} {words:10,d} {seconds:8.2f} "
              f"{speed[name]:13,.0f} {seconds - base:13.2f}")
    print(f"{'(read + XML only)':18s} {'':6s} {'':10s} {base:8.2f}")

    ref, ours = results["mwparserfromhell"][1], results["fast"][1]
    ratio = speed["fast"] / speed["mwparserfromhell"]
    strip_ratio = ((results["mwparserfromhell"][2] - base)
                   / max(results["fast"][2] - base, 1e-9))
    share = overlap(ours, ref)
    print(f"\nspeed ratio fast / mwparserfromhell: {ratio:.1f}x over the whole path, "
          f"{strip_ratio:.1f}x stripping + normalising alone")
    print(f"overlap: fast keeps {100 * share:.2f} % of mwparserfromhell's "
          f"{sum(ref.values()):,d} words")

    worse = False
    for top in (100, 1000):
        print(f"\nmarkup tokens in the top {top}:")
        found = {}
        for name, counts in (("mwparserfromhell", ref), ("fast", ours)):
            found[name] = markup_in_top(counts, top)
            print(f"  {name:18s} {len(found[name]):3d}  {' '.join(found[name])}")
        worse |= len(found["fast"]) > len(found["mwparserfromhell"])

    lost = Counter({w: c - ours[w] for w, c in ref.items() if c > ours[w]})
    gained = Counter({w: c - ref[w] for w, c in ours.items() if c > ref[w]})
    for title, diff in (("mwparserfromhell keeps more often (lost)", lost),
                        ("fast keeps more often (gained)", gained)):
        print(f"\n{title}: {sum(diff.values()):,d} words; word mwp/fast:")
        print("  " + "  ".join(f"{w} {ref[w]}/{ours[w]}"
                               for w, _ in diff.most_common(args.examples)))

    ok = ratio >= 3 and share >= 0.98 and not worse
    print(f"\n{'PASS' if ok else 'FAIL'}: speed >= 3x {ratio >= 3}, overlap >= 98 % "
          f"{share >= 0.98}, no more markup tokens {not worse}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
