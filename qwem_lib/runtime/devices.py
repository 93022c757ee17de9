"""Which torch device a computation runs on."""

from __future__ import annotations

import torch

from .errors import QwemError

__all__ = ["default_device", "DEVICE_CHOICES"]

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def _refuse(device, why: str, fix: str | None = None) -> QwemError:
    fix = fix or (f"use one of {DEVICE_CHOICES} (auto: CUDA when available, else "
                  "the CPU)")
    return QwemError(f"device (--device) {device!r} {why}; {fix}")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given and usable here (``"auto"`` or None: CUDA when available,
    else CPU).

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or a
        ``torch.device``.

    Raises
    ------
    QwemError
        For a name torch does not know (``"gpu"``, ``"cuda:x"``), a CUDA index past
        the devices present, or CUDA or MPS where this machine has none (naming
        ``--device`` and the valid choices).
    """
    if device is None or (isinstance(device, str) and device.strip() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except RuntimeError:
            raise _refuse(device, "is not a device name") from None
    else:
        raise _refuse(device, "is not a device name")
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise _refuse(str(device), "was requested but torch sees no CUDA device "
                          "here", "use --device cpu (or auto)")
        if dev.index is not None and dev.index >= n:
            raise _refuse(str(device), f"is past the {n} CUDA device(s) here",
                          f"use cuda:0 to cuda:{n - 1}, cuda, cpu or auto")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise _refuse(str(device), "was requested but MPS is not available here",
                          "use --device cpu (or auto)")
        return dev
    raise _refuse(str(device), f"is a {dev.type} device, which qwem does not use")
