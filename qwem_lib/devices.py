"""Which torch device a computation runs on."""

from __future__ import annotations

import torch

from .errors import QwemError

__all__ = ["default_device"]


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (``"auto"`` or None: CUDA when available, else CPU)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise QwemError("--device cuda was requested but torch sees no CUDA device; "
                        "use --device cpu (or auto)")
    return device
