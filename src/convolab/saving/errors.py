"""The one error a model file can cause."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model or weights file could not be read: missing, truncated, corrupted, oversized,
    crafted, written by a newer convolab, or not matching the model it is loaded into.

    Every failure of :func:`convolab.saving.load_model` and :func:`convolab.saving.load_weights`
    is this error (a ``ValueError``), with a message that names the file and what was wrong.
    """
