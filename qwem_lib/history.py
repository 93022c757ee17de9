"""What a training run records and keeps: its history, its result, its checkpoints.

Shared by both trainers, :func:`qwem_lib.train.train` (on the pair statistics) and
:func:`qwem_lib.word2vec.train_word2vec` (streamed over the corpus):

* :class:`History`: what a run recorded at its checkpoints (step, flow time, loss,
  singular values, analogy accuracy), saved as ``history.json``;
* :class:`TrainResult`: what a run returns (word2vec's result subclasses it);
* :func:`save_checkpoint` and :func:`load_checkpoint`: the full state of a run in one
  ``.npz``, written atomically, with a JSON ``meta`` (every setting that changes the
  trajectory, fingerprints of the data) that a resumed run must match; a difference
  is refused naming each setting (:func:`meta_differences`), a damaged file with one
  line;
* :data:`RUN_FILES` and :func:`prepare_run_dir`: a new run never mixes with another
  run's files;
* :func:`diverged_error`: the one message for a run whose loss or W became NaN/inf.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._repr import short_repr
from ._atomic import atomic_path
from .errors import QwemError

if TYPE_CHECKING:  # annotation only: importing train here would be a cycle
    from .train import TrainConfig

__all__ = ["History", "TrainResult", "RUN_FILES", "check_run_dir", "prepare_run_dir",
           "save_checkpoint", "load_checkpoint", "meta_differences",
           "data_fingerprint", "diverged_error"]


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

    __repr__ = short_repr

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
        """Write the history as strict JSON (a non-finite number as null),
        atomically."""
        from ._atomic import write_json

        path = Path(path)
        write_json(path, self.to_dict())
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

    __repr__ = short_repr

    W: torch.Tensor
    history: History
    lr: float
    steps: int
    dt: float
    config: TrainConfig


# ----------------------------------------------------------------------------------
# the run folder
# ----------------------------------------------------------------------------------

RUN_FILES = ("checkpoint.npz", "history.json", "embeddings.txt", "config.json")


def check_run_dir(out_dir, *, resume: bool, overwrite: bool) -> list[str]:
    """The checks of :func:`prepare_run_dir`, touching nothing: a command calls this
    first, and the trainer deletes an old run only once every input has been
    checked and the new run is about to write.  Returns the run files found."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise QwemError(f"the output folder {out} is a file; give a folder (out_dir, "
                        "--out)")
    if resume and (out / RUN_FILES[0]).exists():
        return []
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not overwrite:
        raise QwemError(f"{out} already holds a run ({', '.join(found)}); use "
                        "resume=True (--resume) to continue it, overwrite=True "
                        "(--overwrite) to replace it, or another folder")
    return found


def prepare_run_dir(out_dir, *, resume: bool, overwrite: bool) -> None:
    """Make ``out_dir`` ready for a run, so that a new run never mixes with another's.

    * ``out_dir`` exists but is not a folder: refused.
    * ``resume`` and ``out_dir/checkpoint.npz`` exists: left as it is (the trainer
      then checks that the checkpoint belongs to this run).
    * otherwise, if any of :data:`RUN_FILES` is there: refused, unless ``overwrite``,
      which deletes those files (only those) first.
    * the folder is created if needed.

    Raises
    ------
    QwemError
        Naming the files found and the fix.
    """
    out = Path(out_dir)
    found = check_run_dir(out, resume=resume, overwrite=overwrite)
    if resume and (out / RUN_FILES[0]).exists():
        return
    try:
        for name in found:
            (out / name).unlink()
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise QwemError(f"cannot prepare the output folder {out}: "
                        f"{e.strerror or e}; choose a writable folder") from None


# ----------------------------------------------------------------------------------
# checkpoints on disk
# ----------------------------------------------------------------------------------

# What a damaged file can raise while it is opened or an array read: a truncated or
# garbled zip (BadZipFile, EOFError, OSError), a compressed member garbled (zlib.error),
# header fields garbled into an unsupported method or the "encrypted" flag
# (NotImplementedError, RuntimeError), a garbled .npy header or JSON (ValueError), a
# member missing (KeyError), a garbled shape too large to allocate (MemoryError).
_DAMAGE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
           NotImplementedError, RuntimeError, MemoryError)

# Meta keys holding fingerprints: a difference is named, not printed as two hashes.
_FINGERPRINTS = {"data": "the data (corpus statistics) differ",
                 "corpus": "the corpus differs",
                 "tokens": "the token stream differs"}


