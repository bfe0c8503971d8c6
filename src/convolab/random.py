"""Seeding: one seed makes a run repeatable.

convolab draws every random number (weight initialisation, shuffling, dropout)
from one ``numpy.random.Generator`` held here, so ``set_random_seed(s)`` fixes all
of them at once, as ``keras.utils.set_random_seed`` does for Keras.

On the GPU, weights and shuffles still come from that generator (the same for one seed on
either device); dropout masks are drawn on the GPU by :func:`device_generator`, a CuPy
generator seeded from the host one when first asked for, so a seeded run repeats on the same
GPU (its masks differ from the CPU's: another generator).
"""

from __future__ import annotations

import copy
import random as _pyrandom

import numpy as np

_generator = np.random.default_rng()
_device_generator = None


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global RNG and convolab's generator."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed expects an int seed; got {type(seed).__name__} {seed!r}")
    global _generator, _device_generator
    _pyrandom.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
    _generator = np.random.default_rng(int(seed))
    _device_generator = None  # re-seeded from the new host generator when next needed


def get_generator() -> np.random.Generator:
    """The generator every convolab component draws from."""
    return _generator


class DeviceGenerator:
    """A CuPy random source with the one method the ops use: ``random(shape, dtype)`` in [0, 1)."""

    def __init__(self, seed):
        from . import _gpu

        self._state = _gpu.cupy.random.RandomState(seed)

    def random(self, size=None, dtype="float64"):
        return self._state.random_sample(size=size, dtype=dtype)


def device_generator(seed=None) -> DeviceGenerator:
    """The GPU generator: a private one for ``seed``, else the global one (seeded from the host
    generator on first use after :func:`set_random_seed`)."""
    global _device_generator
    if seed is not None:
        return DeviceGenerator(int(seed))
    if _device_generator is None:
        _device_generator = DeviceGenerator(int(_generator.integers(0, 2**63 - 1)))
    return _device_generator


def get_state() -> dict:
    """A copy of the generator's state (NumPy's ``bit_generator.state``: plain ints and strings).

    Saved in checkpoints so a resumed ``fit`` draws the same shuffles and dropout masks.
    """
    return copy.deepcopy(_generator.bit_generator.state)


def set_state(state: dict) -> None:
    """Put the generator back into ``state`` (from :func:`get_state`).

    The generator is changed in place, so code holding ``get_generator()`` follows.
    """
    if not isinstance(state, dict):
        raise TypeError(f"set_state expects the dict get_state() returns; got {type(state).__name__}")
    _generator.bit_generator.state = state


# -- keras.random -------------------------------------------------------------------------------
class SeedGenerator:
    """Keras's ``SeedGenerator``: a private random stream, advanced by every draw that is given it.

    ``keras.random.normal(shape, seed=gen)`` twice gives two different draws; two generators
    made with the same ``seed`` give the same sequence.
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"SeedGenerator: `seed` must be an int or None; got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.name = name or "seed_generator"
        self.generator = np.random.default_rng(self.seed if self.seed is not None else _generator.integers(2**63))

    def get_config(self):
        return {"seed": self.seed}


def _rng(seed, who):
    """The generator for Keras's ``seed`` argument: ``None`` the global one; an int a fresh one
    (the same numbers for the same seed, as Keras's stateless draws); a SeedGenerator its own."""
    if seed is None:
        return _generator
    if isinstance(seed, SeedGenerator):
        return seed.generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"keras.random.{who}: `seed` must be None, an int or a keras.random.SeedGenerator; got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _float_dtype(dtype):
    from .backend import floatx

    return np.dtype(dtype or floatx())


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples from a normal distribution, shape ``shape``."""
    return (_rng(seed, "normal").standard_normal(tuple(shape)) * stddev + mean).astype(_float_dtype(dtype))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples from ``[minval, maxval)``, shape ``shape``."""
    return _rng(seed, "uniform").uniform(minval, maxval, tuple(shape)).astype(_float_dtype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal samples redrawn until within two standard deviations of the mean (Keras's rule)."""
    rng = _rng(seed, "truncated_normal")
    out = rng.standard_normal(tuple(shape))
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (out * stddev + mean).astype(_float_dtype(dtype))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers in ``[minval, maxval)``, shape ``shape``."""
    return _rng(seed, "randint").integers(minval, maxval, tuple(shape)).astype(dtype)


def shuffle(x, axis=0, seed=None):
    """``x`` permuted along ``axis`` (a new array)."""
    x = np.asarray(x)
    return np.take(x, _rng(seed, "shuffle").permutation(x.shape[axis]), axis=axis)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Zero each value with probability ``rate`` and scale the rest by ``1 / (1 - rate)``; on a tape
    tensor the product is recorded, so the gradient flows through the kept values."""
    from .autodiff import functions as ops
    from .autodiff.tensor import unwrap

    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"keras.random.dropout: `rate` must be a number in [0, 1); got {rate!r}")
    x = unwrap(inputs)
    shape = (
        np.shape(x)
        if noise_shape is None
        else tuple(np.shape(x)[i] if d is None else d for i, d in enumerate(noise_shape))
    )
    keep = _rng(seed, "dropout").random(shape) >= rate
    dtype = x.dtype if hasattr(x, "dtype") and x.dtype.kind == "f" else _float_dtype(None)
    return ops.multiply(inputs, (keep / (1.0 - rate)).astype(dtype))
