"""CosineDecay: an optional linear warmup, then a cosine from the peak rate down to ``alpha`` of it."""

from __future__ import annotations

import math

from .._checks import real, steps
from .base import LearningRateSchedule


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup, Keras's formulas::

        decayed(s, peak) = peak * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)

        warmup_target is None:  lr(step) = decayed(min(step, decay_steps), initial_learning_rate)
        otherwise, with s = min(step, warmup_steps + decay_steps):
            s < warmup_steps:   lr = (warmup_target - initial_learning_rate) * s / warmup_steps
                                     + initial_learning_rate
            else:               lr = decayed(s - warmup_steps, warmup_target)

    Args:
        initial_learning_rate: the rate at step 0 (>= 0).
        decay_steps: steps of the cosine (> 0).
        alpha: the final rate as a fraction of the peak, in [0, 1].
        name: Keras's name for the schedule.
        warmup_target: the peak rate reached after the warmup, or None for no warmup (>= 0).
        warmup_steps: steps of the linear warmup (>= 0; used only with ``warmup_target``).
    """

    def __init__(
        self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None, warmup_steps=0
    ):
        owner = type(self).__name__
        self.initial_learning_rate = real(owner, "initial_learning_rate", initial_learning_rate, lo=0)
        self.decay_steps = steps(owner, "decay_steps", decay_steps)
        self.alpha = real(owner, "alpha", alpha, lo=0, hi=1)
        self.name = name
        self.warmup_target = None if warmup_target is None else real(owner, "warmup_target", warmup_target, lo=0)
        self.warmup_steps = steps(owner, "warmup_steps", warmup_steps, positive=False)

    def _decayed(self, step, peak):
        cosine = 0.5 * (1.0 + math.cos(math.pi * (step / self.decay_steps)))
        return peak * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = float(step)
        if self.warmup_target is None:
            return self._decayed(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            return (self.warmup_target - self.initial_learning_rate) * (
                step / self.warmup_steps
            ) + self.initial_learning_rate
        return self._decayed(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }
