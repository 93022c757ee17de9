"""How much memory a device has free, and refusing work that would not fit.

The dense stages (counting pairs into a V x V matrix, the target built from it, the
full-batch trainer) need memory in proportion to V^2: at the paper's V = 10,000 a
float64 V x V matrix is 800 MB, at V = 50,000 it is 20 GB.  Rather than start and be
killed by the system (or fail deep inside torch), they call :func:`require` up front,
which raises :class:`~qwem_lib.runtime.errors.QwemError` naming the size that would fit.

* :func:`available_bytes`: on a CPU the lower of ``MemAvailable`` in ``/proc/meminfo``
  and, in a container, the cgroup's limit minus its usage (cgroup v2 ``memory.max``
  and ``memory.current``, v1 ``memory.limit_in_bytes`` and ``memory.usage_in_bytes``;
  page cache that can be dropped, ``inactive_file``, counts as free); on CUDA what
  ``torch.cuda.mem_get_info`` reports free plus what torch's caching allocator holds
  unused.  None where it cannot be told (another system or device): then nothing is
  refused.
* :func:`require` and :func:`require_dense`: refuse a need larger than that.

Set the environment variable ``QWEM_MEMORY_CHECK=0`` to switch the check off (for
example where swap, or memory the estimate does not see, makes a larger run work).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Callable

import torch

from .errors import QwemError

__all__ = ["available_bytes", "require", "require_dense", "dense_vocab_that_fits",
           "peak_rss_bytes",
           "ENV"]

ENV = "QWEM_MEMORY_CHECK"
_CGROUP = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")
_MEMINFO = Path("/proc/meminfo")
_NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number (about 2^63)


def _read_int(path: Path) -> int | None:
    """The integer in ``path``; None if absent, unreadable, or "max" (no limit)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _inactive_file(stat: Path) -> int:
    """Page cache the kernel can drop: ``inactive_file`` in a cgroup's memory.stat."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return 0
    values = dict(line.split(None, 1) for line in lines if " " in line)
    for key in ("total_inactive_file", "inactive_file"):  # v1 hierarchical, v1/v2
        try:
            return int(values[key])
        except (KeyError, ValueError):
            continue
    return 0


def _meminfo_available() -> int | None:
    try:
        with open(_MEMINFO, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_dirs() -> list[tuple[Path, str, str, str]]:
    """Folders of this process's memory cgroup and its ancestors, with the names of
    their limit, usage and stat files."""
    v2 = ("memory.max", "memory.current", "memory.stat")
    v1 = ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat")
    paths = {"v2": None, "v1": None}
    try:
        for line in _PROC_CGROUP.read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            if parts[0] == "0" and parts[1] == "":
                paths["v2"] = parts[2]
            elif "memory" in parts[1].split(","):
                paths["v1"] = parts[2]
    except OSError:
        pass
    out = []
    for root, rel, names in ((_CGROUP, paths["v2"], v2),
                             (_CGROUP / "memory", paths["v1"], v1)):
        # Inside a container the mount is usually the process's own cgroup; on a host
        # it is the root, below which /proc/self/cgroup names the process's.
        dirs = [root]
        if rel and rel != "/":
            d = root / rel.lstrip("/")
            while d != root and root in d.parents:
                dirs.append(d)
                d = d.parent
        out.extend((d, *names) for d in dirs if (d / names[0]).exists())
    return out


def _cgroup_available() -> int | None:
    best = None
    for d, limit_name, usage_name, stat_name in _cgroup_dirs():
        limit = _read_int(d / limit_name)
        if limit is None or limit >= _NO_LIMIT:
            continue
        usage = _read_int(d / usage_name) or 0
        free = max(limit - usage + _inactive_file(d / stat_name), 0)
        free = min(free, limit)
        best = free if best is None else min(best, free)
    return best


def available_bytes(device: str | torch.device | None = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device``; None if unknown.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"`` (also None), ``"cuda"``/``"cuda:N"``; any other device type gives
        None.
    """
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cpu":
        values = [v for v in (_meminfo_available(), _cgroup_available())
                  if v is not None]
        return min(values) if values else None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return None
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        try:
            free, _total = torch.cuda.mem_get_info(index)
        except RuntimeError:  # a driver that cannot tell
            return None
        cached = (torch.cuda.memory_reserved(index)
                  - torch.cuda.memory_allocated(index))
        return int(free) + max(int(cached), 0)
    return None


def _enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def require(nbytes: float, device, what: str, fix: str | Callable[[int], str]) -> None:
    """Refuse work that needs more memory than ``device`` has available.

    Parameters
    ----------
    nbytes : float
        The estimated peak need.
    device : str or torch.device or None
        Where the memory is needed (None: the CPU).
    what : str
        Names the work, e.g. ``"dense V x V work for V = 50,000"``.
    fix : str or callable
        What to do instead; a callable gets the available bytes (to say what fits).

    Raises
    ------
    QwemError
        ``"<what> needs about 60.0 GB, but 20.1 GB is available; <fix>"``, unless the
        check is switched off (``QWEM_MEMORY_CHECK=0``) or the available memory is
        unknown.
    """
    if not _enabled():
        return
    avail = available_bytes(device)
    if avail is None or nbytes <= avail:
        return
    hint = fix(avail) if callable(fix) else fix
    raise QwemError(f"{what} needs about {_gb(nbytes)}, but {_gb(avail)} is available; "
                    f"{hint} ({ENV}=0 skips this check)")


def dense_vocab_that_fits(nbytes_available: float, bytes_per_entry: float,
                          overhead: float = 0.0) -> int:
    """The largest V, to two significant figures, whose dense work fits."""
    v = math.sqrt(max(nbytes_available - overhead, 0.0) / bytes_per_entry)
    if v < 10:
        return int(v)
    step = 10 ** (int(math.log10(v)) - 1)
    return int(v // step * step)


def require_dense(vocab_size: int, bytes_per_entry: float, device, *,
                  what: str = "dense V x V work", overhead: float = 0.0) -> None:
    """:func:`require` for work of ``bytes_per_entry · V^2 + overhead`` bytes.

    The message names V, the memory needed and available, and the largest
    ``--vocab-size`` that fits, e.g. "dense V x V work for V = 50,000 needs about
    60.0 GB, but 20.1 GB is available; choose a smaller --vocab-size (about 18,000
    fits) or a machine with more memory".
    """
    V = int(vocab_size)
    need = bytes_per_entry * float(V) * float(V) + overhead

    def fix(avail: int) -> str:
        fits = dense_vocab_that_fits(avail, bytes_per_entry, overhead)
        return (f"choose a smaller --vocab-size (about {fits:,} fits) or a machine "
                "with more memory")

    require(need, device, f"{what} for V = {V:,}", fix)


def peak_rss_bytes() -> int | None:
    """The largest resident set size of this process so far, in bytes (None where
    the platform does not say): what "peak memory" means in ``qwem embed``.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    program's own memory.  ``getrusage``'s ``ru_maxrss``, the fallback elsewhere,
    also counts the memory of the process that started this one when it was started
    with ``vfork`` (as Python's ``subprocess`` does): a ``qwem embed`` launched from a
    notebook holding 5 GB would report at least 5 GB.
    """
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024       # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
