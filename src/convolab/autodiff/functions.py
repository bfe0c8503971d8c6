"""``keras.ops``: NumPy-like functions with a hand-written backward each.

Inside a ``GradientTape`` block, a function given a tensor that needs a gradient returns a
recorded :class:`~convolab.autodiff.tensor.Tensor`; otherwise it returns a plain ndarray.
Every backward gets the upstream gradient ``g`` (never written to) and returns one gradient
per input, reduced back to the input's shape where NumPy broadcast it.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import epsilon, floatx, get_array_module, is_device_array
from .tape import is_recording, record
from .tensor import Tensor, Variable, unwrap


def _xp(*xs):
    """The array module of the inputs (tensors unwrapped); with none, the current device's."""
    if not xs:
        return backend.xp
    return get_array_module(*(unwrap(x) for x in xs))


def _is_array(v):
    return isinstance(v, np.ndarray) or is_device_array(v)


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the adjoint of NumPy broadcasting."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _shape(x):
    v = unwrap(x)
    return tuple(v.shape) if _is_array(v) else np.shape(v)


def _float(x):
    """An input as an array; Python numbers become 0-d arrays of the float type in use."""
    v = unwrap(x)
    if _is_array(v):
        return v
    xp = backend.xp  # a Python number or list becomes an array of the current device
    return xp.asarray(v, dtype=floatx()) if isinstance(v, (int, float)) and not isinstance(v, bool) else xp.asarray(v)


def _binary(a, b):
    av, bv = _float(a), _float(b)
    # a Python number takes the array's dtype (NumPy 2's weak scalars do the same)
    if not _is_array(unwrap(a)) and _is_array(bv) and bv.dtype.kind == "f":
        av = av.astype(bv.dtype)
    if not _is_array(unwrap(b)) and _is_array(av) and av.dtype.kind == "f":
        bv = bv.astype(av.dtype)
    return av, bv


# -- conversion ----------------------------------------------------------------------------


def convert_to_tensor(x, dtype=None):
    """An array (``dtype`` or its own) as a :class:`Tensor`; tensors pass through."""
    xp = _xp(x)
    if isinstance(x, Tensor) and dtype is None:
        return x
    return Tensor(xp.asarray(unwrap(x), dtype=dtype))


def convert_to_numpy(x):
    """A NumPy array, from the GPU too (Keras's ``convert_to_numpy``)."""
    v = unwrap(x)
    return backend.to_host(v) if is_device_array(v) else np.asarray(v)


def cast(x, dtype):
    xp = _xp(x)
    xv = unwrap(x)
    y = xp.asarray(xv).astype(dtype)
    if np.dtype(dtype).kind != "f":
        return y
    return record(y, (x,), lambda g: (g.astype(xp.asarray(xv).dtype),), "cast")


def shape(x):
    return _shape(x)


# -- arithmetic ----------------------------------------------------------------------------


def add(a, b):
    av, bv = _binary(a, b)
    return record(av + bv, (a, b), lambda g: (_unbroadcast(g, av.shape), _unbroadcast(g, bv.shape)), "add")


def subtract(a, b):
    av, bv = _binary(a, b)
    return record(av - bv, (a, b), lambda g: (_unbroadcast(g, av.shape), _unbroadcast(-g, bv.shape)), "subtract")


def multiply(a, b):
    av, bv = _binary(a, b)
    return record(
        av * bv, (a, b), lambda g: (_unbroadcast(g * bv, av.shape), _unbroadcast(g * av, bv.shape)), "multiply"
    )


def divide(a, b):
    av, bv = _binary(a, b)
    y = av / bv
    return record(y, (a, b), lambda g: (_unbroadcast(g / bv, av.shape), _unbroadcast(-g * y / bv, bv.shape)), "divide")


true_divide = divide


def negative(x):
    xv = _float(x)
    return record(-xv, (x,), lambda g: (-g,), "negative")


