"""What a training run records and keeps: its history, its result, its checkpoints.

Shared by both trainers, :func:`qwem_lib.train.train` (on the pair statistics) and
:func:`qwem_lib.word2vec.train_word2vec` (streamed over the corpus):

* :class:`History`: what a run recorded at its checkpoints (step, flow time, loss,
  singular values, analogy accuracy), saved as ``history.json``;
* :func:`save_checkpoint` and :func:`load_checkpoint`: the full state of a run in one
  ``.npz``, written atomically, with a JSON ``meta`` (every setting that changes the
  trajectory, fingerprints of the data) that a resumed run must match; a difference
  is refused naming each setting (:func:`meta_differences`), a damaged file with one
  line;
* :data:`RUN_FILES` and :func:`prepare_run_dir`: a new run never mixes with another
  run's files;
* :func:`run_dir_lock`: one process at a time writes a run folder (a second one is
  refused in one line, naming the first's pid);
* :func:`diverged_error`: the one message for a run whose loss or W became NaN/inf.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ._atomic import DAMAGE, atomic_path
from ._repr import short_repr
from .errors import QwemError

__all__ = ["History", "RUN_FILES", "LOCK_FILE", "CHECKPOINT", "HISTORY", "DTYPES",
           "check_run_dir", "prepare_run_dir", "open_run_dir", "run_dir_lock",
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


# ----------------------------------------------------------------------------------
# the run folder
# ----------------------------------------------------------------------------------

RUN_FILES = ("checkpoint.npz", "history.json", "embeddings.txt", "config.json")
CHECKPOINT, HISTORY = RUN_FILES[:2]   # a trainer's checkpoint and history, in out_dir
# The dtypes a trainer's ``dtype`` setting names.
DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: The lock file of a run folder being written (:func:`run_dir_lock`): hidden, empty
#: but for the writer's pid, removed when the run ends; not an output of the run.
LOCK_FILE = ".qwem-run.lock"

# The run folders this process holds: real path -> [fd, depth, created folders].
_held: dict[str, list] = {}
_held_guard = threading.Lock()


def _folder_error(out: Path) -> QwemError:
    return QwemError(f"the output folder {out} is a file; give a folder (out_dir, "
                     "--out)")


def _in_use(out: Path, pid: str) -> QwemError:
    return QwemError(f"run folder {out} is in use by another qwem process "
                     f"(pid {pid or 'unknown'}); wait for it or choose another --out")


def _holder(lock: Path) -> str:
    """The pid written in another process's lock file ('' if not written yet)."""
    for _ in range(20):  # the holder writes it just after taking the lock
        try:
            text = lock.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return ""
        if text:
            return text
        time.sleep(0.01)
    return ""


def _try_lock(fd: int, tries: int = 1) -> bool:
    """Take the exclusive lock of ``fd`` without waiting for its holder: False if
    another process holds it.  ``tries`` > 1 retries for a few hundredths of a
    second (another process's check holds it that long).  A file system without
    locks (or a platform without ``fcntl``) is let be: True."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return True
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS,
                             errno.EINVAL):
                return True
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if attempt + 1 < tries:
            time.sleep(0.01)
    return False


def _missing_folders(out: Path) -> list[Path]:
    missing, folder = [], out
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _acquire(out: Path) -> tuple[int, list[Path]]:
    """Create ``out`` if needed and take the lock of ``out/LOCK_FILE``."""
    lock = out / LOCK_FILE
    created = _missing_folders(out)
    for _ in range(100):
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                     0o644)
        try:
            if not _try_lock(fd, tries=5):
                raise _in_use(out, _holder(lock))
            try:  # the file locked must still be the one named (not one removed
                same = os.path.samestat(os.fstat(fd), os.stat(lock))  # by its holder
            except FileNotFoundError:                         # as it let go)
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
                return fd, created
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise QwemError(f"cannot lock the run folder {out}: its lock file {LOCK_FILE} "
                    "keeps changing; is another qwem process starting there?")


def _release(out: Path, fd: int, created: list[Path]) -> None:
    """Remove the lock file (while still holding its lock), let go, and remove the
    folders made for the run if they are still empty."""
    with contextlib.suppress(OSError):
        os.unlink(out / LOCK_FILE)
    os.close(fd)
    for folder in created:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _locked_by_other(out: Path) -> None:
    """Refuse ``out`` if another process holds its lock (this process may)."""
    if os.path.realpath(out) in _held:
        return
    lock = out / LOCK_FILE
    try:
        fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # no lock file (or not readable): no run writes it
    try:
        if not _try_lock(fd):
            raise _in_use(out, _holder(lock))
    finally:
        os.close(fd)  # closing the file lets go of the lock it took, if any


@contextlib.contextmanager
def run_dir_lock(out_dir) -> Iterator[Path]:
    """Hold ``out_dir`` for a run writing it: one process at a time.

    The folder is created if missing, and an exclusive lock (``flock``, not waited
    for) is taken on its hidden file :data:`LOCK_FILE`, which holds this process's
    pid.  A second process (a second ``qwem train --out`` on the same folder) is
    refused at once.  On exit the lock file is removed and the lock let go, and the
    folders created here are removed if the run left them empty; if the process
    dies, the system lets go of the lock (a stale lock file left behind is harmless:
    it is not an output, and the next run takes it).  Nested use in one process (a
    command holding the folder, then the trainer) is allowed: only the outermost
    takes and releases the lock.

    Raises
    ------
    QwemError
        If ``out_dir`` is a file, cannot be created, or is in use by another
        process: ``run folder X is in use by another qwem process (pid N); wait
        for it or choose another --out``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise _folder_error(out)
    key = os.path.realpath(out)
    with _held_guard:
        entry = _held.get(key)
        if entry is None:
            try:
                fd, created = _acquire(out)
            except OSError as exc:
                raise QwemError(f"cannot prepare the output folder {out}: "
                                f"{exc.strerror or exc}; choose a writable "
                                "folder") from None
            entry = _held[key] = [fd, 0, created]
        entry[1] += 1
    try:
        yield out
    finally:
        with _held_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                _release(out, entry[0], entry[2])


