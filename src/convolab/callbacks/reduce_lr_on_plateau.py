"""ReduceLROnPlateau: divide the learning rate when a monitored value stops improving (Keras's callback)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .base import Callback


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    As Keras 3: an epoch improves when ``monitor`` beats the best value by more than
    ``min_delta`` (below it in ``'min'`` mode, above in ``'max'``; ``'auto'`` is ``'max'`` when
    the name contains ``acc``). After a reduction nothing is counted for ``cooldown`` epochs.
    The rate never goes below ``min_lr``. The epoch logs get ``'learning_rate'``, the rate the
    epoch trained with (before any reduction at its end).

    Args:
        monitor: log key to watch (default ``'val_loss'``).
        factor: ``new_lr = lr * factor``; must be below 1.
        patience: epochs without improvement before the rate is reduced.
        verbose: 1 prints a line at each reduction.
        mode: ``'auto'``, ``'min'`` or ``'max'``.
        min_delta: smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound on the learning rate.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0; got factor={factor!r}")
        if mode not in ("auto", "min", "max"):
            # Keras warns and falls back to 'auto'; convolab refuses, as EarlyStopping and ModelCheckpoint do.
            raise ValueError(f"ReduceLROnPlateau: `mode` must be 'auto', 'min' or 'max'; got {mode!r}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self._reset()

    def _reset(self):
        self._minimise = self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor)
        self.best = math.inf if self._minimise else -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def _improved(self, current):
        if self._minimise:
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"ReduceLROnPlateau: learning rate reduction is conditioned on metric {self.monitor!r}, "
                f"which is not available; available: {', '.join(logs)}",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                # Keras compares in float32, so a rate that is min_lr up to rounding counts as at the floor.
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
