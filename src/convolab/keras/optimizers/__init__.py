"""``keras.optimizers`` and ``keras.optimizers.schedules``."""
from ...optimizers import SGD, Adam, Optimizer, RMSprop, deserialize, get, serialize  # noqa: F401
from . import schedules  # noqa: F401
