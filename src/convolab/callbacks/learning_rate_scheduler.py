"""LearningRateScheduler: set the optimizer's learning rate at the start of each epoch (Keras's callback)."""

from __future__ import annotations

import numpy as np

from .base import Callback


class LearningRateScheduler(Callback):
    """Set ``model.optimizer.learning_rate = schedule(epoch, lr)`` at the start of every epoch.

    As Keras 3: ``epoch`` counts from 0, ``lr`` is the current rate as a float, a one-argument
    ``schedule(epoch)`` is accepted too, the result must be a float, and the epoch logs get
    ``'learning_rate'`` (so ``history.history['learning_rate']`` lists the rate of each epoch).

    Args:
        schedule: function ``(epoch: int, lr: float) -> float``.
        verbose: 1 prints a line each time the rate is set.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: `schedule` must be a function (epoch, lr) -> lr; got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            raise ValueError(
                f"LearningRateScheduler: the model's optimizer must have a `learning_rate`; got {optimizer!r} "
                "(compile the model first)"
            )
        return optimizer

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self._optimizer()
        lr = float(optimizer.learning_rate)
        try:
            new_lr = self.schedule(epoch, lr)
        except TypeError as two_args_error:  # Keras also accepts the old one-argument schedule(epoch)
            try:
                new_lr = self.schedule(epoch)
            except TypeError:
                raise two_args_error from None
        if not isinstance(new_lr, (float, np.float32, np.float64)):
            raise ValueError(
                f"LearningRateScheduler: the `schedule` function must return a float; got {new_lr!r} "
                f"of type {type(new_lr).__name__} at epoch {epoch}"
            )
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self._optimizer().learning_rate)
