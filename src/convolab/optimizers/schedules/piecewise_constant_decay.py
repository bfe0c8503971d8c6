"""PiecewiseConstantDecay: a constant learning rate between step boundaries."""

from __future__ import annotations

import bisect
import numbers

from .._checks import real
from .base import LearningRateSchedule


class PiecewiseConstantDecay(LearningRateSchedule):
    """Piecewise constant learning rate, Keras's rule (each interval is closed on the right)::

        lr(step) = values[0]    if step <= boundaries[0]
                   values[i]    if boundaries[i-1] < step <= boundaries[i]
                   values[-1]   if step > boundaries[-1]

    Args:
        boundaries: strictly increasing integer steps (at least one).
        values: ``len(boundaries) + 1`` learning rates (>= 0).
        name: Keras's name for the schedule.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                f"{owner}: the length of `boundaries` should be 1 less than the length of `values`; got "
                f"boundaries={boundaries} of length {len(boundaries)} and values={values} of length {len(values)}"
            )
        if not boundaries:
            raise ValueError(
                f"{owner}: `boundaries` needs at least one step; got boundaries=[] (use a float "
                "learning_rate for a constant rate)"
            )
        for b in boundaries:
            # Keras casts the boundaries to the step's integer type; a fractional one would be truncated.
            if not isinstance(b, numbers.Integral) or isinstance(b, bool):
                raise ValueError(f"{owner}: `boundaries` must be integer steps; got {b!r} in {boundaries}")
        if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: `boundaries` must be strictly increasing; got {boundaries}")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [real(owner, f"values[{i}]", v, lo=0) for i, v in enumerate(values)]
        self.name = name

    def __call__(self, step):
        # bisect_left counts the boundaries strictly below step: the index of step's interval.
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}
