"""Tensor and Variable: a NumPy value that knows the tape node that made it.

A :class:`Tensor` wraps an ndarray ``value`` and, when it was computed while a
:class:`~convolab.autodiff.tape.GradientTape` was recording, the :class:`Node` holding the
backward of the op that made it (and that op's cache): the tape's graph lives on the
tensors, as in micrograd and PyTorch's autograd, not on the layers. A :class:`Variable` is
a tensor whose value is a layer's weight array itself (the same ndarray the optimizer
updates in place).

Arithmetic on tensors goes through :mod:`convolab.autodiff.functions`, so it is recorded; that
module gives :class:`Tensor` its operators when it is imported (as Chainer's
``install_variable_arithmetics`` does), and ``convolab.autodiff`` imports it first, so
every tensor has them.
``__array_ufunc__ = None`` makes NumPy's own functions refuse a tensor (``np.exp(t)`` raises
``TypeError``) rather than silently drop its gradient, and makes ``ndarray + tensor`` call
the tensor's ``__radd__``.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..backend import get_array_module, is_device_array

#: id(weight array) -> its Variable, so a gradient can be asked for a layer's plain array
#: (``tape.gradient(loss, model.trainable_weights)``) as Keras code does
_variables_by_array: "weakref.WeakValueDictionary[int, Variable]" = weakref.WeakValueDictionary()


class Node:
    """One recorded op: its inputs (``parents``) and ``backward(g) -> grads``, one per parent.

    ``backward`` is a closure over the op's cache; a parent that is not a tensor (a plain
    array, a constant) gets ``None``.
    """

    __slots__ = ("parents", "backward", "name")

    def __init__(self, parents, backward, name):
        self.parents = parents
        self.backward = backward
        self.name = name


class Tensor:
    """A value on the tape. Read it with ``.numpy()`` (or ``np.asarray``)."""

    __slots__ = ("value", "node", "_watched", "_keras_logits", "__weakref__")
    __array_ufunc__ = None  # see the module docstring

    def __init__(self, value, node=None):
        self.value = value if isinstance(value, np.ndarray) or is_device_array(value) else np.asarray(value)
        self.node = node
        self._watched = False
        # a softmax's output keeps its logits (Keras's _keras_logits): cross-entropy on it is
        # then computed from the logits, stable where log(softmax) would underflow
        self._keras_logits = None

    # -- what the tape asks -------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        """True when a gradient can flow to this tensor: made by a recorded op, or a source."""
        return self.node is not None or self._watched

    # -- array-like ---------------------------------------------------------------------
    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def size(self):
        return self.value.size

    def __len__(self):
        return len(self.value)

    def numpy(self):
        return self.value

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __bool__(self):
        return bool(self.value)

    def __repr__(self):
        kind = type(self).__name__
        return f"<{kind} shape={self.shape} dtype={self.dtype}{' (recorded)' if self.node else ''}>\n{self.value!r}"

    # Arithmetic (+, -, *, /, **, @, unary -, [], .T) is recorded by the ops of
    # convolab.autodiff.functions, which install it on this class when they are imported
    # (functions._install_arithmetic): they make tensors, so this module cannot import them.

    # comparisons give plain boolean arrays (no gradient), as in Keras
    def __lt__(self, other):
        return self.value < unwrap(other)

    def __le__(self, other):
        return self.value <= unwrap(other)

    def __gt__(self, other):
        return self.value > unwrap(other)

    def __ge__(self, other):
        return self.value >= unwrap(other)

    def __eq__(self, other):
        return self.value == unwrap(other)

    def __ne__(self, other):
        return self.value != unwrap(other)

    __hash__ = object.__hash__


class Variable(Tensor):
    """A weight: its ``value`` is the layer's own array, updated in place by the optimizer.

    Args:
        value: the ndarray (kept, not copied).
        name: the weight's name (``kernel``, ``bias``...).
        trainable: a bool, or a callable returning one (a built-in layer's weights follow
            ``layer.trainable``).
    """

    __slots__ = ("name", "_trainable", "path")

    def __init__(self, value, name="variable", trainable=True, path=None):
        super().__init__(value)
        self.name = name
        self._trainable = trainable
        self.path = path or name
        _variables_by_array[id(self.value)] = self

    @property
    def trainable(self) -> bool:
        t = self._trainable
        return bool(t()) if callable(t) else bool(t)

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    @property
    def requires_grad(self) -> bool:
        return True

    def rebind(self, value):
        """Hold ``value`` from now on: the weight's new array after a move between host and GPU
        (``models/placement.py``), so a handle kept by user code follows the weight."""
        self.value = value
        _variables_by_array[id(value)] = self
        return self

    def assign(self, value):
        """Write ``value`` into the weight array in place (shape must match)."""
        value = unwrap(value)
        value = get_array_module(self.value).asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"Variable '{self.path}' has shape {self.value.shape}; cannot assign shape {value.shape}")
        self.value[...] = value
        return self

    def assign_add(self, value):
        self.value += get_array_module(self.value).asarray(unwrap(value), dtype=self.value.dtype)
        return self

    def assign_sub(self, value):
        self.value -= get_array_module(self.value).asarray(unwrap(value), dtype=self.value.dtype)
        return self

    def __repr__(self):
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype}>\n{self.value!r}"


def as_source(x):
    """A tensor to differentiate with respect to: a tensor, or a weight array with a Variable."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        v = _variables_by_array.get(id(x))
        if v is not None and v.value is x:
            return v
    raise TypeError(f"GradientTape.gradient: sources must be tensors, Variables or layer weights "
                    f"(model.trainable_weights); got {type(x).__name__} of shape {np.shape(x)}")


def unwrap(x):
    """The ndarray inside a tensor; anything else unchanged."""
    return x.value if isinstance(x, Tensor) else x
