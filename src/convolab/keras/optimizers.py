"""``keras.optimizers``."""
from ..optimizers import SGD, Adam, Optimizer, RMSprop, get  # noqa: F401
