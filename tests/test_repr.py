"""Short reprs of result objects (qwem_lib.runtime._repr)."""

import re

import numpy as np
import torch

from qwem_lib import pipeline
from qwem_lib.evaluate import analogy_paper
from qwem_lib.spectral import top_eigh


def test_closed_form_repr_is_short_and_informative(isolated_cache):
    cfg = pipeline.EmbedConfig("sample", vocab_size=2000, embed_dim=20)
    res = pipeline.closed_form(cfg, progress=False)
    text = repr(res)
    assert len(text) < 800 and "\n" not in text, text
    assert text.startswith("ClosedForm(config=EmbedConfig(corpus='sample', "
                           "vocab_size=2000, embed_dim=20")
    assert "W=tensor(2000×20 float64)" in text
    assert "words=['the', 'of', 'and', …] (2,000 items)" in text
    # the first eigenvalues are shown, as numbers of the result
    lam = re.search(r"eigvals=tensor\(20 float64: \[([^,]+),", text).group(1)
    assert float(lam) == float(f"{float(res.eigvals[0]):.6g}")
    assert "n_tokens=" in text and f"n_kept={res.n_kept}" in text


def test_other_results_have_short_reprs():
    M = torch.randn(300, 300, dtype=torch.float64)
    eig = top_eigh(M + M.T, 5)
    assert len(repr(eig)) < 400 and "eigvecs=tensor(300×5 float64)" in repr(eig)
    words = [f"w{i}" for i in range(500)]
    res = analogy_paper(np.random.default_rng(0).standard_normal((500, 8)), words,
                        {"cat": [("w1", "w2", "w3", "w4"), ("w5", "w6", "w7", "w8")]})
    assert len(repr(res)) < 1000 and repr(res).startswith("AnalogyResult(")
