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
