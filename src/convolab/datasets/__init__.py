"""Datasets with Keras's ``load_data()``: ``mnist``, ``fashion_mnist``, ``cifar10``.

    from convolab.datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data()

Each loader reads the original published files, from ``data_dir=`` if given, else from a cache
folder (``cache_dir=``, ``$CONVOLAB_DATA_DIR``, ``~/.convolab/datasets``), downloading what is
missing from more than one mirror and checking every file's published checksum. When the files
can be neither found nor downloaded, ``DatasetUnavailableError`` says which files, which URLs were
tried and where to put them. ``load_sample()`` returns the MNIST test set shipped with the package.
"""

from . import cifar10, fashion_mnist, mnist
from .cifar_format import UnsafePickleError
from .download import ChecksumError, DatasetUnavailableError
from .sample import load_sample

__all__ = [
    "ChecksumError",
    "DatasetUnavailableError",
    "UnsafePickleError",
    "cifar10",
    "fashion_mnist",
    "load_sample",
    "mnist",
]