def power(a, b):
    xp = _xp(a, b)
    av, bv = _binary(a, b)
    y = av**bv

    def backward(g):
        ga = _unbroadcast(g * bv * av ** (bv - 1), av.shape)
        gb = None
        if isinstance(b, Tensor):
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = _unbroadcast(xp.where(av > 0, g * y * xp.log(xp.where(av > 0, av, 1)), 0), bv.shape)
        return ga, gb

    return record(y, (a, b), backward, "power")


def square(x):
    xv = _float(x)
    return record(xv * xv, (x,), lambda g: (2 * g * xv,), "square")


def sqrt(x):
    xp = _xp(x)
    xv = _float(x)
    y = xp.sqrt(xv)
    return record(y, (x,), lambda g: (g / (2 * y),), "sqrt")


def exp(x):
    xp = _xp(x)
    xv = _float(x)
    y = xp.exp(xv)
    return record(y, (x,), lambda g: (g * y,), "exp")


def log(x):
    xp = _xp(x)
    xv = _float(x)
    return record(xp.log(xv), (x,), lambda g: (g / xv,), "log")


def abs(x):  # noqa: A001 (keras.ops.abs)
    xp = _xp(x)
    xv = _float(x)
    return record(xp.abs(xv), (x,), lambda g: (g * xp.sign(xv),), "abs")


absolute = abs


def sign(x):
    xp = _xp(x)
    return xp.sign(unwrap(x))


def maximum(a, b):
    xp = _xp(a, b)
    av, bv = _binary(a, b)
    y = xp.maximum(av, bv)
    ma = av >= bv  # ties go to the first argument
    return record(y, (a, b), lambda g: (_unbroadcast(g * ma, av.shape), _unbroadcast(g * ~ma, bv.shape)), "maximum")


def minimum(a, b):
    xp = _xp(a, b)
    av, bv = _binary(a, b)
    y = xp.minimum(av, bv)
    ma = av <= bv
    return record(y, (a, b), lambda g: (_unbroadcast(g * ma, av.shape), _unbroadcast(g * ~ma, bv.shape)), "minimum")


def clip(x, x_min, x_max):
    xp = _xp(x)
    xv = _float(x)
    y = xp.clip(xv, x_min, x_max)
    inside = (xv >= x_min) & (xv <= x_max)
    return record(y, (x,), lambda g: (g * inside,), "clip")


def where(condition, x1, x2):
    xp = _xp(condition, x1, x2)
    c = xp.asarray(unwrap(condition), dtype=bool)
    av, bv = _binary(x1, x2)
    y = xp.where(c, av, bv)
    return record(
        y,
        (x1, x2),
        lambda g: (_unbroadcast(xp.where(c, g, 0), av.shape), _unbroadcast(xp.where(c, 0, g), bv.shape)),
        "where",
    )


def matmul(a, b):
    xp = _xp(a, b)
    av, bv = _binary(a, b)
    y = av @ bv

    def backward(g):
        if av.ndim == 1 and bv.ndim == 1:
            return g * bv, g * av
        a2 = av[None, :] if av.ndim == 1 else av
        b2 = bv[:, None] if bv.ndim == 1 else bv
        g2 = g
        if av.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if bv.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = g2 @ xp.swapaxes(b2, -1, -2)
        gb = xp.swapaxes(a2, -1, -2) @ g2
        if av.ndim == 1:
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if bv.ndim == 1:
            gb = gb.reshape(gb.shape[:-1])
        return _unbroadcast(ga, av.shape), _unbroadcast(gb, bv.shape)

    return record(y, (a, b), backward, "matmul")


dot = matmul


# -- reductions ----------------------------------------------------------------------------


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axis)


def _expand(g, axes, keepdims):
    xp = _xp(g)
    return g if keepdims else xp.expand_dims(g, axes)


def sum(x, axis=None, keepdims=False):  # noqa: A001 (keras.ops.sum)
    xp = _xp(x)
    xv = _float(x)
    axes = _axes(axis, xv.ndim)
    return record(
        xv.sum(axis=axes, keepdims=keepdims),
        (x,),
        lambda g: (xp.broadcast_to(_expand(g, axes, keepdims), xv.shape).copy(),),
        "sum",
    )


