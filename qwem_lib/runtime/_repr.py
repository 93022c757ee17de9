"""Short ``repr`` of result objects: shapes and a few values, not whole arrays.

A :class:`qwem_lib.pipeline.ClosedForm` holds a 10,000-word list and (V, d) tensors;
the dataclass default would print all of it.  :func:`short_repr` prints each field in
a line's worth: arrays and tensors as ``tensor(10000×200 float64)`` (with the values of
short 1-D ones), long lists by length and first items, nested results the same way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["short_repr", "summary"]

_ITEMS = 3      # first items shown of a long list, or values of a 1-D array
_SHORT = 8      # up to this many items are shown in full
_TEXT = 60      # strings are cut beyond this many characters


def _number(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return repr(int(x))
    return f"{float(x):.6g}"


def summary(value, depth: int = 0) -> str:
    """A one-line description of ``value`` for :func:`short_repr`."""
    kind = None
    if hasattr(value, "detach") and hasattr(value, "shape"):      # torch, no import
        kind, dtype = "tensor", str(value.dtype).removeprefix("torch.")
        dev = "" if value.device.type == "cpu" else f" {value.device}"
    elif isinstance(value, np.ndarray):
        kind, dtype, dev = "array", str(value.dtype), ""
    if kind is not None:
        shape = "×".join(str(n) for n in value.shape) or "scalar"
        head = f"{kind}({shape} {dtype}{dev}"
        if value.ndim == 0:
            return f"{head}: {_number(value.item())})"
        vals = None
        if value.ndim == 1 and value.shape[0]:
            if kind == "tensor" and not value.dtype.is_complex:
                vals = value.detach().cpu().tolist()
            elif kind == "array" and np.issubdtype(value.dtype, np.number):
                vals = value.tolist()
        if vals is not None and not isinstance(vals[0], complex):
            shown = ", ".join(_number(v) for v in vals[:_ITEMS])
            more = ", …" if len(vals) > _ITEMS else ""
            return f"{head}: [{shown}{more}])"
        return head + ")"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return short_repr(value) if depth < 2 else f"{type(value).__name__}(…)"
    if isinstance(value, str):
        return repr(value if len(value) <= _TEXT else value[:_TEXT] + "…")
    if isinstance(value, (list, tuple)):
        if len(value) <= _SHORT and all(isinstance(v, (int, float, str, bool))
                                        for v in value):
            return repr(value)
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        shown = ", ".join(summary(v, depth + 1) for v in value[:_ITEMS])
        more = ", …" if len(value) > _ITEMS else ""
        return f"{open_}{shown}{more}{close} ({len(value):,} items)"
    if isinstance(value, dict):
        if len(value) <= _SHORT and depth <= 1:
            inner = ", ".join(f"{k!r}: {summary(v, depth + 1)}"
                              for k, v in value.items())
            return "{" + inner + "}"
        keys = ", ".join(repr(k) for k in list(value)[:_ITEMS])
        more = ", …" if len(value) > _ITEMS else ""
        return f"{{{keys}{more}}} ({len(value):,} keys)"
    if isinstance(value, (float, np.floating)):
        return _number(value)
    text = repr(value)
    return text if len(text) <= _TEXT else text[:_TEXT] + "…"


def short_repr(self) -> str:
    """``Name(field=summary, ...)`` of a dataclass instance; use as ``__repr__``."""
    fields = [f for f in dataclasses.fields(self) if f.repr]
    inner = ", ".join(f"{f.name}={summary(getattr(self, f.name), 1)}" for f in fields)
    return f"{type(self).__name__}({inner})"
