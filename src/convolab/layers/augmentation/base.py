"""What every augmentation layer shares: active when training, seeded draws, factor arguments
read as Keras reads them.

As in Keras 3 (``call(data, training=True)``), a layer called directly without ``training``
augments: ``layers.RandomFlip()(images)`` flips. Inside ``fit`` that is training; inside
``evaluate``/``predict`` it is inference, even for a subclassed model whose ``call`` does not
pass ``training`` on (Keras's call context; here :func:`training_context`, which the loop sets).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import threading

import numpy as np

from ... import backend
from ...random import get_generator
from ..base import Layer
from ..keras_tensor import is_symbolic
from ..unsupported import reject_unsupported

_context = threading.local()


@contextlib.contextmanager
def training_context(training):
    """Within the block, an augmentation layer called without ``training`` takes this value
    (``fit``: True, ``evaluate``/``predict``: False), as Keras's call context gives it."""
    previous = getattr(_context, "training", None)
    _context.training = bool(training)
    try:
        yield
    finally:
        _context.training = previous


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def parse_factor(value, owner, arg, lo=-math.inf, hi=math.inf, symmetric=True):
    """Keras's factor spellings as ``(lower, upper)``.

    A number ``f`` means ``(-f, f)`` (or ``(f, f)`` with ``symmetric=False``); a pair is
    ``(lower, upper)`` with ``lower <= upper``. Both bounds must lie in ``[lo, hi]``.
    """
    if _is_number(value):
        pair = (-float(value), float(value)) if symmetric else (float(value), float(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_number(v) for v in value):
        pair = (float(value[0]), float(value[1]))
    else:
        raise ValueError(
            f"{owner}: `{arg}` must be a number or a tuple of 2 numbers (lower, upper); got {arg}={value!r}"
        )
    if pair[0] > pair[1] or not (lo <= pair[0] and pair[1] <= hi):
        raise ValueError(
            f"{owner}: `{arg}` must give lower <= upper, both in [{lo}, {hi}]; got {arg}={value!r} (bounds {pair})"
        )
    return pair


def factor_config(value):
    """The factor as it goes into ``get_config``: a float, or a list of 2 floats."""
    return float(value) if _is_number(value) else [float(v) for v in value]


class AugmentationLayer(Layer):
    """Base of the random image layers: identity at inference (``training=False``, ``predict``),
    a random transform in training and when called directly (Keras 3's default).

    Subclasses implement ``augment(x, rng) -> (y, cache)`` and ``augment_backward(dy, cache)``;
    one random transform is drawn per image, for the whole batch at once.

    Args:
        seed: optional int: the layer draws from a private generator seeded with it, so a run
            repeats (each call draws new transforms); otherwise from convolab's global one.
        data_format: only ``'channels_last'`` (NHWC).
    """

    input_ndim = 4

    def to_onnx(self, g, t, folded=None):
        """The identity at inference: no node (RandomCrop, which crops at inference too, has its own)."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        reject_unsupported(self.describe(), data_format=data_format)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"{self.describe()}: `seed` must be None or a non-negative int; got seed={seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None
        self._cache = None

    def __call__(self, *args, **kwargs):
        if args and not is_symbolic(args[0]) and kwargs.get("training") is None:
            # Keras 3: the loop's phase if one is running, else call()'s default, training=True
            outer = getattr(_context, "training", None)
            kwargs["training"] = True if outer is None else outer
        return super().__call__(*args, **kwargs)

    def generator(self) -> np.random.Generator:
        return self._rng if self._rng is not None else get_generator()

    def call(self, x, training=False):
        if not training:
            self._cache = None
            return x
        # On the GPU the batch makes a round trip to the host: the transforms are drawn from the
        # same NumPy generator as on the CPU (one seed, the same augmentation on either device),
        # and the resampling code is NumPy (a GPU version is not written yet).
        on_device = backend.is_device_array(x)
        y, cache = self.augment(backend.to_host(x), self.generator())
        self._cache = (cache,)
        return backend.to_device(y) if on_device else y

    def backward(self, dy):
        if self._cache is None:  # inference: the identity
            return dy
        on_device = backend.is_device_array(dy)
        dx = self.augment_backward(backend.to_host(dy), self._cache[0])
        return backend.to_device(dx) if on_device else dx

    def augment(self, x, rng):
        raise NotImplementedError

    def augment_backward(self, dy, cache):
        raise NotImplementedError

    def get_config(self):
        cfg = super().get_config()
        cfg["seed"] = self.seed
        return cfg
