"""One look for every figure in the book.

Theory is drawn dashed black (:data:`THEORY`), experiment in colour with solid lines
(:data:`EXPERIMENT`); the methods the book compares keep one colour each
(:data:`METHOD_COLORS`).  Call :func:`style` once in a chapter's setup cell.

matplotlib is a book dependency, not a core one: it is imported inside the functions,
so ``import qwem_lib.plotting`` works (and costs nothing) without it.
"""

from __future__ import annotations

from typing import Any, Sequence

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies and in
# greyscale print.
BLUE = "#0072B2"
VERMILION = "#D55E00"
GREEN = "#009E73"
ORANGE = "#E69F00"
PURPLE = "#CC79A7"
SKY = "#56B4E9"
YELLOW = "#F0E442"
GREY = "#7F7F7F"
BLACK = "#000000"

#: Colour cycle for experiment lines, in order of use.
CYCLE: tuple[str, ...] = (BLUE, VERMILION, GREEN, ORANGE, PURPLE, SKY, GREY)

#: One colour per method, the same in every chapter.
METHOD_COLORS: dict[str, str] = {
    "word2vec": VERMILION,
    "qwem": BLUE,
    "svd_mstar": GREEN,
    "svd_ppmi": ORANGE,
    "svd_pmi": PURPLE,
}

#: Keyword arguments for a theory curve: ``ax.plot(t, s2, **THEORY)``.
THEORY: dict[str, Any] = dict(color="k", ls="--", lw=1.2, zorder=3)

#: Keyword arguments for an experiment curve (the colour comes from the cycle or the
#: caller): ``ax.plot(t, s2, color=BLUE, **EXPERIMENT)``.
EXPERIMENT: dict[str, Any] = dict(ls="-", lw=1.6, zorder=2)

#: Size of one panel in inches (width, height): its shape; :func:`new_figure` scales a
#: figure to the page.
PANEL_SIZE: tuple[float, float] = (3.6, 2.8)

#: Width in inches of a figure that fills the book's text column, and the least width
#: of a single panel, so that text in every figure prints at about the same size.
PAGE_WIDTH: float = 7.5
MIN_WIDTH: float = 5.4

_RC: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "image.cmap": "viridis",
    "axes.formatter.use_mathtext": True,
    "axes.formatter.limits": (-3, 4),
}


def style() -> None:
    """Apply the book's look to matplotlib's global ``rcParams``.

    Call it once per notebook, in the setup cell.  It changes global state, which is why
    importing this module does not do it.
    """
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(_RC)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=list(CYCLE))
    mpl.rcParams["figure.figsize"] = PANEL_SIZE


def new_figure(
    ncols: int = 1,
    nrows: int = 1,
    *,
    panel_size: tuple[float, float] | None = None,
    squeeze: bool = True,
    **subplot_kw: Any,
):
    """A figure with an ``nrows x ncols`` grid of panels, sized for the page.

    The grid of panels of ``panel_size`` is scaled, keeping its shape, to the width
    of the text column (:data:`PAGE_WIDTH`) when it is about that wide or wider,
    and up to :data:`MIN_WIDTH` when it is narrower, so that fonts come out at one
    size in every figure.

    Parameters
    ----------
    ncols, nrows : int
        Grid shape.
    panel_size : (float, float), optional
        Shape of one panel (width, height in inches); default :data:`PANEL_SIZE`.
    squeeze : bool
        As in ``plt.subplots``: a single panel comes back as one ``Axes``.
    **subplot_kw
        Passed to ``plt.subplots`` (``sharex``, ``sharey``, ``subplot_kw``, ...).

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or ndarray of Axes
    """
    import matplotlib.pyplot as plt

    w, h = panel_size or PANEL_SIZE
    natural = w * ncols
    width = PAGE_WIDTH if natural >= 0.9 * PAGE_WIDTH else min(max(natural, MIN_WIDTH),
                                                               PAGE_WIDTH)
    scale = width / natural
    return plt.subplots(nrows, ncols, figsize=(width, h * nrows * scale),
                        squeeze=squeeze, **subplot_kw)


def plot_theory(ax, x, y, label: str | None = "theory", **kwargs: Any):
    """Draw a theory curve (dashed black unless ``kwargs`` says otherwise)."""
    return ax.plot(x, y, label=label, **{**THEORY, **kwargs})


def plot_experiment(ax, x, y, label: str | None = None, **kwargs: Any):
    """Draw an experiment curve (solid, colour from the cycle unless given)."""
    return ax.plot(x, y, label=label, **{**EXPERIMENT, **kwargs})


def mode_colors(n: int, cmap: str = "viridis") -> list[tuple[float, float, float, float]]:
    """``n`` colours along ``cmap``, for families of curves such as modes ``k = 1..n``."""
    import matplotlib as mpl

    cm = mpl.colormaps[cmap]
    if n == 1:
        return [cm(0.0)]
    return [cm(0.9 * i / (n - 1)) for i in range(n)]


def label_panels(axes: Sequence, *, x: float = -0.02, y: float = 1.02) -> None:
    """Write (a), (b), ... at the top-left corner of each panel."""
    import numpy as np

    for i, ax in enumerate(np.ravel(axes)):
        ax.text(x, y, f"({chr(ord('a') + i)})", transform=ax.transAxes,
                ha="right", va="bottom", fontweight="bold")
