"""Weight initialisers with Keras's names and formulas (fans as Keras computes them)."""

from __future__ import annotations

import math

import numpy as np

from .random import get_generator


def compute_fans(shape):
    """``(fan_in, fan_out)``: Dense ``(in, out)``; conv ``(kh, kw, in, out)`` times the receptive field."""
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng, stddev, shape):
    # Keras draws from a normal truncated at two standard deviations.
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


def _variance_scaling(scale, mode, distribution):
    def init(shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        var = scale / max(1.0, n)
        rng = get_generator()
        if distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        # 0.879... is the stddev of a unit normal truncated at +-2 (Keras's constant).
        return _truncated_normal(rng, math.sqrt(var) / 0.87962566103423978, shape).astype(dtype)

    return init


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype=dtype)


def random_normal(shape, dtype="float32", mean=0.0, stddev=0.05):
    return (get_generator().standard_normal(shape) * stddev + mean).astype(dtype)


def random_uniform(shape, dtype="float32", minval=-0.05, maxval=0.05):
    return get_generator().uniform(minval, maxval, shape).astype(dtype)


_REGISTRY = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "zeros": zeros,
    "ones": ones,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
}
_ALIASES = {
    "glorotuniform": "glorot_uniform",
    "glorotnormal": "glorot_normal",
    "zero": "zeros",
    "one": "ones",
    "heuniform": "he_uniform",
    "henormal": "he_normal",
    "randomnormal": "random_normal",
    "randomuniform": "random_uniform",
    # Keras 3's aliases (initializers/__init__.py): Embedding's default is "uniform"
    "uniform": "random_uniform",
    "normal": "random_normal",
}


def get(identifier, owner: str = "layer"):
    """Return an initialiser callable ``f(shape, dtype) -> ndarray`` from a name or callable."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        key = _ALIASES.get(key.replace("_", ""), key)
        if key in _REGISTRY:
            return _REGISTRY[key]
    raise ValueError(
        f"{owner}: unknown initializer {identifier!r}; valid: {', '.join(sorted(_REGISTRY))} or a callable"
    )


def canonical_name(identifier):
    """The registry's name for an initializer name (``'uniform'`` and ``'RandomUniform'`` give
    ``'random_uniform'``); ValueError for a name convolab does not know."""
    get(identifier)
    key = identifier.lower()
    return _ALIASES.get(key.replace("_", ""), key)


def truncated_normal(shape, dtype="float32", mean=0.0, stddev=0.05):
    return (_truncated_normal(get_generator(), stddev, shape) + mean).astype(dtype)


_REGISTRY["truncated_normal"] = truncated_normal
_ALIASES["truncatednormal"] = "truncated_normal"


# -- keras.initializers: the classes ----------------------------------------------------------------
class Initializer:
    """Keras's initializer objects: ``init(shape, dtype=None)`` returns a new array.

    ``seed``: ``None`` draws from convolab's global generator; an int makes the object draw the
    same values on every call (as Keras's seeded initializers do).
    """

    def __init__(self, seed=None):
        self.seed = seed

    def _draw(self, fn, shape, dtype):
        from . import random as random_mod

        if self.seed is None:
            return fn(tuple(shape), dtype or "float32")
        saved = random_mod._generator
        random_mod._generator = np.random.default_rng(int(self.seed))
        try:
            return fn(tuple(shape), dtype or "float32")
        finally:
            random_mod._generator = saved

    def get_config(self):
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _named_class(class_name, key):
    def __call__(self, shape, dtype=None):
        return self._draw(_REGISTRY[key], shape, dtype)

    return type(class_name, (Initializer,), {"__call__": __call__, "__doc__": f"Keras's ``{class_name}`` ('{key}')."})


GlorotUniform = _named_class("GlorotUniform", "glorot_uniform")
GlorotNormal = _named_class("GlorotNormal", "glorot_normal")
HeUniform = _named_class("HeUniform", "he_uniform")
HeNormal = _named_class("HeNormal", "he_normal")
LecunUniform = _named_class("LecunUniform", "lecun_uniform")
LecunNormal = _named_class("LecunNormal", "lecun_normal")


class Zeros(Initializer):
    """All zeros."""

    def __init__(self):
        super().__init__(None)

    def __call__(self, shape, dtype=None):
        return zeros(tuple(shape), dtype or "float32")

    def get_config(self):
        return {}


class Ones(Zeros):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return ones(tuple(shape), dtype or "float32")


class Constant(Initializer):
    """Every value ``value``."""

    def __init__(self, value=0.0):
        super().__init__(None)
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(tuple(shape), self.value, dtype=dtype or "float32")

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal with ``mean`` and ``stddev`` (Keras's defaults 0.0 and 0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return self._draw(lambda s, d: random_normal(s, d, self.mean, self.stddev), shape, dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal with ``mean`` and ``stddev``, redrawn beyond two standard deviations."""

    def __call__(self, shape, dtype=None):
        return self._draw(lambda s, d: truncated_normal(s, d, self.mean, self.stddev), shape, dtype)


class RandomUniform(Initializer):
    """Uniform in ``[minval, maxval)`` (Keras's defaults -0.05 and 0.05)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        return self._draw(lambda s, d: random_uniform(s, d, self.minval, self.maxval), shape, dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}
