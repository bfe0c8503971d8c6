"""``convolab train`` keeps the last finished epoch on disk, so Ctrl-C loses only the epoch in progress."""

from __future__ import annotations

from pathlib import Path

from ..callbacks import Callback


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which epoch was saved and where (``main`` prints it)."""


class EpochBackup(Callback):
    """Save the whole model (weights and optimizer state) at the end of every epoch, as Keras's
    ``BackupAndRestore`` does: each save replaces the file atomically, so the file always holds
    the last finished epoch, whatever happens to the epoch in progress.

    Args:
        path: the model file (``.convolab``).

    Attributes:
        epoch: the epoch in progress (0-based), ``None`` before the first.
        saved: how many epochs had finished when the file was last written (0: not yet written).
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.epoch = None
        self.saved = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.model.save(str(self.path))
        self.saved = epoch + 1

    def interrupted(self, epochs):
        """The :class:`Interrupted` to raise when Ctrl-C stopped ``fit`` after ``epochs`` were asked for."""
        where = "before the first epoch" if self.epoch is None else f"in epoch {self.epoch + 1} of {epochs}"
        if not self.saved:
            return Interrupted(f"{where}; no epoch had finished, so no model was saved")
        return Interrupted(
            f"{where}; the model after epoch {self.saved} (weights and optimizer state) "
            f"is saved in {self.path.resolve()}"
        )
