"""Optimisers with Keras's names, defaults and update formulas."""

from . import schedules
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .base import Optimizer
from .nadam import Nadam
from .rmsprop import RMSprop
from .sgd import SGD

_REGISTRY = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": Nadam,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
}


def get(identifier) -> Optimizer:
    """An :class:`Optimizer` from a name (``'adam'``), a class, an instance or :func:`serialize`'s dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"Unknown optimizer {identifier!r}; valid: {', '.join(_REGISTRY)} or a convolab.optimizers.Optimizer"
    )


def serialize(optimizer: Optimizer) -> dict:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    classes = {c.__name__: c for c in _REGISTRY.values()}
    name = config.get("class_name")
    if name not in classes:
        raise ValueError(f"Unknown optimizer class {name!r}; valid: {', '.join(classes)}")
    return classes[name].from_config(config.get("config", {}))


__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "SGD",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]
