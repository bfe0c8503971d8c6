"""EpochTimer: wall-clock seconds per epoch (training and validation), for reports and benchmarks."""

from __future__ import annotations

import time

from .base import Callback


class EpochTimer(Callback):
    """Records the seconds each epoch took in ``self.seconds`` (rounded to milliseconds)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 3))
