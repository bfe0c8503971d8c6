"""Learning-rate schedules with Keras's names, arguments and formulas (``keras.optimizers.schedules``).

Pass a schedule as an optimizer's ``learning_rate``: it is evaluated at ``optimizer.iterations``
before each step, and ``optimizer.learning_rate`` reads the current value.
"""

from .base import LearningRateSchedule
from .cosine_decay import CosineDecay
from .exponential_decay import ExponentialDecay
from .inverse_time_decay import InverseTimeDecay
from .piecewise_constant_decay import PiecewiseConstantDecay

#: the schedules a saved model may name (loading never imports a class by name)
SCHEDULE_CLASSES = {
    cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay, InverseTimeDecay)
}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": ...}`` of a schedule."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedules.serialize expects a LearningRateSchedule; got {type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """A built-in schedule from :func:`serialize`'s output."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in SCHEDULE_CLASSES:
        raise ValueError(f"Unknown learning rate schedule class {name!r}; valid: {', '.join(SCHEDULE_CLASSES)}")
    return SCHEDULE_CLASSES[name].from_config(dict(config.get("config", {})))


__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "SCHEDULE_CLASSES",
    "deserialize",
    "serialize",
]
