"""What every chapter of the book does before and around its science.

A chapter's hidden setup cell calls :func:`setup` (figure style, seeds, the torch
device); its configuration cell reads the scale switch with :func:`scale` and finds its
corpus with :func:`qwem_lib.data.first_available`; results that are tables are shown
with :func:`table`.  Expensive results are cached with :func:`qwem_lib.cache.cached`.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

__all__ = ["SCALES", "setup", "scale", "table"]

#: The book's two sizes: ``small`` for the tests, ``full`` for the book.
SCALES = ("small", "full")


def setup(seed: int = 0):
    """Figure style, seeds of torch, numpy and Python, and the device: CUDA when
    available, else the CPU.  Returns the ``torch.device``."""
    import random

    import numpy as np
    import torch

    from . import plotting

    plotting.style()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def scale() -> str:
    """The scale switch, ``QWEM_SCALE`` (default ``full``): ``small`` or ``full``."""
    from .errors import QwemError

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
