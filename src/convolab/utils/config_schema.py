"""Checkers for JSON read from a file: the combinators every strict schema is built from.

Each checker is ``check(value, where) -> value`` and raises :class:`ModelFileError` naming
``where`` (a path such as ``model.layers[2].config.units``). Layers declare their file schema
with these (``config_schema`` on the class, see :mod:`convolab.layers.registry`), and
:mod:`convolab.saving.schema` builds the documents' schemas from them. This module imports
nothing of convolab's, so any layer may import it.
"""

from __future__ import annotations

import math
import reprlib

MAX_INT = 2**31 - 1
MAX_NAME = 256


class ModelFileError(ValueError):
    """A model or weights file could not be read: missing, truncated, corrupted, oversized,
    crafted, written by a newer convolab, or not matching the model it is loaded into.

    Every failure of :func:`convolab.saving.load_model` and :func:`convolab.saving.load_weights`
    is this error (a ``ValueError``), with a message that names the file and what was wrong.
    """


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict = 3, 60, 60, 6, 6


def short_repr(value) -> str:
    """A bounded repr of a value from a file (depth, length and element counts capped)."""
    return _repr.repr(value)


def fail(where, expected, value):
    """Raise the :class:`ModelFileError` ``<where>: expected <expected>; got <value>``."""
    raise ModelFileError(f"{where}: expected {expected}; got {short_repr(value)}")


def is_int(v) -> bool:
    """Whether ``v`` is an int and not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def integer(lo=0, hi=MAX_INT):
    """An int (not a bool) in ``[lo, hi]``."""

    def check(v, where):
        if not is_int(v) or not lo <= v <= hi:
            fail(where, f"an int in [{lo}, {hi}]", v)
        return v

    return check


def number(lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    """A finite int or float in the range (bools are not numbers here)."""

    def check(v, where):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        # math.isfinite(10**400) raises OverflowError: compare huge ints instead.
        ok = ok and (math.isfinite(v) if isinstance(v, float) else abs(v) <= 1e308)
        ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            fail(where, f"a finite number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}", v)
        return v

    return check


def boolean(v, where):
    """``true`` or ``false``."""
    if not isinstance(v, bool):
        fail(where, "true or false", v)
    return v


def string(max_len=MAX_NAME, choices=None, nonempty=True):
    """A string of at most ``max_len`` characters, one of ``choices`` if given (read at each check,
    so a live collection such as the layer registry's names may be passed)."""

    def check(v, where):
        if not isinstance(v, str) or len(v) > max_len or (nonempty and not v):
            fail(where, f"a string of 1 to {max_len} characters", v)
        if choices is not None and v not in choices:
            fail(where, f"one of {', '.join(sorted(choices))}", v)
        return v

    return check


def nullable(inner):
    """``null`` or what ``inner`` accepts."""

    def check(v, where):
        return None if v is None else inner(v, where)

    return check


def list_of(inner, min_len=0, max_len=MAX_INT):
    """A list of ``min_len`` to ``max_len`` items, each checked by ``inner``."""

    def check(v, where):
        if not isinstance(v, list) or not min_len <= len(v) <= max_len:
            fail(where, f"a list of {min_len} to {max_len} items", v)
        return [inner(item, f"{where}[{i}]") for i, item in enumerate(v)]

    return check


def obj(required: dict, optional: dict | None = None):
    """A JSON object with exactly the ``required`` keys and any of the ``optional`` ones."""
    optional = optional or {}

    def check(v, where):
        if not isinstance(v, dict):
            fail(where, "an object", v)
        unknown = set(v) - set(required) - set(optional)
        if unknown:
            raise ModelFileError(f"{where}: unknown key(s) {short_repr(sorted(unknown))}")
        missing = set(required) - set(v)
        if missing:
            raise ModelFileError(f"{where}: missing key(s) {', '.join(sorted(map(repr, missing)))}")
        spec = {**required, **optional}
        return {k: spec[k](val, f"{where}.{k}") for k, val in v.items()}

    return check


def tagged(classes):
    """``{"class_name": <one of classes>, "config": <that class's schema>}``.

    ``classes`` maps a class name to its config's checker; it is read at each check, so a live
    mapping (the layer registry's) admits the classes registered after this checker was made.
    """

    def check(v, where):
        outer = obj({"class_name": string(64, classes), "config": lambda c, w: c})(v, where)
        return {
            "class_name": outer["class_name"],
            "config": classes[outer["class_name"]](outer["config"], f"{where}.config"),
        }

    return check
