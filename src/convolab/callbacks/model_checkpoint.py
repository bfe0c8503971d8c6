"""ModelCheckpoint: save the model (or its weights) during ``fit``, with Keras's arguments."""

from __future__ import annotations

import math
import numbers
import os
import warnings

from ..utils.file_names import MODEL_SUFFIXES
from .base import Callback


class ModelCheckpoint(Callback):
    """Save the model at the end of every epoch (or every ``save_freq`` batches).

    ``filepath`` may hold ``str.format`` fields filled from the epoch (1-based, as Keras) and
    the logs: ``'ckpt-{epoch:02d}-{val_loss:.2f}.convolab'``; with an integer ``save_freq``
    ``{batch}`` is available too. Full saves go through :func:`convolab.saving.save_model`
    with the optimizer and random-generator state, so training resumes exactly with::

        model = convolab.models.load_model('ckpt-03.convolab')
        model.fit(x, y, epochs=10, initial_epoch=3)

    Files are written atomically: a kill -9 loses at most the epoch in progress. Saving goes
    through the model's own ``save``/``save_weights``, as Keras's callback does: they bring the
    weights to the host first (from the GPU too), and this package needs nothing from
    :mod:`convolab.saving`.

    Args:
        filepath: file name or template ending in ``.convolab``, ``.keras`` or ``.safetensors``; with
            ``save_weights_only=True`` also ``.weights.h5`` (Keras 3's weights file), without it also
            ``.h5`` (Keras's legacy model file).
        monitor: log key compared for ``save_best_only`` (default ``'val_loss'``).
        verbose: 1 prints a line per save.
        save_best_only: save only when ``monitor`` improves on the best value so far
            (always the same file unless the name has fields).
        save_weights_only: save weights only (``model.save_weights``).
        mode: ``'auto'`` (max if the name contains ``acc``, else min), ``'min'`` or ``'max'``.
        save_freq: ``'epoch'`` or an int number of batches between saves.
        initial_value_threshold: starting "best" value for ``save_best_only``.
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__()
        filepath = os.fspath(filepath)
        if not isinstance(filepath, str):
            raise TypeError(f"ModelCheckpoint: `filepath` must be a string; got {filepath!r}")
        # Keras 3's suffixes: '.weights.h5' for weights, '.keras' (or the legacy '.h5') for models
        suffixes = MODEL_SUFFIXES + ((".weights.h5",) if save_weights_only else (".h5",))
        lowered = filepath.lower()
        if not lowered.endswith(suffixes) and not filepath.endswith("}"):
            raise ValueError(
                f"ModelCheckpoint: `filepath` must end in {', '.join(suffixes)} with "
                f"save_weights_only={save_weights_only}; got {filepath!r}"
            )
        if not save_weights_only and lowered.endswith(".weights.h5"):
            raise ValueError(
                f"ModelCheckpoint: {filepath!r} names a weights file; pass save_weights_only=True, or "
                "name the file '.keras' to save the whole model"
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ModelCheckpoint: `mode` must be 'auto', 'min' or 'max'; got {mode!r}")
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral) or save_freq < 1
        ):
            raise ValueError(f"ModelCheckpoint: `save_freq` must be 'epoch' or a positive int; got {save_freq!r}")
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"
        self.filepath = filepath
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.save_freq = save_freq
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = math.inf if mode == "min" else -math.inf
        self._current_epoch = 0
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0

    def _improved(self, current):
        return current < self.best if self.mode == "min" else current > self.best

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        # Keras counts batches across epochs: a batch index that did not grow starts a new epoch.
        added = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _get_file_path(self, epoch, batch, logs):
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise KeyError(
                f"ModelCheckpoint: cannot fill the file path template {self.filepath!r} from epoch/batch "
                f"and the logs {sorted(fields)}: {e!r}"
            ) from None

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(
                    f"ModelCheckpoint: can save best model only with {self.monitor} available, skipping "
                    f"(available: {sorted(logs)})",
                    stacklevel=2,
                )
                return
            if not self._improved(current):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                    f"saving model to {filepath}"
                )
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath, include_optimizer=True)