def mean(x, axis=None, keepdims=False):
    xp = _xp(x)
    xv = _float(x)
    axes = _axes(axis, xv.ndim)
    count = int(xp.prod([xv.shape[a] for a in axes])) if axes else 1
    return record(
        xv.mean(axis=axes, keepdims=keepdims),
        (x,),
        lambda g: (xp.broadcast_to(_expand(g, axes, keepdims) / count, xv.shape).copy(),),
        "mean",
    )


def _extreme(x, axis, keepdims, fn, name):
    xp = _xp(x)
    xv = _float(x)
    axes = _axes(axis, xv.ndim)
    y = getattr(xp, fn)(xv, axis=axes, keepdims=True)
    hit = xv == y
    share = hit / hit.sum(axis=axes, keepdims=True)  # ties share the gradient, as TensorFlow does
    out = y if keepdims else xp.squeeze(y, axis=axes)
    return record(out, (x,), lambda g: (_expand(g, axes, keepdims) * share,), name)


def max(x, axis=None, keepdims=False):  # noqa: A001 (keras.ops.max)
    return _extreme(x, axis, keepdims, "max", "max")


def min(x, axis=None, keepdims=False):  # noqa: A001 (keras.ops.min)
    return _extreme(x, axis, keepdims, "min", "min")


amax, amin = max, min


def var(x, axis=None, keepdims=False):
    m = mean(x, axis=axis, keepdims=True)
    return mean(square(subtract(x, m)), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def argmax(x, axis=-1):
    xp = _xp(x)
    return xp.argmax(unwrap(x), axis=axis)


def argmin(x, axis=-1):
    xp = _xp(x)
    return xp.argmin(unwrap(x), axis=axis)


# -- activations ---------------------------------------------------------------------------


def relu(x):
    xp = _xp(x)
    xv = _float(x)
    return record(xp.maximum(xv, 0), (x,), lambda g: (g * (xv > 0),), "relu")


def sigmoid(x):
    xp = _xp(x)
    xv = _float(x)
    y = xp.empty_like(xv)
    pos = xv >= 0
    y[pos] = 1 / (1 + xp.exp(-xv[pos]))
    e = xp.exp(xv[~pos])
    y[~pos] = e / (1 + e)
    return record(y, (x,), lambda g: (g * y * (1 - y),), "sigmoid")


def tanh(x):
    xp = _xp(x)
    xv = _float(x)
    y = xp.tanh(xv)
    return record(y, (x,), lambda g: (g * (1 - y * y),), "tanh")


def softmax(x, axis=-1):
    xp = _xp(x)
    xv = _float(x)
    e = xp.exp(xv - xv.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return record(y, (x,), lambda g: (y * (g - (g * y).sum(axis=axis, keepdims=True)),), "softmax")


def log_softmax(x, axis=-1):
    xp = _xp(x)
    xv = _float(x)
    s = xv - xv.max(axis=axis, keepdims=True)
    y = s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))
    p = xp.exp(y)
    return record(y, (x,), lambda g: (g - p * g.sum(axis=axis, keepdims=True),), "log_softmax")


def softplus(x):
    xp = _xp(x)
    xv = _float(x)
    y = xp.logaddexp(0, xv)
    return record(y, (x,), lambda g: (g / (1 + xp.exp(-xv)),), "softplus")


def one_hot(x, num_classes, dtype=None):
    xp = _xp(x)
    idx = xp.asarray(unwrap(x)).astype(np.intp)
    return xp.eye(num_classes, dtype=dtype or floatx())[idx]


# -- shapes --------------------------------------------------------------------------------


def reshape(x, newshape):
    xv = _float(x)
    return record(xv.reshape(newshape), (x,), lambda g: (g.reshape(xv.shape),), "reshape")


