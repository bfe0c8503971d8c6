"""``keras.metrics``: Keras 3's metric classes and per-sample metric functions."""

from ..metrics import *  # noqa: F401,F403
from ..metrics import MAE, MSE, get  # noqa: F401
