"""``keras.optimizers.schedules``."""
from ...optimizers.schedules import (CosineDecay, ExponentialDecay, LearningRateSchedule,  # noqa: F401
                                     PiecewiseConstantDecay, deserialize, serialize)
