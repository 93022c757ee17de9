"""The tiny corpus the command-line tests share: a few dozen words drawn with
Zipf's law, so that a vocabulary of a dozen words has clear frequency ranks."""

import numpy as np

WORDS = ("the king rules the land and the queen rules the sea a man walks with a "
         "woman while the prince and the princess read a book in the castle by the "
         "river where the boy and the girl swim").split()


def zipf_text(seed: int = 0, size: int = 4000) -> str:
    """``size`` words drawn from WORDS with probability ~ 1/rank, one line."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    return " ".join(rng.choice(WORDS, size=size, p=p / p.sum())) + "\n"
