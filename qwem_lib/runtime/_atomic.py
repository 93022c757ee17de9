"""Writing outputs: never a partial file left as if complete, never an input destroyed.

:func:`atomic_path` writes a regular file through a temporary file renamed over it on
success (a new file gets the mode the umask gives, an existing one keeps its mode); a
device file, FIFO or other special file is written into, as ``cp`` would, never
replaced; the file and then its folder are synced to the disk (``fsync``), so a
finished output survives a crash of the machine too.  :func:`check_outputs` runs
before any work: it refuses an output that is
one of the command's inputs however its path is spelled, two outputs naming one file,
and a location that cannot be written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Iterator

from .errors import QwemError

__all__ = ["atomic_path", "check_outputs", "write_text", "write_json", "strict_json",
           "DAMAGE"]

#: What a damaged ``.npz`` file (a checkpoint, a cache entry) can raise while it is
#: opened or an array read: a truncated or garbled zip (BadZipFile, EOFError,
#: OSError), a compressed member garbled (zlib.error), header fields garbled into an
#: unsupported compression method or the "encrypted" flag (NotImplementedError,
#: RuntimeError), a garbled .npy header or JSON (ValueError), a member missing
#: (KeyError), a garbled shape too large to allocate (MemoryError).  One tuple, used
#: by :mod:`qwem_lib.runtime.history` and :mod:`qwem_lib.runtime.cache` alike.
DAMAGE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
          NotImplementedError, RuntimeError, MemoryError)

# Errors of the place written to (not of the program): they become one line.
_PLACE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                 errno.EFBIG, errno.EISDIR)


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no thread-safe way to read it elsewhere
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk: "never a partial
    file" then holds if the machine stops, not only the process.  A file system that
    cannot sync a folder (EINVAL, e.g. some network mounts) is let be."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _place_error(dest: Path, exc: OSError) -> QwemError:
    return QwemError(f"cannot write {dest}: {exc.strerror or exc}; choose a writable "
                     "location with free space")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``dest`` only on success.

    For a regular (or new) file the temporary file lives beside ``dest`` (a symbolic
    link is followed: the file it points to is written), keeps ``dest``'s suffix (so
    writers that look at the extension, such as ``np.savez``, behave), and is renamed
    over it atomically; a new file gets the mode the umask gives, an existing one
    keeps its own.  For a device file, FIFO or socket, the finished bytes are copied
    into it.  If the body raises (or is interrupted), the temporary file is removed
    and ``dest`` is left untouched.  A place that cannot be written (permissions, a
    full or read-only disk) raises :class:`QwemError`.

    Examples
    --------
    >>> with atomic_path("out.txt") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    dest = Path(dest)
    try:
        st = os.stat(dest)  # through links, /dev/stdout's to a pipe included
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _place_error(dest, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise QwemError(f"{dest} is a folder; give a file name")
    special = st is not None and not stat.S_ISREG(st.st_mode)
    target = dest if special else Path(os.path.realpath(dest))
    try:
        if not special:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.",
                                    suffix=f".part{target.suffix}",
                                    dir=None if special else target.parent)
        os.close(fd)
    except OSError as exc:
        raise _place_error(dest, exc) from None
    tmp = Path(name)
    try:
        yield tmp
        if special:
            with open(tmp, "rb") as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            tmp.unlink()
        else:
            os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None
                     else 0o666 & ~_umask())
            _fsync(tmp)                  # the bytes on disk before the name points at
            os.replace(tmp, target)      # them (else a crash can leave an empty file)
            _fsync(target.parent)        # and the rename itself
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in _PLACE_ERRNOS:
            raise _place_error(dest, exc) from None
        raise


def strict_json(obj, **kwargs) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity`` (not JSON): a
    non-finite float becomes ``null``; numpy scalars and arrays, and paths, are
    converted."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(obj):
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_text(dest: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` through :func:`atomic_path`."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(dest: str | os.PathLike, obj, **kwargs) -> None:
    """Write ``obj`` as strict JSON (:func:`strict_json`) to ``dest``, atomically."""
    write_text(dest, strict_json(obj, **kwargs) + "\n")


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _writable(path: Path) -> str | None:
    """Why ``path`` cannot be written as an output, or None if it can."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a device, FIFO, /dev/stdout
            return None if os.access(path, os.W_OK) else "it is read-only"
    except OSError:
        pass  # not there (yet)
    target = Path(os.path.realpath(path))
    if target.exists():
        if not os.access(target, os.W_OK):
            return "it is read-only"
        if stat.S_ISREG(target.stat().st_mode) and not os.access(target.parent,
                                                                   os.W_OK):
            return f"its folder {target.parent} is read-only"
        return None
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is read-only"
    return None


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike | None]],
                  inputs: Iterable[tuple[str, str | os.PathLike | None]] = ()) -> None:
    """Refuse, before any work, outputs that would destroy an input or each other.

    Parameters
    ----------
    outputs, inputs : iterables of (label, path)
        ``label`` names the option in messages (``"--out"``); a None path is skipped.

    Raises
    ------
    QwemError
        If an output is one of the inputs (compared as resolved files: symbolic
        links, ``./`` and relative spellings, hard links), two outputs name the same
        file, or an output cannot be written.
    """
    outputs = [(label, p) for label, p in outputs if p is not None]
    for label, p in outputs:        # Path("new/") would silently become the file new
        text = os.fspath(p)
        if not text or text.endswith(("/", os.sep)):
            raise QwemError(f"{label} {text!r} names a folder, not a file; give a file "
                            "name (e.g. new/embeddings.txt)")
    outs = [(label, Path(p)) for label, p in outputs]
    ins = [(label, Path(p)) for label, p in inputs if p is not None]
    for i, (label, path) in enumerate(outs):
        for in_label, in_path in ins:
            if _same_file(path, in_path):
                raise QwemError(f"{label} {path} is the input {in_label} {in_path}; "
                                "writing it would destroy the input: choose another "
                                "output file")
        for other_label, other in outs[:i]:
            if _same_file(path, other):
                raise QwemError(f"{other_label} and {label} name the same file "
                                f"{path}; give each its own file")
        if Path(os.path.realpath(path)).is_dir():
            raise QwemError(f"{label} {path} is a folder; give a file name")
        why = _writable(path)
        if why:
            raise QwemError(f"cannot write {label} {path}: {why}; choose a writable "
                            "location")
