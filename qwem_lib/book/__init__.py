"""What every chapter of the book does before and around its science.

A chapter's hidden setup cell calls :func:`setup` (figure style, seeds, the torch
device); its configuration cell reads the scale switch with :func:`scale` and finds its
corpus with :func:`qwem_lib.corpus.data.first_available`; results that are tables are shown
with :func:`table`.  Expensive results are cached with :func:`qwem_lib.runtime.cache.cached`.

Every number a chapter's prose states about its own runs comes from :class:`Results`:
``R = book.results("03_wikipedia_mstar")`` in the setup cell, then ``R.glue(key,
value)`` where the value is computed.  The value is glued (myst-nb) for the prose,
``{glue:text}`key:.1%``, and kept in a small JSON file per chapter and scale, which
the page "The paper, result by result" (``book/replication.md``) reads to compare
the chapters' results with the paper's (:mod:`qwem_lib.paper`, :mod:`qwem_lib.book.ledger`).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["SCALES", "setup", "scale", "table", "Results", "results",
           "results_dir", "load_results", "point_at_repository"]

#: The book's two sizes: ``small`` for the tests, ``full`` for the book.
SCALES = ("small", "full")


def setup(seed: int = 0):
    """Figure style, seeds of torch, numpy and Python, and the device: CUDA when
    available, else the CPU.  Returns the ``torch.device``."""
    import random

    import numpy as np
    import torch

    from .. import plotting

    plotting.style()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def scale() -> str:
    """The scale switch, ``QWEM_SCALE`` (default ``full``): ``small`` or ``full``."""
    from ..runtime.errors import QwemError

    value = os.environ.get("QWEM_SCALE", "full").strip() or "full"
    if value not in SCALES:
        raise QwemError(f"QWEM_SCALE must be one of {', '.join(SCALES)}, got "
                        f"{value!r}")
    return value


def table(rows: Iterable[Sequence], header: Sequence[str],
          formats: Sequence[str] | None = None, align: str | None = None):
    """A Markdown table to display: one row per item of ``rows``.

    Parameters
    ----------
    rows : iterable of sequences
        Cells; a cell that is None shows as "–".
    header : sequence of str
        Column titles (Markdown, math allowed).
    formats : sequence of str, optional
        A format spec per column (``".3f"``, ``".1%"``, ``""`` for ``str``).
    align : str, optional
        One letter per column, ``l``, ``r`` or ``c`` (default: text left, numbers
        right).

    Returns
    -------
    IPython.display.Markdown
        Shown as a table in the book and in notebooks.
    """
    from IPython.display import Markdown

    rows = [list(r) for r in rows]
    n = len(header)
    if any(len(r) != n for r in rows):
        raise ValueError(f"every row needs {n} cells")
    formats = list(formats or [""] * n)
    if align is None:
        numeric = [all(isinstance(r[c], (int, float)) or r[c] is None for r in rows)
                   and rows for c in range(n)]
        align = "".join("r" if num else "l" for num in numeric)
    rule = {"l": ":---", "r": "---:", "c": ":---:"}

    def cell(value, spec):
        if value is None:
            return "–"
        text = format(value, spec) if spec else str(value)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(rule[a] for a in align) + "|"]
    lines += ["| " + " | ".join(cell(v, f) for v, f in zip(r, formats)) + " |"
              for r in rows]
    return Markdown("\n".join(lines))


# ----------------------------------------------------------------------------------
# computed numbers: glued into the prose, kept for the ledger page
# ----------------------------------------------------------------------------------

def results_dir() -> Path:
    """Where chapters keep their results: ``QWEM_RESULTS``, else ``<cache>/book-results``."""
    env = os.environ.get("QWEM_RESULTS", "").strip()
    if env:
        return Path(env)
    from ..runtime.cache import cache_dir

    return cache_dir() / "book-results"


def _code() -> str:
    """Fingerprint of the whole library: results of other code are not compared."""
    import hashlib

    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def _plain(value):
    """A value glue and JSON can both hold: bool, int, float, str (numpy scalars and
    0-d arrays and tensors are converted)."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot glue a non-finite number ({value})")
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"glue takes a number, a bool or a string, got "
                    f"{type(value).__name__}")


