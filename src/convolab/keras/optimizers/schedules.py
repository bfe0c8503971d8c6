"""``keras.optimizers.schedules``."""

from ...optimizers.schedules import (
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,  # noqa: F401
    PiecewiseConstantDecay,
    deserialize,
    serialize,
)
