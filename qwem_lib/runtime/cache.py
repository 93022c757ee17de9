"""The cache: results stored under ``cache_dir()``, keyed by everything they depend on.

An entry is an ``.npz`` file of arrays, ``cache_dir()/KIND/HASH.npz``, where the hash is
over a *key*: a JSON-able dict of the settings that change the result, the identity
of every input file (its content hash, never its name, size or modification time, which
``cp -p`` restores), and a fingerprint of the library code that computes it (the
source of the named modules and of every ``qwem_lib`` module they import, with the
numpy and torch versions).  The full key is stored in the entry and compared when it
is read, so an entry is only ever returned for the same key.

A damaged entry (truncated, corrupted, not an ``.npz``) is reported in one line
(:class:`CacheWarning`) and recomputed; a cache that cannot be written (read-only,
full) is reported once and the result is still returned.  Every cache of the project
goes through :func:`cached` (tokens, closed forms, eigenbases, runs, the chapters'
runs).

Examples
--------
>>> from qwem_lib import cache
>>> arrays, hit = cache.cached("demo", {"n": 3},  # doctest: +SKIP
...                            lambda: {"x": np.arange(3)}, code=("qwem_lib.runtime.cache",))
"""

from __future__ import annotations

import ast
import errno
import functools
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from ._atomic import DAMAGE
from .errors import QwemError

__all__ = ["CacheWarning", "cached", "load", "store", "entry_path", "key_digest",
           "file_identity", "cache_dir", "code_fingerprint",
           "function_fingerprint"]

_KEY = "__key__"  # the array in each entry holding its full key (JSON)


class CacheWarning(UserWarning):
    """A cache entry was damaged (and is recomputed), or the cache cannot be written."""


# ----------------------------------------------------------------------------------
# what a key is made of
# ----------------------------------------------------------------------------------

_identities: dict[tuple, dict] = {}


#: How a file's bytes are read, by its suffix (qwem_lib.corpus.open_binary): part of a
#: file's identity, since the same bytes named s.txt.gz and s.txt are two texts.
_READ_AS = {".bz2": "bz2", ".gz": "gzip", ".xz": "xz", ".lzma": "xz", ".zip": "zip"}


def file_identity(path: str | os.PathLike) -> dict:
    """``{"sha256": ..., "size": ..., "read_as": ...}`` of a file's content, and how
    it is decompressed (``read_as``: from its suffix, ``plain`` when none applies).

    Hashed once per process for each version of the file (the memo is keyed by
    device, inode, size and the modification *and* change times; the change time
    cannot be set back by ``cp -p`` or ``touch``).  About 0.1 s per 100 MB.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise QwemError(f"cannot read {path} ({exc.strerror}); check the path") from None
    memo = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if memo not in _identities:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
        except OSError as exc:
            raise QwemError(f"cannot read {path} ({exc.strerror}); check the "
                            "path and its permissions") from None
        _identities[memo] = {"sha256": h.hexdigest(), "size": st.st_size}
    return dict(_identities[memo], read_as=_READ_AS.get(path.suffix.lower(), "plain"))


def _default_cache_dir() -> Path:
    env = os.environ.get("QWEM_CACHE", "")
    if env:
        return Path(env).expanduser()
    if "google.colab" in sys.modules:
        return Path("/content/qwem_cache")
    return Path.home() / ".cache" / "qwem"


def cache_dir() -> Path:
    """The cache folder, created if needed.

    ``QWEM_CACHE`` if set; else ``/content/qwem_cache`` in Google Colab; else
    ``~/.cache/qwem``.
    """
    path = _default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QwemError(f"cannot create the cache folder {path} ({exc}); set the "
                        "environment variable QWEM_CACHE to a writable folder") from exc
    return path


def _module_file(name: str) -> Path | None:
    root = Path(__file__).resolve().parents[1]  # the qwem_lib folder
    rel = name.split(".")[1:]
    if not rel:
        return root / "__init__.py"
    for candidate in (root.joinpath(*rel).with_suffix(".py"),
                      root.joinpath(*rel, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, source: str) -> set[str]:
    """The ``qwem_lib`` modules a module's source imports (anywhere in it)."""
    package = "qwem_lib"
    path = _module_file(name)
    # the package a relative import starts from: the module's own for a package
    here = name.split(".") if path is not None and path.name == "__init__.py" \
        else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(package + ".")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here[:len(here) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == package:
                base = node.module
            else:
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m != package and _module_file(m) is not None}


