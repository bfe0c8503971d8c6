"""History: the per-epoch logs ``fit`` returns (``history.history['val_acc']``)."""

from __future__ import annotations

from .base import Callback


class History(Callback):
    """Records ``logs`` at the end of each epoch into ``self.history`` (key -> list)."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
