"""Argument checks shared by the optimizers and the learning-rate schedules.

Each raises ``ValueError`` naming the class, the argument, the range expected and the value
received, so ``Adam(beta_1=1.5)`` says what is wrong before any step runs.
"""

from __future__ import annotations

import math
import numbers


def _range_text(lo, hi, lo_open, hi_open):
    if hi is None:
        return f"> {lo}" if lo_open else f">= {lo}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def real(owner, name, value, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """``value`` as a float, if it is a finite real number (not a bool) in the range; else ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    # math.isfinite(10**400) raises OverflowError: compare huge ints instead.
    ok = ok and (abs(value) <= 1e308 if isinstance(value, numbers.Integral) else math.isfinite(value))
    ok = ok and (lo is None or (value > lo if lo_open else value >= lo))
    ok = ok and (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        where = "" if lo is None else " " + _range_text(lo, hi, lo_open, hi_open)
        raise ValueError(f"{owner}: `{name}` must be a finite number{where}; got {value!r}")
    return float(value)


def steps(owner, name, value, positive=True):
    """A step count: a finite number, > 0 (or >= 0); ints stay ints so configs read as written."""
    real(owner, name, value, lo=0, lo_open=positive)
    return int(value) if isinstance(value, numbers.Integral) else float(value)
