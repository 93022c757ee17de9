"""Each chapter's execution time in the last `make book`, from the execution cache.

    python bench/book_times.py [--since EPOCH_SECONDS] [--cache _build/.jupyter_cache]

jupyter-book (myst-nb) stores every executed chapter in its jupyter-cache with the
seconds the execution took.  For each chapter of the book this prints those seconds
and whether the chapter ran in this build (its record is newer than ``--since``, the
build's start) or was read from the cache; ``make book`` calls it at the end, with
the build's wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path


def chapter_times(cache: Path, chapters: list[Path]) -> list[tuple[str, float | None, object]]:
    """(chapter, seconds or None, created) for each chapter's newest cache record."""
    from jupyter_cache import get_cache

    newest = {}
    if cache.is_dir():
        for rec in get_cache(str(cache)).list_cache_records():
            uri = Path(rec.uri).resolve()
            if uri not in newest or rec.created > newest[uri].created:
                newest[uri] = rec
    rows = []
    for md in chapters:
        rec = newest.get(md.with_suffix(".md").resolve()) or newest.get(
            md.with_suffix(".ipynb").resolve())
        seconds = None if rec is None else (rec.data or {}).get("execution_seconds")
        rows.append((md.stem, seconds, None if rec is None else rec.created))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("_build/.jupyter_cache"))
    ap.add_argument("--since", type=float, default=None,
                    help="the build's start (seconds since the epoch)")
    ap.add_argument("--book", type=Path, default=Path("book"))
    args = ap.parse_args(argv)
    chapters = sorted(args.book.glob("[0-9][0-9]_*.md"))
    since = (None if args.since is None else
             dt.datetime.fromtimestamp(args.since, dt.timezone.utc).replace(tzinfo=None))
    ran = 0.0
    print(f"{'chapter':<28}{'execution s':>12}  this build")
    for name, seconds, created in chapter_times(args.cache, chapters):
        if seconds is None:
            print(f"{name:<28}{'-':>12}  not executed (failed, or never built)")
            continue
        if created.tzinfo is not None:                 # stored as UTC
            created = created.astimezone(dt.timezone.utc).replace(tzinfo=None)
        fresh = since is not None and created >= since
        ran += seconds if fresh else 0.0
        print(f"{name:<28}{seconds:12.0f}  {'executed' if fresh else 'from the cache'}")
    if since is not None:
        print(f"{'executed in this build':<28}{ran:12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
