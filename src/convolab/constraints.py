"""Projections applied to a weight after each optimizer step, as Keras's ``keras.constraints``.

Keras's formulas, with ``norms = sqrt(sum(w ** 2, axis, keepdims=True))`` and ``eps = 1e-7``:

- ``MaxNorm``: ``w * clip(norms, 0, max_value) / (eps + norms)``
- ``NonNeg``: ``w * (w >= 0)``
- ``UnitNorm``: ``w / (eps + norms)``
- ``MinMaxNorm``: ``w * (rate * clip(norms, min_value, max_value) + (1 - rate) * norms) / (eps + norms)``

For a Dense kernel ``(in, units)`` and a Conv2D kernel ``(kh, kw, in, out)``, ``axis=0`` and
``axis=[0, 1, 2]`` constrain each output unit's incoming weights.
"""

from __future__ import annotations

import numpy as np

from . import backend


def _axis(axis, owner):
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            raise ValueError(f"{owner}: `axis` must be an int or a list of ints; got {axis!r}")
        return [int(a) for a in axis]
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"{owner}: `axis` must be an int or a list of ints; got {axis!r}")
    return int(axis)


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=True))


def _number(value, arg_name, owner, lo=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < lo:
        raise ValueError(f"{owner}: `{arg_name}` must be a finite number >= {lo}; got {value!r}")
    return float(value)


class Constraint:
    """Base class: ``__call__(w) -> projected w`` (a new array of ``w``'s shape and dtype)."""

    def __call__(self, w):
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """The norm along ``axis`` of each slice at most ``max_value`` (default 2, ``axis=0``)."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number(max_value, "max_value", "MaxNorm")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (backend.epsilon() + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights set to zero."""

    def __call__(self, w):
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Each slice along ``axis`` scaled to norm 1 (default ``axis=0``)."""

    def __init__(self, axis=0):
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w):
        return (w / (backend.epsilon() + _norms(w, self.axis))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Each slice's norm moved (by ``rate``) into ``[min_value, max_value]`` (defaults 0, 1, rate 1, axis 0)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number(min_value, "min_value", "MinMaxNorm")
        self.max_value = _number(max_value, "max_value", "MinMaxNorm")
        if self.max_value < self.min_value:
            raise ValueError(
                f"MinMaxNorm: expected min_value <= max_value; got min_value={min_value!r} and max_value={max_value!r}"
            )
        self.rate = _number(rate, "rate", "MinMaxNorm")
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return (w * (desired / (backend.epsilon() + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


# Keras's lower-case aliases
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm}
_NAMES = {
    "max_norm": MaxNorm,
    "maxnorm": MaxNorm,
    "non_neg": NonNeg,
    "nonneg": NonNeg,
    "unit_norm": UnitNorm,
    "unitnorm": UnitNorm,
    "min_max_norm": MinMaxNorm,
    "minmaxnorm": MinMaxNorm,
}


def get(identifier, owner: str = "layer", arg_name: str = "constraint"):
    """A :class:`Constraint` from ``None``, a name (``'max_norm'``, ``'non_neg'``...), a config dict or an instance."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in CLASSES:
        return CLASSES[identifier["class_name"]].from_config(dict(identifier.get("config") or {}))
    raise ValueError(
        f"{owner}: unknown `{arg_name}` {identifier!r}; expected one of "
        f"{', '.join(repr(n) for n in ('max_norm', 'non_neg', 'unit_norm', 'min_max_norm'))}, "
        "a keras.constraints object (MaxNorm, NonNeg, UnitNorm, MinMaxNorm) or None"
    )


def serialize(constraint):
    """``{"class_name": ..., "config": ...}`` for a built-in constraint, ``None`` for ``None``."""
    if constraint is None:
        return None
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}
