"""convolab: convolutional neural networks on NumPy, built on im2col, with a Keras-compatible API.

from convolab import keras
model = keras.models.Sequential([keras.layers.Conv2D(9, (5, 5), input_shape=(28, 28, 1), activation='relu'), ...])
"""

# Importing convolab changes nothing in the process: the malloc settings of allocator.py are
# applied by the first fit (a library's import must not retune its host program's allocator).
from . import allocator, backend, callbacks, initializers, layers, losses, metrics, models, nn, optimizers
from .models import Sequential
from .random import set_random_seed

from ._version import __version__

__all__ = [
    "Sequential",
    "allocator",
    "backend",
    "callbacks",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "nn",
    "optimizers",
    "set_random_seed",
    "__version__",
]