@functools.cache
def code_fingerprint(*modules: str) -> str:
    """A hash of the code that computes a result.

    The source of each module named (``"qwem_lib.pipeline"``, ...) and of every
    ``qwem_lib`` module it imports, transitively (found by reading the sources, so
    imports inside functions count), plus the numpy and torch versions.  Any edit of
    that code gives a new fingerprint, so no result of older code is reused.
    """
    import torch

    todo, seen = list(modules), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            raise ValueError(f"{name} is not a module of qwem_lib")
        source = path.read_text(encoding="utf-8")
        seen[name] = source
        todo.extend(_imports(name, source) - set(seen))
    h = hashlib.sha256(f"numpy {np.__version__} torch {torch.__version__}".encode())
    for name in sorted(seen):
        h.update(f"\0{name}\0".encode())
        h.update(seen[name].encode())
    return h.hexdigest()[:20]


def function_fingerprint(fn: Callable) -> str:
    """A hash of a function's code, and of the functions of its own module that it
    calls by name or closes over, transitively (for results computed by a chapter's
    own functions: an edit of one gives a new fingerprint).  Values it reads are not
    part of it: they belong in the key."""
    import sys
    import types

    h = hashlib.sha256(sys.version.encode())
    seen: set[int] = set()

    def visit_code(co: types.CodeType, env: dict, module: str) -> None:
        h.update(co.co_code)
        h.update(repr((co.co_names, co.co_varnames)).encode())
        for const in co.co_consts:
            if isinstance(const, types.CodeType):
                visit_code(const, env, module)
            else:
                h.update(repr(const).encode())
        for name in co.co_names:
            obj = env.get(name)
            if isinstance(obj, types.FunctionType) and obj.__module__ == module:
                visit(obj)

    def visit(f: types.FunctionType) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        visit_code(f.__code__, f.__globals__, f.__module__)
        for cell in f.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(value, types.FunctionType):
                visit(value)

    if not isinstance(fn, types.FunctionType):
        raise TypeError(f"expected a function, got {type(fn).__name__}")
    visit(fn)
    return h.hexdigest()[:20]


def _code_text(code: Iterable) -> str:
    modules = tuple(c for c in code if isinstance(c, str))
    parts = [code_fingerprint(*modules)] if modules else []
    parts += [function_fingerprint(c) for c in code if not isinstance(c, str)]
    return " ".join(parts)


