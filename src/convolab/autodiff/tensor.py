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
the tensor's ``__radd__``. A :class:`Variable` is the exception outside a tape: there it is
only a weight, and NumPy takes it as an array, as it takes Keras's variables.
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
    """A weight, as Keras's ``keras.Variable``: its ``value`` is the layer's own array.

    ``layer.weights``, ``layer.kernel`` and ``add_weight`` give the same Variable each time; the
    optimizer updates its array in place, so a Variable kept by user code always reads the
    current weight. ``.numpy()`` is a copy (as Keras's is), ``np.asarray(v)`` the array itself.
    Outside a ``GradientTape`` NumPy takes it as an array (``np.abs(v)``, ``arr * v``); inside
    one, arithmetic is recorded and other NumPy functions are refused, as on every tensor.

    Args:
        value: the ndarray (kept, not copied).
        name: the weight's name (``kernel``, ``bias``...).
        trainable: a bool, or a callable returning one (a built-in layer's weights follow
            ``layer.trainable``).
        path: ``layer_name/name`` (Keras 3's ``variable.path``, e.g. ``dense/kernel``).
    """

    __slots__ = ("name", "_trainable", "path")
    #: whether a GradientTape is recording: autodiff.functions installs tape.is_recording here
    #: (the tape imports this module, so this module cannot import the tape)
    _recording = staticmethod(lambda: False)

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

    def numpy(self):
        """A NumPy copy of the weight (from the GPU too): it does not change when training goes on."""
        from ..backend import host_copy

        return host_copy(self.value)

    def rebind(self, value):
        """Hold ``value`` from now on: the weight's new array after a move between host and GPU
        (``models/placement.py``), so a handle kept by user code follows the weight."""
        self.value = value
        _variables_by_array[id(value)] = self
        return self

    def _checked(self, value, what):
        value = get_array_module(self.value).asarray(unwrap(value))
        if value.shape != self.value.shape and not (what != "assign" and _broadcasts(value.shape, self.value.shape)):
            raise ValueError(
                f"Variable '{self.path}'.{what}: the variable has shape {self.value.shape}; "
                f"got a value of shape {value.shape}"
            )
        return value

    def assign(self, value):
        """Write ``value`` into the weight array in place (shape must match); returns the Variable."""
        self.value[...] = self._checked(value, "assign")
        return self

    def assign_add(self, value):
        """``variable += value`` in place (``value`` broadcasts to the variable's shape)."""
        self.value += self._checked(value, "assign_add").astype(self.value.dtype, copy=False)
        return self

    def assign_sub(self, value):
        """``variable -= value`` in place (``value`` broadcasts to the variable's shape)."""
        self.value -= self._checked(value, "assign_sub").astype(self.value.dtype, copy=False)
        return self

    def __setitem__(self, index, value):
        raise TypeError(
            f"Variable '{self.path}' is not written by index (nor is Keras's); write the whole "
            "value: a = v.numpy(); a[index] = value; v.assign(a)"
        )

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # Outside a tape a Variable is its array, as Keras's converts for NumPy. On a tape, the
        # arithmetic an ndarray on the left sends here (arr * v) is recorded; anything else
        # would lose the gradient silently, so it is refused as on a Tensor.
        if not Variable._recording():
            out = kwargs.get("out")
            if out is not None:
                kwargs["out"] = tuple(unwrap(o) for o in out)
            return getattr(ufunc, method)(*(unwrap(x) for x in inputs), **kwargs)
        names = _TAPE_UFUNCS.get(ufunc.__name__)
        if method == "__call__" and names is not None and len(inputs) == 2 and not kwargs:
            a, b = inputs
            return getattr(a, names[0])(b) if isinstance(a, Tensor) else getattr(b, names[1])(a)
        raise TypeError(
            f"numpy.{ufunc.__name__} on Variable '{self.path}' inside a GradientTape would lose "
            f"its gradient; use keras.ops, or read the array with .numpy()"
        )

    def __repr__(self):
        return f"<Variable path={self.path}, shape={tuple(self.shape)}, dtype={self.dtype}, value={self.value!r}>"


#: the NumPy ufuncs that an ``ndarray <op> variable`` expression calls, and the tensor
#: operators that record them (forward, reflected)
_TAPE_UFUNCS = {
    "add": ("__add__", "__radd__"),
    "subtract": ("__sub__", "__rsub__"),
    "multiply": ("__mul__", "__rmul__"),
    "true_divide": ("__truediv__", "__rtruediv__"),
    "divide": ("__truediv__", "__rtruediv__"),
    "power": ("__pow__", "__rpow__"),
    "matmul": ("__matmul__", "__rmatmul__"),
}


def _broadcasts(got, want) -> bool:
    """Whether an array of shape ``got`` broadcasts to ``want`` without growing it."""
    if len(got) > len(want):
        return False
    return all(g in (1, w) for g, w in zip(reversed(got), reversed(want)))


def as_source(x):
    """A tensor to differentiate with respect to: a tensor, or a weight array with a Variable."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        v = _variables_by_array.get(id(x))
        if v is not None and v.value is x:
            return v
    raise TypeError(
        f"GradientTape.gradient: sources must be tensors, Variables or layer weights "
        f"(model.trainable_weights); got {type(x).__name__} of shape {np.shape(x)}"
    )


def unwrap(x):
    """The ndarray inside a tensor; anything else unchanged."""
    return x.value if isinstance(x, Tensor) else x