def check_run_dir(out_dir, *, resume: bool, overwrite: bool) -> list[str]:
    """The checks of :func:`prepare_run_dir`, touching nothing: a command calls this
    first, and the trainer deletes an old run only once every input has been
    checked and the new run is about to write.  Returns the run files found.

    A folder that another process holds (:func:`run_dir_lock`) is refused."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise _folder_error(out)
    _locked_by_other(out)
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
    * a folder another process holds (:func:`run_dir_lock`) is refused; the run
      itself should write inside ``with run_dir_lock(out_dir):``.

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

# What a damaged file can raise while it is opened or an array read (the same tuple
# as the cache's: qwem_lib.runtime._atomic.DAMAGE).
_DAMAGE = DAMAGE

# Meta keys holding fingerprints: a difference is named, not printed as two hashes.
_FINGERPRINTS = {"data": "the data (corpus statistics) differ",
                 "corpus": "the corpus differs",
                 "tokens": "the token stream differs"}


def open_run_dir(out_dir, *, resume: bool, overwrite: bool, meta, required,
                 check=None):
    """Prepare a trainer's ``out_dir`` (:func:`prepare_run_dir`) and, when resuming,
    load its checkpoint, checked against this run's settings.

    Parameters
    ----------
    out_dir : path or None
        None: no folder, no checkpoint (every result is None).
    meta : callable
        Returns what the checkpoint is written with (called only with ``out_dir``).
    required : sequence of str
        The arrays a checkpoint of this run must hold.
    check : callable, optional
        ``check(ck, path)`` checks a loaded checkpoint further (its state, for
        damage), raising :class:`QwemError`.

    Returns
    -------
    ck_path : Path or None
    meta : dict or None
    ck : dict or None
        The loaded checkpoint; None for a fresh start.
    """
    if out_dir is None:
        return None, None, None
    prepare_run_dir(out_dir, resume=resume, overwrite=overwrite)
    ck_path = Path(out_dir) / CHECKPOINT
    meta = meta()
    ck = None
    if resume and ck_path.exists():
        ck = load_checkpoint(ck_path, meta, required=tuple(required))
        if check is not None:
            check(ck, ck_path)
    return ck_path, meta, ck


def save_checkpoint(path, meta: dict, **arrays) -> Path:
    """Write ``arrays`` and ``meta`` to the ``.npz`` file ``path``, atomically.

    ``meta`` (JSON-serialisable: every setting that changes the run's trajectory and
    fingerprints of its data) is stored as the JSON string ``meta``;
    :func:`load_checkpoint` refuses a checkpoint whose ``meta`` differs from the
    run's.  A crash while writing leaves the previous checkpoint in place
    (:func:`qwem_lib.runtime._atomic.atomic_path`).
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
