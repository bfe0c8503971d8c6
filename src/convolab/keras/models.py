"""``keras.models``: ``Sequential`` and ``load_model``."""
from ..models import Sequential, load_model  # noqa: F401
