"""Model zoo: the lesson's three compiled Sequential networks (:mod:`.lesson`)."""
from __future__ import annotations

from .lesson import CLASS_NAMES, DEFAULT_MODEL, INPUT_SHAPES, MODELS, build, lenet, multi_cnn, simple_cnn

__all__ = ["CLASS_NAMES", "DEFAULT_MODEL", "INPUT_SHAPES", "MODELS", "build", "lenet", "multi_cnn", "simple_cnn"]
