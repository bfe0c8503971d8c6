"""Models: ``Sequential`` (and Keras's spelling ``keras.models.Sequential``) and ``load_model``."""

from .model import Model
from .sequential import Sequential
from ..saving import load_model  # after Sequential: convolab.saving imports it lazily

__all__ = ["Model", "Sequential", "load_model"]
