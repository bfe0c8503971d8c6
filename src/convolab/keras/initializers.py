"""``keras.initializers``: the initializer classes (``GlorotUniform``, ``HeNormal``, ``Constant``,
``Zeros``, ``Ones``, ``RandomNormal``, ``RandomUniform``, ``TruncatedNormal``...), their function
spellings by name, and ``get``."""

from ..initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,  # noqa: F401
    Initializer,
    LecunNormal,
    LecunUniform,
    Ones,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    Zeros,
    get,
)

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "Zeros",
    "get",
]
