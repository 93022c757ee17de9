"""What a training run records and keeps: its history, its result, its checkpoints.

Shared by both trainers, :func:`qwem_lib.train.train` (on the pair statistics) and
:func:`qwem_lib.word2vec.train_word2vec` (streamed over the corpus):

* :class:`History`: what a run recorded at its checkpoints (step, flow time, loss,
  singular values, analogy accuracy), saved as ``history.json``;
* :class:`TrainResult`: what a run returns (word2vec's result subclasses it);
* :func:`save_checkpoint` and :func:`load_checkpoint`: the full state of a run in one
  ``.npz``, written atomically, with a JSON ``meta`` (configuration, corpus) that a
  resumed run must match;
* :func:`diverged_error`: the one message for a run whose loss or W became NaN/inf.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._atomic import atomic_path
from .errors import QwemError

if TYPE_CHECKING:  # annotation only: importing train here would be a cycle
    from .train import TrainConfig

__all__ = ["History", "TrainResult", "save_checkpoint", "load_checkpoint",
           "diverged_error"]


# ----------------------------------------------------------------------------------
# history and result
# ----------------------------------------------------------------------------------

@dataclass
class History:
    """What a run recorded at its checkpoints (equal-length lists).

    Attributes
    ----------
    step : list of int
    t : list of float
        Flow time of the paper's Section 3 (``step · 2 lr c``).
    loss : list of float
        Expected loss (:func:`qwem_lib.losses.expected_loss`) at W.
    singular_values : list of list of float
        The d singular values of W, descending, per checkpoint.
    analogy : list of (float or None)
        Analogy accuracy (paper's protocol) if words were given, else None.
    """

    step: list = field(default_factory=list)
    t: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    singular_values: list = field(default_factory=list)
    analogy: list = field(default_factory=list)

    _FIELDS = ("step", "t", "loss", "singular_values", "analogy")

    def __post_init__(self):
        n = {len(getattr(self, f)) for f in self._FIELDS}
        if len(n) > 1:
            raise QwemError("a History needs equal-length lists step, t, loss, "
                            "singular_values and analogy")

    def append(self, step: int, t: float, loss: float, singular_values,
               analogy: float | None) -> None:
        self.step.append(int(step))
        self.t.append(float(t))
        self.loss.append(float(loss))
        self.singular_values.append([float(s) for s in singular_values])
        self.analogy.append(None if analogy is None else float(analogy))

    def to_dict(self) -> dict:
        return {f: list(getattr(self, f)) for f in self._FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        try:
            return cls(**{f: list(d[f]) for f in cls._FIELDS})
        except (KeyError, TypeError) as e:
            raise QwemError(f"not a training history (missing {e})") from None

    def save(self, path) -> Path:
        """Write the history as JSON, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "History":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise QwemError(f"cannot read the training history {path}: {e}") from None
        return cls.from_dict(d)

    def s2(self) -> np.ndarray:
        """Squared singular values, ``(T, d)`` float64."""
        return np.asarray(self.singular_values, dtype=np.float64) ** 2


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`qwem_lib.train.train`.

    Attributes
    ----------
    W : (V, d) tensor
        Final embeddings (on the training device).
    history : History
    lr : float
        The learning rate used (resolved if ``"auto"``).
    steps : int
        The number of steps run (resolved if ``"auto"``).
    dt : float
        Flow time per step.
    config : TrainConfig
    """

    W: torch.Tensor
    history: History
    lr: float
    steps: int
    dt: float
    config: TrainConfig


# ----------------------------------------------------------------------------------
# checkpoints on disk
# ----------------------------------------------------------------------------------

def save_checkpoint(path, meta: dict, **arrays) -> Path:
    """Write ``arrays`` and ``meta`` to the ``.npz`` file ``path``, atomically.

    ``meta`` (JSON-serialisable: the configuration, a fingerprint of the corpus, ...)
    is stored as the JSON string ``meta``; :func:`load_checkpoint` refuses a
    checkpoint whose ``meta`` differs from the run's.  A crash while writing leaves
    the previous checkpoint in place (:func:`qwem_lib._atomic.atomic_path`).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays, meta=np.array(json.dumps(meta)))
    return path


def load_checkpoint(path, meta: dict) -> dict:
    """The arrays of the checkpoint ``path`` (a dict), if written with ``meta``.

    Raises
    ------
    QwemError
        If the file cannot be read (missing, truncated, not a checkpoint), or if its
        saved ``meta`` differs from ``meta`` (compared after a JSON round trip, so
        tuples and lists agree): another configuration or corpus.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            ck = {k: z[k] for k in z.files}
        saved = json.loads(str(ck["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise QwemError(f"cannot read the checkpoint {path}: {e}; delete it to start "
                        "afresh") from None
    if saved != json.loads(json.dumps(meta)):
        raise QwemError(f"the checkpoint {path} was written with another "
                        "configuration or corpus; use the same settings to resume, or "
                        "another out_dir")
    return ck


def diverged_error(step, what: str, lr: float, hint: str) -> QwemError:
    """The error for a run whose ``what`` (the loss, W) became NaN/inf at ``step``.

    ``step`` is printed as given (an int, or a range such as ``"33..64"``); ``hint``
    says what to change.  Returned, not raised: ``raise diverged_error(...)``.
    """
    return QwemError(f"training diverged at step {step}: {what} became NaN/inf with "
                     f"learning rate {lr:g}; {hint}")
