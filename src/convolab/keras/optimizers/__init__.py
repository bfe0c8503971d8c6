"""``keras.optimizers`` and ``keras.optimizers.schedules``."""

from ...optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    Nadam,
    Optimizer,
    RMSprop,  # noqa: F401
    deserialize,
    get,
    serialize,
)
from . import schedules  # noqa: F401
