"""Models: ``Sequential`` (and Keras's spelling ``keras.models.Sequential``)."""
from .sequential import Sequential

__all__ = ["Sequential"]
