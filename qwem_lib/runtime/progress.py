"""Progress bars, shown only where someone watches them: a terminal.

Long stages (reading a corpus, counting pairs, the eigensolver, training) take a
``progress`` flag; a bar is drawn only when it is set *and* standard error is a
terminal, so logs, pipes, CI and notebook outputs get no ``\\r`` lines (set
``QWEM_PROGRESS=1`` to draw them anyway, ``0`` to never draw them).  The bars are
tqdm's plain console bars (not ``tqdm.auto``, which warns inside notebooks).
"""

from __future__ import annotations

import os
import sys

__all__ = ["shown", "bar", "note"]


def shown(progress: bool) -> bool:
    """Whether bars asked for with ``progress`` are drawn here."""
    forced = os.environ.get("QWEM_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return bool(progress) and forced == "1"
    if not progress:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def bar(progress: bool, **kwargs):
    """A tqdm bar on standard error, disabled unless :func:`shown` (a disabled bar
    accepts every call and draws nothing)."""
    from tqdm import tqdm

    return tqdm(disable=not shown(progress), file=sys.stderr, dynamic_ncols=True,
                **kwargs)


def note(message: str, progress: bool) -> None:
    """A one-line message among the bars, when they are shown."""
    if shown(progress):
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
