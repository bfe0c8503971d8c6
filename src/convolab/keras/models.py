"""``keras.models``: ``Sequential`` and ``load_model``."""
from ..models import Model, Sequential, load_model  # noqa: F401
