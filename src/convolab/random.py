"""Seeding: one seed makes a run repeatable.

convolab draws every random number (weight initialisation, shuffling, dropout)
from one ``numpy.random.Generator`` held here, so ``set_random_seed(s)`` fixes all
of them at once, as ``keras.utils.set_random_seed`` does for Keras.
"""
from __future__ import annotations

import copy
import random as _pyrandom

import numpy as np

_generator = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global RNG and convolab's generator."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed expects an int seed; got {type(seed).__name__} {seed!r}")
    global _generator
    _pyrandom.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
    _generator = np.random.default_rng(int(seed))


def get_generator() -> np.random.Generator:
    """The generator every convolab component draws from."""
    return _generator


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