def transpose(x, axes=None):
    xp = _xp(x)
    xv = _float(x)
    inv = None if axes is None else xp.argsort(axes)
    return record(xp.transpose(xv, axes), (x,), lambda g: (xp.transpose(g, inv),), "transpose")


def expand_dims(x, axis):
    xp = _xp(x)
    xv = _float(x)
    return record(xp.expand_dims(xv, axis), (x,), lambda g: (g.reshape(xv.shape),), "expand_dims")


def squeeze(x, axis=None):
    xp = _xp(x)
    xv = _float(x)
    return record(xp.squeeze(xv, axis=axis), (x,), lambda g: (g.reshape(xv.shape),), "squeeze")


def concatenate(xs, axis=0):
    xp = _xp(xs)
    vals = [_float(x) for x in xs]
    y = _concatenate_split(vals, axis) if xp is np else None
    if y is None:
        y = xp.concatenate(vals, axis=axis)
    bounds = xp.cumsum([v.shape[axis] for v in vals])[:-1]
    return record(y, tuple(xs), lambda g: _split_contiguous(g, bounds, axis), "concatenate")


def _split_contiguous(g, bounds, axis):
    """The gradient of a concatenation: ``g`` split at ``bounds`` along ``axis``. Along a
    non-batch axis (Inception's channels) each piece is copied out C-contiguous, one slice of
    the batch per op thread: a strided view would send the ReLU backward (and every other
    compiled kernel behind it) to a slower NumPy path or a copy of its own."""
    from ..nn import threads

    xp = get_array_module(g)
    pieces = xp.split(g, bounds, axis=axis)
    if xp is not np or g.ndim < 2 or axis % g.ndim == 0:
        return tuple(pieces)
    outs = [np.empty(p.shape, dtype=p.dtype) for p in pieces]

    def copy(lo, hi):
        for out, piece in zip(outs, pieces):
            out[lo:hi] = piece[lo:hi]

    threads.over_batch(g.shape[0], 20.0 * g.size, copy)
    return tuple(outs)


def _concatenate_split(vals, axis):
    """A concatenation along a non-batch axis (Inception's channels) as one slice of the batch per
    op thread (nn/threads.py), or ``None`` to concatenate whole. A strided copy: about 20 GEMM
    FLOPs' worth of time per value."""
    from ..nn import threads

    first = vals[0]
    if first.ndim < 2 or axis % first.ndim == 0 or any(v.shape[0] != first.shape[0] for v in vals):
        return None
    size = int(np.sum([v.size for v in vals]))  # (this module's own sum is keras.ops.sum)
    parts = threads.spans(first.shape[0], 20.0 * size)
    if parts is None:
        return None
    shape = list(first.shape)
    shape[axis] = int(np.sum([v.shape[axis] for v in vals]))
    y = np.empty(shape, dtype=np.result_type(*vals))
    threads.run(lambda lo, hi: np.concatenate([v[lo:hi] for v in vals], axis=axis, out=y[lo:hi]), parts)
    return y


def stack(xs, axis=0):
    xp = _xp(xs)
    vals = [_float(x) for x in xs]
    y = xp.stack(vals, axis=axis)
    return record(y, tuple(xs), lambda g: tuple(xp.moveaxis(g, axis, 0)), "stack")


def getitem(x, index):
    xp = _xp(x)
    xv = _float(x)
    index = unwrap(index)

    def backward(g):
        gx = xp.zeros_like(xv)
        xp.add.at(gx, index, g)
        return (gx,)

    return record(xv[index], (x,), backward, "getitem")


def take(x, indices, axis=None):
    xp = _xp(x)
    xv = _float(x)
    idx = xp.asarray(unwrap(indices)).astype(np.intp)
    if axis is None:
        return getitem(reshape(x, (-1,)), idx)
    index = (slice(None),) * (axis % xv.ndim) + (idx,)
    return getitem(x, index)


# -- constructors (no gradient) ------------------------------------------------------------


