"""Datasets (MNIST, Fashion-MNIST, CIFAR-10) with Keras's ``load_data()``.

Placeholder modules until the datasets issue lands: each ``load_data`` raises a clear error.
"""
from types import SimpleNamespace


def _not_yet(name):
    def load_data(*args, **kwargs):
        raise NotImplementedError(f"convolab.datasets.{name}.load_data is not implemented yet")

    return SimpleNamespace(load_data=load_data)


mnist = _not_yet("mnist")
fashion_mnist = _not_yet("fashion_mnist")
cifar10 = _not_yet("cifar10")