def save_checkpoint(path, meta: dict, **arrays) -> Path:
    """Write ``arrays`` and ``meta`` to the ``.npz`` file ``path``, atomically.

    ``meta`` (JSON-serialisable: every setting that changes the run's trajectory and
    fingerprints of its data) is stored as the JSON string ``meta``;
    :func:`load_checkpoint` refuses a checkpoint whose ``meta`` differs from the
    run's.  A crash while writing leaves the previous checkpoint in place
    (:func:`qwem_lib._atomic.atomic_path`).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays, meta=np.array(json.dumps(meta)))
    return path


def data_fingerprint(*arrays) -> str:
    """SHA-256 of the arrays' shapes and float64 values, e.g. of P_ij and the unigram.

    Read in row blocks: a float64 tensor on the CPU is hashed without a copy, others
    a block at a time.  The same values give the same fingerprint in any dtype that
    holds them exactly and on any device.
    """
    h = hashlib.sha256()
    for a in arrays:
        t = (a.detach() if isinstance(a, torch.Tensor)
             else torch.as_tensor(np.asarray(a)))
        h.update(repr(tuple(t.shape)).encode())
        flat = t.reshape(t.shape[0] if t.ndim else 1, -1)
        rows = max(1, (1 << 22) // max(1, flat.shape[1]))  # 32 MB of float64 a block
        for i in range(0, flat.shape[0], rows):
            block = flat[i:i + rows].to(device="cpu", dtype=torch.float64)
            h.update(np.ascontiguousarray(block.numpy()).data)
    return "sha256:" + h.hexdigest()


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _damaged(path: Path, why: str) -> QwemError:
    return QwemError(f"cannot read the checkpoint {path}: {why} (damaged, or not a "
                     "checkpoint); delete it to start afresh (overwrite=True, "
                     "--overwrite)")


_ABSENT = object()


def _flatten(meta: dict, prefix: str = "") -> dict:
    """``{"config": {"lr": 1}}`` -> ``{"config.lr": 1}`` (lists are leaves)."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v) -> str:
    if v is _ABSENT:
        return "unset"
    return repr(v) if isinstance(v, str) else json.dumps(v)


def meta_differences(saved: dict, meta: dict) -> list[str]:
    """Each setting that differs between two metas, as ``"lr is 0.1 there and 0.2
    here"``, named by its own key (nested dicts flattened; a name that two settings
    share and that differ alike is listed once).  Fingerprints (``data``, ``corpus``,
    ``tokens``, or anything below them such as ``{"corpus": {"sha256": ...,
    "size": ...}}``) are named, not printed: "the corpus differs"."""
    a, b = _flatten(saved), _flatten(meta)
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        there, here = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if there == here:
            continue
        parts = key.split(".")
        name = parts[-1]
        known = [p for p in parts if p in _FINGERPRINTS]
        if known:  # a fingerprint, or a part of one ({"corpus": {"sha256": ...}})
            line = _FINGERPRINTS[known[0]]
        elif name == "sha256" and len(parts) > 1:
            line = f"the {parts[-2]} differs (its content hash)"
        else:
            line = f"{name} is {_show(there)} there and {_show(here)} here"
        if line not in out:
            out.append(line)
    return out


def load_checkpoint(path, meta: dict, required=()) -> dict:
    """The arrays of the checkpoint ``path`` (a dict), if written with ``meta``.

    Every array is read here, so a damaged file is found now, not in the middle of
    the resumed run.

    Parameters
    ----------
    path : path
    meta : dict
        What the run would write; compared after a JSON round trip (tuples and lists
        agree), with nested dicts flattened so that a difference names the setting.
    required : iterable of str
        Arrays the caller needs (besides ``meta``).

    Raises
    ------
    QwemError
        If the file cannot be read (missing, empty, truncated, garbled, not an
        ``.npz``, an array missing), or if its saved ``meta`` differs from ``meta``
        (naming each differing setting with both values).
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise _damaged(path, "not an .npz archive")
        with z:
            ck = {k: z[k] for k in z.files}
        saved = json.loads(str(ck["meta"]))
    except _DAMAGE as e:
        raise _damaged(path, _one_line(e)) from None
    if not isinstance(saved, dict):
        raise _damaged(path, "its meta is not a JSON object")
    diff = meta_differences(saved, json.loads(json.dumps(meta)))
    if diff:
        raise QwemError(f"the checkpoint {path} belongs to another run: "
                        f"{', '.join(diff)}; resume with the same settings, or start "
                        "afresh with overwrite=True (--overwrite) instead of resuming")
    missing = [k for k in required if k not in ck]
    if missing:
        raise _damaged(path, f"the array(s) {', '.join(missing)} are missing")
    return ck


def diverged_error(step, what: str, lr: float, hint: str) -> QwemError:
    """The error for a run whose ``what`` (the loss, W) became NaN/inf at ``step``.

    ``step`` is printed as given (an int, or a range such as ``"33..64"``); ``hint``
    says what to change.  Returned, not raised: ``raise diverged_error(...)``.
    """
    return QwemError(f"training diverged at step {step}: {what} became NaN/inf with "
                     f"learning rate {lr:g}; {hint}")