def zeros(shape, dtype=None):
    xp = _xp()
    return xp.zeros(shape, dtype=dtype or floatx())


def ones(shape, dtype=None):
    xp = _xp()
    return xp.ones(shape, dtype=dtype or floatx())


def zeros_like(x, dtype=None):
    xp = _xp(x)
    return xp.zeros_like(unwrap(x), dtype=dtype)


def ones_like(x, dtype=None):
    xp = _xp(x)
    return xp.ones_like(unwrap(x), dtype=dtype)


def arange(*args, dtype=None, **kwargs):
    xp = _xp()
    return xp.arange(*args, dtype=dtype, **kwargs)


def equal(a, b):
    xp = _xp(a, b)
    return xp.equal(unwrap(a), unwrap(b))


def not_equal(a, b):
    xp = _xp(a, b)
    return xp.not_equal(unwrap(a), unwrap(b))


def greater(a, b):
    xp = _xp(a, b)
    return xp.greater(unwrap(a), unwrap(b))


def greater_equal(a, b):
    xp = _xp(a, b)
    return xp.greater_equal(unwrap(a), unwrap(b))


def less(a, b):
    xp = _xp(a, b)
    return xp.less(unwrap(a), unwrap(b))


def less_equal(a, b):
    xp = _xp(a, b)
    return xp.less_equal(unwrap(a), unwrap(b))


def stop_gradient(x):
    return unwrap(x)


# -- losses as keras.ops spells them ------------------------------------------------------


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per-sample cross-entropy (Keras's clipping of probabilities to [eps, 1 - eps])."""
    if from_logits:
        return negative(sum(multiply(target, log_softmax(output, axis=axis)), axis=axis))
    out = divide(output, sum(output, axis=axis, keepdims=True))
    out = clip(out, epsilon(), 1 - epsilon())
    return negative(sum(multiply(target, log(out)), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    xp = _xp(target, output)
    k = _shape(output)[axis]
    t = xp.asarray(unwrap(target)).astype(np.intp).reshape(_shape(output)[:-1])
    return categorical_crossentropy(one_hot(t, k, dtype=_float(output).dtype), output, from_logits, axis)


def binary_crossentropy(target, output, from_logits=False):
    t = _float(target)
    if from_logits:
        # max(z, 0) - z * t + log(1 + exp(-|z|)): stable
        z = output
        return add(subtract(relu(z), multiply(z, t)), softplus(negative(abs(z))))
    p = clip(output, epsilon(), 1 - epsilon())
    return negative(add(multiply(t, log(p)), multiply(subtract(1.0, t), log(subtract(1.0, p)))))


# -- Tensor's operators ----------------------------------------------------------------------


def _install_arithmetic():
    """Give :class:`Tensor` its operators, as Chainer's ``install_variable_arithmetics`` does.

    tensor.py sits below this module (these ops make tensors), so the class cannot import its
    arithmetic: it is attached here, once, when ``convolab.autodiff`` is imported.
    """

    def swapped(op):
        def reflected(self, other):
            return op(other, self)

        reflected.__name__ = f"r{op.__name__}"
        return reflected

    operators = {
        "__add__": add,
        "__radd__": swapped(add),
        "__sub__": subtract,
        "__rsub__": swapped(subtract),
        "__mul__": multiply,
        "__rmul__": swapped(multiply),
        "__truediv__": divide,
        "__rtruediv__": swapped(divide),
        "__pow__": power,
        "__rpow__": swapped(power),
        "__matmul__": matmul,
        "__rmatmul__": swapped(matmul),
        "__neg__": negative,
        "__getitem__": getitem,
        "T": property(transpose),
    }
    for name, op in operators.items():
        setattr(Tensor, name, op)
    Variable._recording = staticmethod(is_recording)  # NumPy takes a Variable as an array off the tape


_install_arithmetic()

__all__ = [
    name
    for name in dir()
    if not name.startswith("_")
    and name not in ("annotations", "np", "record", "Tensor", "Variable", "unwrap", "epsilon", "floatx")
]
