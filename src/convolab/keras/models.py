"""``keras.models``: ``Sequential`` and (with the saving issue) ``load_model``."""
from ..models import Sequential  # noqa: F401
