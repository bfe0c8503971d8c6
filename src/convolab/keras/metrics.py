"""``keras.metrics`` (names only: metrics are passed to ``compile`` by name)."""
from ..metrics import Metric, get  # noqa: F401
