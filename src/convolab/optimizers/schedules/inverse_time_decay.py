"""InverseTimeDecay: ``initial_learning_rate / (1 + decay_rate * step / decay_steps)``."""

from __future__ import annotations

import math

from .._checks import real, steps
from .base import LearningRateSchedule


class InverseTimeDecay(LearningRateSchedule):
    """Inverse time decay, Keras's formula::

        p = step / decay_steps          (floor(step / decay_steps) with staircase=True)
        lr(step) = initial_learning_rate / (1 + decay_rate * p)

    Args:
        initial_learning_rate: the rate at step 0 (>= 0).
        decay_steps: how often to apply the decay (> 0).
        decay_rate: the decay's strength (>= 0).
        staircase: decay at whole multiples of ``decay_steps`` only.
        name: Keras's name for the schedule.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = real(owner, "initial_learning_rate", initial_learning_rate, lo=0)
        self.decay_steps = steps(owner, "decay_steps", decay_steps)
        self.decay_rate = real(owner, "decay_rate", decay_rate, lo=0)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = float(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }
