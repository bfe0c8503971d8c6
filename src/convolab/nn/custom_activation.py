"""A user's activation ``f(z) -> y`` written with ``keras.ops``, with a hand-written-style backward.

``custom_forward(fn, z, record, owner) -> (y, cache)`` and ``custom_backward(dy, cache) -> dz``.
The layer keeps its own backward (so the stack engine and the outer tape both work): the forward
runs ``fn`` on a tensor wrapping ``z`` under a small local :class:`GradientTape`, and the backward
replays that tape with ``dy`` as the output gradient, a vector-Jacobian product. Where no
backward is expected (inference: ``record`` false) ``fn`` runs on the array and only ``z`` is
kept; a backward then records ``fn`` once more.

A function that leaves ``keras.ops`` (NumPy on the values) has no gradient on the tape: its
first backward raises ``TypeError`` naming the layer and the function, never a wrong gradient.

Shape: ``y`` has ``z``'s shape and dtype (any rank); ``dz`` has ``z``'s.
"""

from __future__ import annotations

import threading

from ..autodiff.tape import GradientTape
from ..autodiff.tensor import Tensor, unwrap
from ..backend import get_array_module

# The tapes that are recording are one list for the process: two threads each opening a local
# tape (the runner's shards) could see the other's close mid-function, so they take turns here.
_lock = threading.RLock()


class _Cache:
    __slots__ = ("fn", "owner", "z", "tape", "zt", "yt", "error")

    def __init__(self, fn, owner, z, tape=None, zt=None, yt=None, error=None):
        self.fn, self.owner, self.z = fn, owner, z
        self.tape, self.zt, self.yt, self.error = tape, zt, yt, error


def _name(fn) -> str:
    from ..activations import describe_fn

    return describe_fn(fn)


def _checked(y, z, fn, owner):
    y = unwrap(y)
    shape = getattr(y, "shape", None)
    if shape is None or tuple(shape) != tuple(z.shape):
        raise ValueError(
            f"{owner}: the activation {_name(fn)!r} must return an array of its input's shape "
            f"{tuple(z.shape)} (an element-wise function); got {shape if shape is not None else type(y).__name__}"
        )
    return get_array_module(z).asarray(y, dtype=z.dtype)


def _on_tape(fn, z, owner):
    """``fn`` on a watched tensor wrapping ``z``, under a local tape: ``(y, cache)``."""
    zt = Tensor(z)
    error = yt = None
    with _lock:
        with GradientTape(persistent=True) as tape:
            tape.watch(zt)
            try:
                yt = fn(zt)
            except Exception as e:  # NumPy refusing a tensor, say: the array path decides below
                error = e
    if error is not None:
        # on the array it may run (a NumPy function): the forward is right, the backward refuses
        return _checked(fn(z), z, fn, owner), _Cache(fn, owner, z, error=error)
    return _checked(yt, z, fn, owner), _Cache(fn, owner, z, tape, zt, yt)


def custom_forward(fn, z, record, owner):
    """``fn(z)`` and the cache its backward needs.

    Args:
        fn: the activation, ``f(x) -> tensor`` written with ``keras.ops``.
        z: the pre-activation array (NumPy or device), any rank.
        record: whether a backward may follow (training, or an outer tape recording).
        owner: the layer, for messages (``"Dense 'dense_1'"``).

    Returns:
        ``(y, cache)``, ``y`` of ``z``'s shape and dtype.
    """
    if record:
        return _on_tape(fn, z, owner)
    return _checked(fn(z), z, fn, owner), _Cache(fn, owner, z)


def custom_backward(dy, cache):
    """``dz = dy @ d fn(z) / dz`` by replaying the forward's local tape with ``dy`` (never written to)."""
    if cache.tape is None and cache.error is None:  # an inference forward: record fn now
        _, cache = _on_tape(cache.fn, cache.z, cache.owner)
    dz = None
    if cache.error is None and isinstance(cache.yt, Tensor):
        dz = cache.tape.gradient(cache.yt, cache.zt, output_gradients=dy)
    if dz is None:
        why = (
            f"calling it on a tape tensor raised {type(cache.error).__name__}: {cache.error}"
            if cache.error is not None
            else "its output does not depend on its input on the tape"
        )
        raise TypeError(
            f"{cache.owner}: the activation {_name(cache.fn)!r} has no gradient: {why}. A custom "
            "activation must be written with keras.ops (not NumPy, not .numpy()) so that it can be "
            "differentiated"
        ) from cache.error
    return get_array_module(cache.z).asarray(dz, dtype=cache.z.dtype)
