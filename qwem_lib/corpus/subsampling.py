"""word2vec's subsampling of frequent words: the probability each word is kept.

word2vec discards each occurrence of a word of frequency f with probability
``1 - min(1, sqrt(t/f) + t/f)`` before it forms windows (Mikolov et al. 2013; the
paper's Setting 3.1 and Thm. 1 take it in as a pair weight ``p_i p_j``,
:func:`qwem_lib.losses.reweighting`).  The counters and trainers apply it to the
token stream; the losses weight pairs by it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..runtime.errors import QwemError
from ..runtime.options import check_real

__all__ = ["subsample_keep_probs", "keep_probs", "check_subsample", "MIN_SUBSAMPLE"]


def subsample_keep_probs(unigram: torch.Tensor, t: float = 1e-5) -> torch.Tensor:
    """word2vec's subsampling keep probability ``min(1, sqrt(t/P_i) + t/P_i)``.

    Parameters
    ----------
    unigram : (V,) tensor
    t : float
        Threshold (word2vec's ``sample``; the paper uses 1e-5).

    Returns
    -------
    (V,) tensor in (0, 1]
    """
    t = check_real(t, "the subsampling threshold t (--subsample)", gt=0)
    r = t / unigram
    return torch.clamp(r.sqrt() + r, max=1.0)


# Below this a subsampling threshold keeps almost nothing: a word of frequency f is
# kept with probability about sqrt(t/f), so t = 1e-300 empties any corpus, and the
# error would then blame the corpus instead of the threshold.
MIN_SUBSAMPLE = 1e-12


def check_subsample(t: float, name: str = "subsample (--subsample)") -> None:
    """Refuse a positive subsampling threshold below :data:`MIN_SUBSAMPLE` (0, no
    subsampling, passes), in one line naming ``name``."""
    if 0 < t < MIN_SUBSAMPLE:
        raise QwemError(f"{name} must be 0 (none) or at least {MIN_SUBSAMPLE:g}, got "
                        f"{t:g}: a word of frequency f is kept with probability "
                        "about sqrt(t/f), so a smaller threshold discards almost "
                        "every token (word2vec uses 1e-3 to 1e-5)")


def keep_probs(counts, t: float) -> torch.Tensor:
    """word2vec's subsampling keep probability of each word, ``(V,)`` float64.

    ``p_w = min(1, (sqrt(f_w/t) + 1) · t/f_w)`` with ``f_w = count_w / Σ count``,
    i.e. :func:`subsample_keep_probs` of the counts' unigram.  ``t = 0``
    keeps everything.  Words with count 0 get 1 (they never occur).
    """
    t = check_real(t, "subsample (--subsample)", ge=0)
    c = torch.as_tensor(np.asarray(counts, dtype=np.float64))
    if t == 0:
        return torch.ones_like(c)
    f = c / c.sum()
    return torch.where(f > 0, subsample_keep_probs(f.clamp_min(1e-300), t),
                       torch.ones_like(f))
