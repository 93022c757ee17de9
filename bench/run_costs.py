"""Where a build's time went: every timed run in the cache, with what it was and its cost.

    python bench/run_costs.py [--cache DIR] [--since EPOCH_SECONDS]

The chapters store each word2vec, gensim, trained-QWEM and closed-form run they make
under ``QWEM_CACHE/runs`` (:mod:`qwem_lib.compare`) with the wall time it took when it
ran.  This prints them in the order they were stored (the order a build made them),
one line each: the kind of run, its distinguishing settings, its seconds and the
running total, then the totals per kind.  Runs read from the cache cost the build
nothing; after a cold build every entry is one the build made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

# The settings that tell runs of one kind apart, in the order they are printed.
_SHOWN = {
    "word2vec": ("embed_dim", "window", "negatives", "subsample", "epochs", "tied",
                 "init_scale", "lr", "seed"),
    "gensim": ("embed_dim", "window", "negatives", "subsample", "epochs"),
    "closed": ("method", "vocab_size", "embed_dim", "context_len", "negatives",
               "neg_power", "subsample", "subsample_draws", "weight_power"),
    "closed-process": ("method", "vocab_size", "embed_dim", "engine"),
    "qwem": ("embed_dim", "init_scale", "lr"),
}
_DEFAULTS = {"seed": 0, "subsample_draws": 5, "weight_power": 0.0, "method": "mstar",
             "lr": 0.025,
             "engine": "auto"}


def describe(key: dict) -> tuple[str, str]:
    """(kind, the run's settings in a few words) from a run's cache key."""
    kind = key.get("kind", "?")
    config = key.get("config") or key.get("train") or {}
    if kind == "qwem":
        config = {**(key.get("embed") or {}), **(key.get("train") or {})}
    parts = []
    for name in _SHOWN.get(kind, ()):
        value = config.get(name)
        if value is None or _DEFAULTS.get(name) == value:
            continue
        parts.append(f"{name}={value:g}" if isinstance(value, float) else
                     f"{name}={value}")
    if "V" in key:
        parts.insert(0, f"V={key['V']}")
    if key.get("fraction") is not None:
        parts.append(f"first {key['fraction']:.0%} of the schedule")
    if key.get("timed") is False:
        parts.append("untimed")
    corpus = config.get("corpus") or key.get("corpus") or {}
    if isinstance(corpus, dict) and corpus.get("size"):
        parts.append(f"corpus {corpus['size'] / 1e6:.0f} MB")
    return kind, ", ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path,
                    default=Path(os.environ.get("QWEM_CACHE", "~/.cache/qwem")))
    ap.add_argument("--since", type=float, default=0.0,
                    help="only runs stored after this time (seconds since the epoch)")
    args = ap.parse_args(argv)
    folder = args.cache.expanduser() / "runs"
    files = sorted((p for p in folder.glob("*.npz") if p.stat().st_mtime >= args.since),
                   key=lambda p: p.stat().st_mtime)
    if not files:
        print(f"no runs under {folder}", file=sys.stderr)
        return 1
    total, by_kind = 0.0, defaultdict(lambda: [0, 0.0])
    print(f"{'#':>3} {'kind':<15}{'seconds':>9}{'total':>9}  settings")
    for i, path in enumerate(files, 1):
        with np.load(path, allow_pickle=False) as z:
            key = json.loads(str(z["__key__"])).get("key", {})
            seconds = float(z["seconds"])
        kind, what = describe(key)
        total += seconds
        by_kind[kind][0] += 1
        by_kind[kind][1] += seconds
        print(f"{i:>3} {kind:<15}{seconds:9.1f}{total:9.1f}  {what}")
    print()
    for kind, (n, seconds) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(f"{kind:<15} {n:3d} runs {seconds:8.1f} s ({seconds / total:.0%})")
    print(f"{'all':<15} {len(files):3d} runs {total:8.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
