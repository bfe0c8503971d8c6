"""LearningRateSchedule: the learning rate as a function of the optimizer's step count."""

from __future__ import annotations


class LearningRateSchedule:
    """Base class of learning-rate schedules (Keras's ``keras.optimizers.schedules.LearningRateSchedule``).

    A schedule is a pure function of the step: ``schedule(step) -> float``. Pass one as any
    optimizer's ``learning_rate``; before each update the optimizer evaluates it at its
    ``iterations`` (0 for the first step), as Keras does.

    Subclasses implement ``__call__(step)`` and, to be saved with a model, ``get_config()``;
    ``from_config(config)`` is ``cls(**config)``. Only the built-in schedules can be written to
    a convolab file (loading never imports a class named in a file).
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` in order to be serializable."
        )

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"