class Results:
    """One chapter's results at one scale.

    ``glue(key, value)`` shows nothing in the page; the prose pastes the value with
    ``{glue:text}`key``` (a format spec may follow: ``key:.3f``, ``key:.1%``,
    ``key:,d``).  :meth:`done` (the chapter's last, hidden cell) writes the values to
    ``results_dir()/<scale>/<chapter>.json`` with the scale, the library's code
    fingerprint and ``complete: true``.  Creating a ``Results`` removes the chapter's
    previous file, so a chapter that fails half way leaves no results at all.
    """

    def __init__(self, chapter: str, *, scale_name: str | None = None,
                 directory: str | os.PathLike | None = None):
        self.chapter = str(chapter)
        self.scale = scale_name or scale()
        self.path = Path(directory or results_dir()) / self.scale / f"{self.chapter}.json"
        self.values: dict = {}
        self.started = time.time()
        self._code = _code()
        self.path.unlink(missing_ok=True)

    def glue(self, key: str, value, *, display: bool = False):
        """Glue ``value`` under ``key`` and record it; returns the value unchanged.

        Gluing a key again with the same value does nothing more; with another value
        it is an error (the page would state two numbers under one name)."""
        if not isinstance(key, str) or not key.replace("_", "").isalnum():
            raise ValueError(f"glue keys are letters, digits and '_', got {key!r}")
        plain = _plain(value)
        if key in self.values:
            if self.values[key] != plain:
                raise ValueError(f"{key!r} is already glued as {self.values[key]!r}, "
                                 f"not {plain!r}: give the second value its own key")
            return value
        try:
            from myst_nb import glue as _glue
        except ImportError:     # Colab without myst-nb: the prose is not rendered there
            _glue = None
        if _glue is not None:
            _glue(key, plain, display=display)
        self.values[key] = plain
        return value

    def done(self) -> None:
        """Write the chapter's results, complete (its last cell)."""
        from ..runtime._atomic import write_json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"chapter": self.chapter, "scale": self.scale,
                               "code": self._code, "complete": True,
                               "seconds": round(time.time() - self.started, 1),
                               "values": self.values}, indent=1)

    def __repr__(self) -> str:
        return f"Results({self.chapter!r}, scale={self.scale!r}, {len(self.values)} values)"


def results(chapter: str) -> Results:
    """The :class:`Results` of ``chapter`` (its file name without ``.md``) at the
    current scale."""
    return Results(chapter)


def load_results(chapter: str, *, scale_name: str | None = None,
                 directory: str | os.PathLike | None = None) -> dict | None:
    """A chapter's recorded values, or None when it has no complete results of this
    library's code at this scale (not built yet, failed, or built by other code)."""
    scale_name = scale_name or scale()
    path = Path(directory or results_dir()) / scale_name / f"{chapter}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(data, dict) or not data.get("complete")
            or data.get("scale") != scale_name or data.get("code") != _code()):
        return None
    return data.get("values") or {}


# ----------------------------------------------------------------------------------
# the repository the chapters install from and open in Colab
# ----------------------------------------------------------------------------------

_COLAB_LINK = re.compile(r"\[Open in Colab\]\(https://colab\.research\.google\.com/"
                         r"github/[^)\s]*\)")
_REPOSITORY_LINE = re.compile(r'^(\s*REPOSITORY = )"[^"]*"', re.MULTILINE)


def point_at_repository(root: str | os.PathLike = ".") -> list[Path]:
    """Make every chapter's Colab link and Colab install line name the repository of
    ``_config.yml`` (``repository.url`` and ``branch``): the one place its address
    is set (``make sync`` calls this).  Returns the chapters that changed.

    A chapter ``book/NN_topic.md`` links to
    ``https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/book/NN_topic.ipynb``
    and its hidden setup cell installs ``qwem_lib`` from ``git+URL`` when it runs in
    Colab.
    """
    import yaml

    from ..runtime.errors import QwemError

    root = Path(root)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = (config or {}).get("repository") or {}
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", ""))
    if not url.startswith("https://github.com/") or url.count("/") != 4 or not branch:
        raise QwemError(f"_config.yml's repository must have url "
                        f"https://github.com/OWNER/REPO and a branch, got {url!r}, "
                        f"{branch!r}")
    owner_repo = url.split("github.com/", 1)[1]
    changed = []
    for md in sorted((root / "book").glob("[0-9][0-9]_*.md")):
        text = md.read_text(encoding="utf-8")
        link = (f"[Open in Colab](https://colab.research.google.com/github/{owner_repo}"
                f"/blob/{branch}/book/{md.stem}.ipynb)")
        new = _COLAB_LINK.sub(lambda _: link, text)
        new = _REPOSITORY_LINE.sub(lambda m: f'{m.group(1)}"{url}"', new)
        if new != text:
            from ..runtime._atomic import write_text

            write_text(md, new)
            changed.append(md)
    return changed
