"""``keras.datasets``: ``mnist``, ``fashion_mnist``, ``cifar10`` (each with ``load_data()``)."""

from ..datasets import cifar10, fashion_mnist, mnist  # noqa: F401
