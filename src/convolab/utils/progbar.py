"""A Keras-style text progress bar: ``1875/1875 [======] - 3s 2ms/step - loss: 0.21 - acc: 0.94``."""

from __future__ import annotations

import sys
import time


def _fmt(value):
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


class Progbar:
    """Redraws one line on a terminal (at most every 0.1 s); elsewhere prints only the final line."""

    def __init__(self, target, width=30, verbose=1, stream=None):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _line(self, current, logs):
        bar = ""
        if self.target:
            filled = int(self.width * current / self.target)
            arrow = ">" if current < self.target else "="
            bar = f"{current}/{self.target} [" + "=" * max(filled - 1, 0) + (arrow if filled else "")
            bar += "." * (self.width - filled) + "]"
        elapsed = time.perf_counter() - self.start
        per = elapsed / max(current, 1)
        timing = f" - {elapsed:.0f}s {per * 1e3:.0f}ms/step"
        metrics = "".join(f" - {k}: {_fmt(v)}" for k, v in (logs or {}).items())
        return bar + timing + metrics

    def update(self, current, logs=None):
        if self.verbose != 1 or not self._tty:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and current != self.target:
            return
        self._last_draw = now
        self.stream.write("\r" + self._line(current, logs))
        self.stream.flush()

    def finish(self, logs=None):
        if self.verbose == 0:
            return
        prefix = "\r" if (self.verbose == 1 and self._tty) else ""
        self.stream.write(prefix + self._line(self.target or 0, logs) + "\n")
        self.stream.flush()