def _plain(obj):
    """``obj`` as JSON-able data (paths as strings, numpy scalars as Python's)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return repr(obj)  # 'nan', 'inf': distinct, and still strict JSON
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cache keys hold JSON-able values, not {type(obj).__name__}")


def _key_text(kind: str, key: Mapping, code: Iterable[str]) -> str:
    full = {"kind": kind, "key": _plain(key), "code": _code_text(code)}
    return json.dumps(full, sort_keys=True, allow_nan=False)


def key_digest(kind: str, key: Mapping, *, code: Iterable[str]) -> str:
    """The hash naming the entry of ``(kind, key, code)``."""
    return hashlib.sha256(_key_text(kind, key, tuple(code)).encode()).hexdigest()[:24]


def entry_path(kind: str, key: Mapping, *, code: Iterable[str]) -> Path:
    """Where the entry of ``(kind, key, code)`` lives (it may not exist)."""

    return cache_dir() / kind / f"{key_digest(kind, key, code=code)}.npz"


# ----------------------------------------------------------------------------------
# reading and writing entries
# ----------------------------------------------------------------------------------

# What a damaged entry can raise when it is read: the same tuple as a checkpoint's.
_DAMAGE = DAMAGE
_unwritable: set[str] = set()


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=4)


def load(kind: str, key: Mapping, *, code: Iterable[str]) -> dict | None:
    """The arrays of the entry for ``key``, or None when there is none.

    Every array is read (so a corrupted one is found here, not later); a damaged
    entry, or one stored under another key, is reported, removed and None returned.
    """

    code = tuple(code)
    try:
        path = cache_dir() / kind / f"{key_digest(kind, key, code=code)}.npz"
    except QwemError as exc:  # no cache folder can be made
        _warn_unwritable(str(exc), "")
        return None
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        stored = str(arrays.pop(_KEY))
    except _DAMAGE as exc:
        _warn(f"damaged cache entry {path} ({type(exc).__name__}: {exc}); "
              "recomputing it")
        _discard(path)
        return None
    if stored != _key_text(kind, key, code):
        _warn(f"cache entry {path} was stored under another key; recomputing it")
        _discard(path)
        return None
    return arrays


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # read-only cache: it is recomputed every time, and store() warns


def _warn_unwritable(reason: str, where: str) -> None:
    if where not in _unwritable:
        _unwritable.add(where)
        _warn(f"cannot write to the cache{' ' + where if where else ''} ({reason}); "
              "results are not cached: set QWEM_CACHE to a writable folder with "
              "free space")


def store(kind: str, key: Mapping, arrays: Mapping, *, code: Iterable[str]) -> bool:
    """Write ``arrays`` as the entry for ``key`` (atomically); False if it could not.

    A cache that cannot be written (read-only, full, missing) is reported once per
    folder, and the caller goes on with its result.
    """
    from ._atomic import atomic_path

    code = tuple(code)
    try:
        folder = cache_dir() / kind
        path = folder / f"{key_digest(kind, key, code=code)}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays, **{_KEY: np.array(_key_text(kind, key, code))})
    except QwemError as exc:
        _warn_unwritable(str(exc), "")
        return False
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                             errno.EDQUOT, errno.EFBIG, errno.ENOENT):
            raise
        _warn_unwritable(exc.strerror or str(exc), str(folder))
        return False
    return True


def cached(kind: str, key: Mapping, compute: Callable[[], Mapping], *,
           code: Iterable[str], cache: bool | str = True) -> tuple[dict, bool]:
    """``compute()``'s arrays, read from the cache when an entry for ``key`` exists.

    Parameters
    ----------
    kind : str
        The cache's sub-folder (``"tokens"``, ``"closed_form"``, ``"runs"``, ...).
    key : dict
        Everything the result depends on besides the code: settings, and the
        identities of input files (:func:`corpus_identity`, :func:`file_identity`).
    compute : callable
        Returns a dict of numpy arrays (strings as 0-d arrays); called on a miss.
    code : sequence of str or functions
        Modules whose code computes the result (:func:`code_fingerprint`), and
        functions outside the library that do (:func:`function_fingerprint`): a
        chapter passes its ``compute``.
    cache : True, False or "refresh"
        ``True``: read, else compute and write; ``"refresh"``: compute and write;
        ``False``: compute only.

    Returns
    -------
    arrays : dict
    hit : bool
        Whether the arrays were read from the cache.
    """
    if cache not in (True, False, "refresh"):
        raise QwemError(f"cache must be True, False or 'refresh', got {cache!r}")
    code = tuple(code)
    if cache is True:
        arrays = load(kind, key, code=code)
        if arrays is not None:
            return arrays, True
    arrays = dict(compute())
    if cache:
        store(kind, key, arrays, code=code)
    return arrays, False
