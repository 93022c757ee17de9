"""The banner the bench scripts print: the machine, its load and the software."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def cpu_model() -> str:
    """The CPU's model name (Linux), or "unknown"."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh
                         if ln.startswith("model name")), "unknown")
    except OSError:
        return "unknown"


def machine(*packages: str) -> str:
    """``model, N cores; python X, pkg version, ...; load average a b c``."""
    def ver(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} (not installed)"

    soft = ", ".join([f"python {platform.python_version()}", *map(ver, packages)])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu_model()}, {os.cpu_count()} cores; {soft}; load average {load}"
