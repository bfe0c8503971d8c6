"""Keras-compatible namespace: ``from convolab import keras`` in place of ``from tensorflow import keras``.

``keras.models.Sequential``, ``keras.Sequential``, ``keras.layers.*``, ``keras.optimizers.*``,
``keras.losses.*``, ``keras.callbacks.*``, ``keras.utils.*``, ``keras.datasets.*``,
``keras.activations.*``, ``keras.backend.image_data_format()``.
"""

from .. import backend  # noqa: F401  (keras.backend)
from .. import constraints, regularizers  # noqa: F401  (keras.constraints, keras.regularizers)
from . import activations, callbacks, datasets, layers, losses, metrics, models, ops, optimizers, utils
from . import initializers, random  # noqa: F401  (issue 19)
from . import saving  # noqa: F401  (keras.saving, issue 19)
from ..layers import Input
from ..models import Model, Sequential
from ..autodiff import GradientTape  # noqa: F401 (tf.GradientTape's habit)

__all__ = [
    "GradientTape",
    "Input",
    "Model",
    "Sequential",
    "activations",
    "backend",
    "callbacks",
    "constraints",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "random",
    "regularizers",
    "saving",
    "utils",
]
