"""The small ONNX builder that layers' ``to_onnx`` methods write with, and the pieces they share.

A layer's ``to_onnx(self, g, t, folded=None)`` appends nodes to ``g`` (a :class:`Graph`) that
compute the layer on the running tensor ``t`` (a :class:`Tensor`) and points ``t`` at its
result. Layers import this module inside that method, so ``onnx`` stays an optional import;
this module imports no layer and no model.

The layout rule (see :mod:`convolab.saving.onnx_export`): a tensor is NHWC unless ``t.nchw``;
ONNX's Conv and pooling want NCHW (:func:`to_nchw`), anything that depends on the axis order
wants NHWC (:func:`to_nhwc`), and the output is brought back to NHWC.
"""

from __future__ import annotations

import numpy as np

from ..nn.activations import LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE
from ..nn.batchnorm import batchnorm_scale_shift
from ..utils.conv_utils import padding_amounts, resolve_padding


class Graph:
    """Collects nodes and initialisers; :meth:`op` and :meth:`const` return the name they made.

    Args:
        helper, numpy_helper: ``onnx.helper`` and ``onnx.numpy_helper``.
        dtype: the model's float dtype, for constants.
    """

    def __init__(self, helper, numpy_helper, dtype):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers = [], []
        self._count = 0

    def _name(self, base):
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, base, value, dtype=None):
        """An initialiser of the model's dtype (or ``dtype``: ONNX shapes are int64)."""
        name = self._name(base)
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype or self.dtype))
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type, inputs, base=None, **attrs):
        """Append node ``op_type(inputs, **attrs)``; returns its output's name."""
        out = self._name(base or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


class Tensor:
    """The running tensor: its name, rank and whether its axes are currently NCHW."""

    def __init__(self, name, rank):
        self.name, self.rank, self.nchw = name, rank, False

    def copy(self):
        out = Tensor(self.name, self.rank)
        out.nchw = self.nchw
        return out


def to_nchw(g, t):
    """Transpose a rank-4 NHWC tensor to NCHW (no-op otherwise)."""
    if t.rank == 4 and not t.nchw:
        t.name = g.op("Transpose", [t.name], "to_nchw", perm=[0, 3, 1, 2])
        t.nchw = True


def to_nhwc(g, t):
    """Transpose an NCHW tensor back to NHWC (no-op otherwise)."""
    if t.nchw:
        t.name = g.op("Transpose", [t.name], "to_nhwc", perm=[0, 2, 3, 1])
        t.nchw = False


#: activations that are one ONNX op of opset 13: name -> (op, attributes)
ACTIVATION_OPS = {
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "elu": ("Elu", {"alpha": 1.0}),
    "selu": ("Selu", {"alpha": SELU_ALPHA, "gamma": SELU_SCALE}),
    "softplus": ("Softplus", {}),
    "softsign": ("Softsign", {}),
    "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),  # Keras 3: relu6(x + 3) / 6
    "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_RELU_SLOPE}),
    "exponential": ("Exp", {}),
}


def activation(g, t, name, base, owner=None):
    """Apply activation ``name`` to ``t``; ``owner`` names the layer in the error for one ONNX lacks."""
    if callable(name):  # a user's function: Python code, which no ONNX graph translates
        from ..activations import describe_fn

        raise ValueError(
            f"export_model: {owner or repr(base)} has the custom activation {describe_fn(name)!r} (a Python "
            "function), which ONNX export cannot translate; export translates the built-in activations only"
        )
    if name == "linear":
        return
    if name == "softmax":
        t.name = g.op("Softmax", [t.name], base, axis=1 if t.nchw else -1)
    elif name in ACTIVATION_OPS:
        op, attrs = ACTIVATION_OPS[name]
        t.name = g.op(op, [t.name], base, **attrs)
    elif name == "gelu":  # Keras 3's exact gelu; ONNX's Gelu is opset 20
        scaled = g.op("Mul", [t.name, g.const(base + "_rsqrt2", 1 / np.sqrt(2.0))], base + "_scaled")
        erf = g.op("Erf", [scaled], base + "_erf")
        half = g.op("Mul", [t.name, g.const(base + "_half", 0.5)], base + "_half")
        t.name = g.op("Mul", [half, g.op("Add", [erf, g.const(base + "_one", 1.0)], base + "_1perf")], base)
    elif name in ("swish", "silu"):
        t.name = g.op("Mul", [t.name, g.op("Sigmoid", [t.name], base + "_sigmoid")], base)
    elif name == "mish":  # ONNX's Mish is opset 18
        soft = g.op("Softplus", [t.name], base + "_softplus")
        t.name = g.op("Mul", [t.name, g.op("Tanh", [soft], base + "_tanh")], base)
    else:
        raise ValueError(
            f"export_model: {owner or repr(base)} has activation {name!r}, which has no ONNX translation "
            f"(exported: linear, softmax, gelu, swish, silu, mish, {', '.join(ACTIVATION_OPS)})"
        )


def window_attrs(layer, kernel, dilation=(1, 1)):
    """Conv/pool attributes of a 2-D window layer (``strides``, ``padding``, ``input_shape``):
    explicit TensorFlow 'same' pads, or SAME_UPPER when the size is only known at run time."""
    _, h, w, _ = layer.input_shape
    attrs = {"kernel_shape": list(kernel), "strides": list(layer.strides)}
    if tuple(dilation) != (1, 1):
        attrs["dilations"] = list(dilation)
    if layer.padding == "same" and (h is None or w is None):
        attrs["auto_pad"] = "SAME_UPPER"  # TensorFlow's split when the size is only known at run time
    else:
        (top, bottom), (left, right) = padding_amounts((h, w), kernel, layer.strides, layer.padding, dilation)
        attrs["pads"] = [top, left, bottom, right]
    return attrs


def conv(g, t, layer, kernel, bias, groups, base, window=True):
    """An ONNX Conv of the NCHW tensor with a Keras ``(kh, kw, C // groups, F)`` kernel
    (``window=False``: a 1x1 convolution, stride 1)."""
    to_nchw(g, t)
    inputs = [t.name, g.const(base + "_W", kernel.transpose(3, 2, 0, 1))]  # -> (F, C // groups, kh, kw)
    if bias is not None:
        inputs.append(g.const(base + "_B", bias))
    attrs = window_attrs(layer, layer.kernel_size, layer.dilation_rate) if window else {"kernel_shape": [1, 1]}
    t.name = g.op("Conv", inputs, base + "_conv", group=int(groups), **attrs)


def batch_norm(g, t, layer, base):
    """A BatchNormalization layer's inference form: an ONNX BatchNormalization (channels on axis 1:
    NCHW images, (N, C) vectors), or for other ranks the same per-channel map as a Mul and an Add
    on the last axis."""
    p = layer.params
    c = p["moving_mean"].shape[0]
    if t.rank in (2, 4):
        to_nchw(g, t)
        gamma = p["gamma"] if "gamma" in p else np.ones(c)
        beta = p["beta"] if "beta" in p else np.zeros(c)
        inputs = [t.name] + [
            g.const(base + suffix, v)
            for suffix, v in (
                ("_gamma", gamma),
                ("_beta", beta),
                ("_mean", p["moving_mean"]),
                ("_var", p["moving_variance"]),
            )
        ]
        t.name = g.op("BatchNormalization", inputs, base, epsilon=float(layer.epsilon))
        return
    to_nhwc(g, t)
    scale, shift = batchnorm_scale_shift(
        p["moving_mean"], p["moving_variance"], p.get("gamma"), p.get("beta"), layer.epsilon
    )
    t.name = g.op("Mul", [t.name, g.const(base + "_scale", scale)], base + "_scale")
    t.name = g.op("Add", [t.name, g.const(base + "_shift", shift)], base + "_shift")


def crop(g, t, base, top, bottom, left, right):
    """Slice off borders along H and W; a negative end counts from the end, so sizes need not be known."""
    big = np.iinfo(np.int64).max
    starts = g.const(base + "_starts", [top, left], dtype=np.int64)
    ends = g.const(base + "_ends", [-bottom if bottom else big, -right if right else big], dtype=np.int64)
    axes = g.const(base + "_axes", [2, 3] if t.nchw else [1, 2], dtype=np.int64)
    t.name = g.op("Slice", [t.name, starts, ends, axes], base)


def resize(g, t, base, scale_h, scale_w, interpolation):
    """ONNX Resize by whole-image scales: 'nearest' repeats pixels (asymmetric, floor), 'bilinear'
    is TensorFlow's half-pixel linear resize."""
    scales = [1.0, 1.0, scale_h, scale_w] if t.nchw else [1.0, scale_h, scale_w, 1.0]
    attrs = (
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        if interpolation == "nearest"
        else {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    )
    t.name = g.op("Resize", [t.name, "", g.const(base + "_scales", scales, dtype=np.float32)], base, **attrs)


def resize_to(g, t, base, height, width, **attrs):
    """ONNX Resize to exact sizes (float scales such as 5/6 can floor to one pixel less): the
    batch and channel sizes are read from the tensor at run time."""
    shape = g.op("Shape", [t.name], base + "_shape")
    one = g.const(base + "_one", [1], dtype=np.int64)
    batch = g.op("Slice", [shape, g.const(base + "_b0", [0], dtype=np.int64), one], base + "_batch")
    c_axis = 1 if t.nchw else 3
    chan = g.op(
        "Slice",
        [shape, g.const(base + "_c0", [c_axis], dtype=np.int64), g.const(base + "_c1", [c_axis + 1], dtype=np.int64)],
        base + "_channels",
    )
    hw = g.const(base + "_hw", [height, width], dtype=np.int64)
    parts = [batch, chan, hw] if t.nchw else [batch, hw, chan]
    sizes = g.op("Concat", parts, base + "_sizes", axis=0)
    t.name = g.op("Resize", [t.name, "", "", sizes], base, **attrs)


def sequence_window(g, t, base, op, weights, **attrs):
    """A 1-D ONNX op (Conv, MaxPool, AveragePool) on an ``(N, L, C)`` sequence, through ``(N, C, L)``."""
    x = g.op("Transpose", [t.name], base + "_to_ncl", perm=[0, 2, 1])
    y = g.op(op, [x] + weights, base + "_" + op.lower(), **attrs)
    t.name = g.op("Transpose", [y], base + "_to_nlc", perm=[0, 2, 1])


def sequence_pads(layer, kernel, dilation=1):
    """The 1-D window attributes of a Conv1D or 1-D pooling layer: explicit pads, or SAME_UPPER
    when a 'same' sequence's length is only known at run time."""
    length = layer.input_shape[1]
    if layer.padding == "same" and length is None:
        return {"auto_pad": "SAME_UPPER"}
    ((before, after),) = resolve_padding((length,), (kernel,), tuple(layer.strides), layer.padding, (dilation,))
    return {"pads": [before, after]}
