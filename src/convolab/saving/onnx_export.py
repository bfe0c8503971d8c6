"""Export a Sequential or functional model to ONNX for inference (onnxruntime, TensorRT, browsers...).

The ONNX graph takes and returns what ``model.predict`` does: input ``"input"`` of shape
``(batch, H, W, C)`` (NHWC, the batch axis symbolic) and output ``"output"``.

ONNX's Conv and pooling work in NCHW, so the graph carries a layout: the first Conv2D or
pooling layer transposes NHWC -> NCHW, and the tensor goes back to NHWC (perm 0, 2, 3, 1)
before anything that depends on the axis order (Flatten, Dense, Softmax over channels is
done on axis 1 instead) and at the output. Flatten therefore flattens in NHWC order, as
convolab and Keras do, and Dense kernels are used unchanged.

Global pooling reads whichever layout the tensor is in (GlobalAveragePool/GlobalMaxPool on
NCHW, ReduceMean/ReduceMax over axes 1 and 2 on NHWC); Reshape goes back to NHWC first, like
Flatten, and keeps the batch size (shape ``[0, *target_shape]``); Rescaling is a Mul and an Add.

Grouped and depthwise convolutions are ONNX Convs with ``group`` (``group = C`` for
DepthwiseConv2D, whose ``(kh, kw, C, dm)`` kernel is the grouped ``(kh, kw, 1, C * dm)`` one) and
``dilations``; SeparableConv2D is two Convs, the depthwise one and a 1x1 one carrying the bias.

ZeroPadding2D is a Pad, Cropping2D a Slice, UpSampling2D a Resize ('nearest': asymmetric
coordinates with floor, i.e. repetition; 'bilinear': half-pixel linear, TensorFlow's resize).
Augmentation layers compute the identity at inference and add no node, except RandomCrop,
whose inference-time centre crop and resize are a Slice and a Resize.

Padding ``'same'`` is TensorFlow's (the odd pixel after), written as explicit asymmetric
``pads`` from :func:`convolab.utils.conv_utils.padding_amounts`; average pooling excludes the
padding (``count_include_pad=0``), max pooling never picks it.

Sequences ``(N, L, C)`` (Conv1D, MaxPooling1D, AveragePooling1D) are transposed to ONNX's
``(N, C, L)`` around their 1-D Conv or pool and back (``'causal'`` is the explicit pads
``((k - 1) * d, 0)``); GlobalAveragePooling1D/GlobalMaxPooling1D are a ReduceMean/ReduceMax over the
steps. Conv2DTranspose is a ConvTranspose with the pads of the convolution behind it and the
``output_padding`` that gives Keras's output size. Resizing is a Resize to exact sizes (bilinear:
half-pixel linear; nearest: TensorFlow's half-pixel floor), after a Slice with
``crop_to_aspect_ratio``. LeakyReLU, ELU and PReLU are ONNX's LeakyRelu, Elu and PRelu.

Activations (``activation=`` and the Activation layer) are ONNX ops where opset 13 has them
(Relu, Sigmoid, Tanh, Softmax, Elu, Selu, Softplus, Softsign, HardSigmoid with Keras 3's
``alpha = 1/6, beta = 0.5``, LeakyRelu with slope 0.2, Exp) and compositions otherwise: gelu
``0.5 x (1 + erf(x / sqrt 2))`` (Gelu is opset 20), swish/silu ``x sigmoid(x)``, mish
``x tanh(softplus(x))`` (Mish is opset 18). Anything else is refused with a ValueError naming the
layer, before a file is written.

BatchNormalization exports its inference form (moving statistics). Where ``predict`` folds it
into the layer before it (a Conv2D, DepthwiseConv2D or Dense without activation:
:func:`convolab.models.folding.folds`, the one rule) the export folds it the same way, with
the same formula (``kernel * scale``, ``bias * scale + shift``), so it costs nothing at
inference; elsewhere it is an ONNX BatchNormalization node (NCHW
images, ``(N, C)`` vectors) or, for other ranks, a Mul and an Add over the last axis.
"""

from __future__ import annotations

import os

import numpy as np

from ..nn.activations import LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE
from ..nn.batchnorm import batchnorm_scale_shift
from ..nn.conv_transpose import conv_transpose_output_sizes
from ..utils.conv_utils import padding_amounts, resolve_padding
from .atomic import atomic_write_bytes

OPSET = 13
IR_VERSION = 7  # opset 13's IR version: readable by onnxruntime >= 1.7


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError(
            "export_model(format='onnx') needs the `onnx` package: pip install 'convolab[onnx]' "
            "(or pip install onnx onnxruntime)"
        ) from None
    return onnx, helper, numpy_helper


class _Graph:
    """Collects nodes and initialisers; each helper returns the name of its output."""

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
        out = self._name(base or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


class _Tensor:
    """The running tensor: its name, rank and whether its axes are currently NCHW."""

    def __init__(self, name, rank):
        self.name, self.rank, self.nchw = name, rank, False


def _to_nchw(g, t):
    if t.rank == 4 and not t.nchw:
        t.name = g.op("Transpose", [t.name], "to_nchw", perm=[0, 3, 1, 2])
        t.nchw = True


def _to_nhwc(g, t):
    if t.nchw:
        t.name = g.op("Transpose", [t.name], "to_nhwc", perm=[0, 2, 3, 1])
        t.nchw = False


#: activations that are one ONNX op of opset 13: name -> (op, attributes)
_ACTIVATION_OPS = {
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


def _activation(g, t, name, base, owner=None):
    """Apply activation ``name`` to ``t``; ``owner`` names the layer in the error for one ONNX lacks."""
    if name == "linear":
        return
    if name == "softmax":
        t.name = g.op("Softmax", [t.name], base, axis=1 if t.nchw else -1)
    elif name in _ACTIVATION_OPS:
        op, attrs = _ACTIVATION_OPS[name]
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
            f"(exported: linear, softmax, gelu, swish, silu, mish, {', '.join(_ACTIVATION_OPS)})"
        )


def _window_attrs(layer, kernel, dilation=(1, 1)):
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


def _relu(g, t, layer, base):
    if layer.threshold == 0 and layer.negative_slope == 0:
        t.name = g.op("Relu", [t.name], base)
    elif layer.threshold == 0:
        t.name = g.op("LeakyRelu", [t.name], base, alpha=float(layer.negative_slope))
    else:
        thr = g.const(base + "_threshold", layer.threshold)
        keep = g.op("GreaterOrEqual", [t.name, thr], base + "_keep")
        shifted = g.op("Sub", [t.name, thr], base + "_shift")
        below = g.op("Mul", [shifted, g.const(base + "_slope", layer.negative_slope)], base + "_below")
        t.name = g.op("Where", [keep, t.name, below], base)
    if layer.max_value is not None:
        t.name = g.op("Min", [t.name, g.const(base + "_max", layer.max_value)], base + "_cap")


def _global_pool(g, t, layer, base):
    """Mean/max over H and W: ONNX's GlobalAveragePool/GlobalMaxPool on an NCHW tensor, or
    ReduceMean/ReduceMax over axes 1 and 2 on an NHWC one (no transpose needed)."""
    average = type(layer).__name__ == "GlobalAveragePooling2D"
    if t.nchw:
        t.name = g.op("GlobalAveragePool" if average else "GlobalMaxPool", [t.name], base)  # (N, C, 1, 1)
        if not layer.keepdims:
            t.name = g.op("Flatten", [t.name], base + "_flatten", axis=1)
            t.rank, t.nchw = 2, False
    else:
        # opset 13: ReduceMean/ReduceMax take the axes as an attribute
        t.name = g.op(
            "ReduceMean" if average else "ReduceMax", [t.name], base, axes=[1, 2], keepdims=int(layer.keepdims)
        )
        if not layer.keepdims:
            t.rank = 2


def _conv(g, t, layer, kernel, bias, groups, base, window=True):
    """An ONNX Conv of the NCHW tensor with a Keras ``(kh, kw, C // groups, F)`` kernel."""
    _to_nchw(g, t)
    inputs = [t.name, g.const(base + "_W", kernel.transpose(3, 2, 0, 1))]  # -> (F, C // groups, kh, kw)
    if bias is not None:
        inputs.append(g.const(base + "_B", bias))
    attrs = _window_attrs(layer, layer.kernel_size, layer.dilation_rate) if window else {"kernel_shape": [1, 1]}
    t.name = g.op("Conv", inputs, base + "_conv", group=int(groups), **attrs)


def _batch_norm_scale_shift(layer):
    p = layer.params
    return batchnorm_scale_shift(p["moving_mean"], p["moving_variance"], p.get("gamma"), p.get("beta"), layer.epsilon)


def _batch_norm(g, t, layer, base):
    """An ONNX BatchNormalization (channels on axis 1: NCHW images, (N, C) vectors), or for other
    ranks the same per-channel map as a Mul and an Add on the last axis."""
    p = layer.params
    c = p["moving_mean"].shape[0]
    if t.rank in (2, 4):
        _to_nchw(g, t)
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
    _to_nhwc(g, t)
    scale, shift = _batch_norm_scale_shift(layer)
    t.name = g.op("Mul", [t.name, g.const(base + "_scale", scale)], base + "_scale")
    t.name = g.op("Add", [t.name, g.const(base + "_shift", shift)], base + "_shift")


def _spatial_axes(t):
    return [2, 3] if t.nchw else [1, 2]


def _crop(g, t, base, top, bottom, left, right):
    """Slice off borders along H and W; a negative end counts from the end, so sizes need not be known."""
    big = np.iinfo(np.int64).max
    starts = g.const(base + "_starts", [top, left], dtype=np.int64)
    ends = g.const(base + "_ends", [-bottom if bottom else big, -right if right else big], dtype=np.int64)
    axes = g.const(base + "_axes", _spatial_axes(t), dtype=np.int64)
    t.name = g.op("Slice", [t.name, starts, ends, axes], base)


def _resize(g, t, base, scale_h, scale_w, interpolation):
    """ONNX Resize by whole-image scales: 'nearest' repeats pixels (asymmetric, floor), 'bilinear'
    is TensorFlow's half-pixel linear resize."""
    scales = [1.0, 1.0, scale_h, scale_w] if t.nchw else [1.0, scale_h, scale_w, 1.0]
    attrs = (
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        if interpolation == "nearest"
        else {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    )
    t.name = g.op("Resize", [t.name, "", g.const(base + "_scales", scales, dtype=np.float32)], base, **attrs)


def _random_crop(g, t, layer, base):
    """RandomCrop at inference: the centred window of the target aspect ratio, resized bilinearly."""
    from ..layers.augmentation.crop import center_crop_box

    _, h, w, _ = layer.input_shape
    if h is None or w is None:
        raise ValueError(f"export_model: {layer.describe()} needs a known input height and width")
    top, left, ch, cw = center_crop_box(h, w, layer.height, layer.width)
    _crop(g, t, base + "_crop", top, h - top - ch, left, w - left - cw)
    if (ch, cw) != (layer.height, layer.width):
        _resize_to(g, t, base, layer.height, layer.width, mode="linear", coordinate_transformation_mode="half_pixel")


def _resize_to(g, t, base, height, width, **attrs):
    """ONNX Resize to exact sizes (float scales such as 5/6 can floor to one pixel less): the
    batch and channel sizes are read from the tensor at run time."""
    shape = g.op("Shape", [t.name], base + "_shape")
    one = g.const(base + "_one", [1], dtype=np.int64)
    batch = g.op("Slice", [shape, g.const(base + "_b0", [0], dtype=np.int64), one], base + "_batch")
    c_axis = 1 if t.nchw else 3
    chan = g.op(
        "Slice",
        [
            shape,
            g.const(base + "_c0", [c_axis], dtype=np.int64),
            g.const(base + "_c1", [c_axis + 1], dtype=np.int64),
        ],
        base + "_channels",
    )
    hw = g.const(base + "_hw", [height, width], dtype=np.int64)
    parts = [batch, chan, hw] if t.nchw else [batch, hw, chan]
    sizes = g.op("Concat", parts, base + "_sizes", axis=0)
    t.name = g.op("Resize", [t.name, "", "", sizes], base, **attrs)


def _resizing(g, t, layer, base):
    """Keras's Resizing: the optional centred aspect-ratio crop (or padding), then a resize to exact sizes."""
    from ..layers.augmentation.crop import center_crop_box
    from ..nn.resizing import aspect_pad

    if layer.crop_to_aspect_ratio or layer.pad_to_aspect_ratio:
        _, h, w, _ = layer.input_shape
        if h is None or w is None:
            which = "crop_to_aspect_ratio" if layer.crop_to_aspect_ratio else "pad_to_aspect_ratio"
            raise ValueError(
                f"export_model: {layer.describe()} with {which}=True needs a known input "
                f"height and width; got input shape {layer.input_shape}"
            )
    if layer.crop_to_aspect_ratio:
        top, left, ch, cw = center_crop_box(h, w, layer.height, layer.width)
        _crop(g, t, base + "_crop", top, h - top - ch, left, w - left - cw)
    elif layer.pad_to_aspect_ratio and aspect_pad(h, w, layer.height, layer.width) != (0, 0):
        ph, pw = aspect_pad(h, w, layer.height, layer.width)
        pads = [0, 0, ph, pw, 0, 0, ph, pw] if t.nchw else [0, ph, pw, 0, 0, ph, pw, 0]
        inputs = [t.name, g.const(base + "_pads", pads, dtype=np.int64), g.const(base + "_fill", layer.fill_value)]
        t.name = g.op("Pad", inputs, base + "_pad", mode="constant")
    if layer.interpolation == "nearest":  # input index floor((i + 0.5) * in / out), as nn.resizing
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn", "nearest_mode": "floor"}
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    _resize_to(g, t, base, layer.height, layer.width, **attrs)


def _sequence_window(g, t, base, op, weights, **attrs):
    """A 1-D ONNX op (Conv, MaxPool, AveragePool) on an ``(N, L, C)`` sequence, through ``(N, C, L)``."""
    x = g.op("Transpose", [t.name], base + "_to_ncl", perm=[0, 2, 1])
    y = g.op(op, [x] + weights, base + "_" + op.lower(), **attrs)
    t.name = g.op("Transpose", [y], base + "_to_nlc", perm=[0, 2, 1])


def _sequence_pads(layer, kernel, dilation=1):
    """The 1-D window attributes of a Conv1D or 1-D pooling layer: explicit pads, or SAME_UPPER
    when a 'same' sequence's length is only known at run time."""
    length = layer.input_shape[1]
    if layer.padding == "same" and length is None:
        return {"auto_pad": "SAME_UPPER"}
    ((before, after),) = resolve_padding((length,), (kernel,), tuple(layer.strides), layer.padding, (dilation,))
    return {"pads": [before, after]}


def _conv1d(g, t, layer, base):
    p = layer.params
    k, d = layer.kernel_size[0], layer.dilation_rate[0]
    weights = [g.const(base + "_W", p["kernel"].transpose(2, 1, 0))]  # (k, C // groups, F) -> (F, C // groups, k)
    if "bias" in p:
        weights.append(g.const(base + "_B", p["bias"]))
    attrs = {"kernel_shape": [k], "strides": list(layer.strides), "group": int(layer.groups)}
    if d != 1:
        attrs["dilations"] = [d]
    _sequence_window(g, t, base, "Conv", weights, **attrs, **_sequence_pads(layer, k, d))
    _activation(g, t, layer.activation, base, layer.describe())


def _pool1d(g, t, layer, base, kind):
    k = layer.pool_size[0]
    attrs = {"kernel_shape": [k], "strides": list(layer.strides), **_sequence_pads(layer, k)}
    if kind == "AveragePooling1D":
        _sequence_window(g, t, base, "AveragePool", [], count_include_pad=0, **attrs)
    else:
        _sequence_window(g, t, base, "MaxPool", [], **attrs)


def _conv_transpose(g, t, layer, base):
    """ONNX ConvTranspose: the pads of the convolution behind it (on the output), and the
    output_padding that makes ONNX's size ``s (H - 1) + op + k' - pads`` Keras's."""
    _, h, w, _ = layer.input_shape
    if h is None or w is None:
        raise ValueError(
            f"export_model: {layer.describe()} needs a known input height and width (its padding "
            f"depends on them); got input shape {layer.input_shape}"
        )
    out = conv_transpose_output_sizes(
        (h, w), layer.kernel_size, layer.strides, layer.padding, layer.output_padding, layer.dilation_rate
    )
    pads = resolve_padding(out, layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate)
    extra = [
        o - (s * (n - 1) + (k - 1) * d + 1 - lo - hi)
        for o, n, s, k, d, (lo, hi) in zip(out, (h, w), layer.strides, layer.kernel_size, layer.dilation_rate, pads)
    ]
    _to_nchw(g, t)
    p = layer.params
    inputs = [t.name, g.const(base + "_W", p["kernel"].transpose(3, 2, 0, 1))]  # (kh, kw, F, C) -> (C, F, kh, kw)
    if "bias" in p:
        inputs.append(g.const(base + "_B", p["bias"]))
    attrs = {
        "kernel_shape": list(layer.kernel_size),
        "strides": list(layer.strides),
        "pads": [pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
    }
    if tuple(layer.dilation_rate) != (1, 1):
        attrs["dilations"] = list(layer.dilation_rate)
    if any(extra):
        attrs["output_padding"] = extra
    t.name = g.op("ConvTranspose", inputs, base + "_conv_transpose", **attrs)
    _activation(g, t, layer.activation, base, layer.describe())


def _prelu(g, t, layer, base):
    """ONNX PRelu with the ``(H, W, C)``-shaped alpha (1 on shared axes), broadcast over NHWC."""
    _to_nhwc(g, t)
    t.name = g.op("PRelu", [t.name, g.const(base + "_alpha", layer.params["alpha"])], base)


def _emit(g, t, layer, folded=None):
    """Emit ``layer``; ``folded`` is a following BatchNormalization to fold into it
    (:func:`convolab.models.folding.folds` said it may)."""
    from ..layers.augmentation import AugmentationLayer
    from ..models.folding import folded_kernel_and_bias

    kind = type(layer).__name__
    base = layer.name
    if folded is not None:
        kernel, bias = folded_kernel_and_bias(layer, folded)
    elif kind in ("Conv2D", "Dense", "DepthwiseConv2D"):
        kernel, bias = layer.params["kernel"], layer.params.get("bias")
    if kind == "RandomCrop":
        _random_crop(g, t, layer, base)
    elif isinstance(layer, AugmentationLayer):
        return  # the identity at inference: nothing to compute
    elif kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        pads = [0, 0, top, left, 0, 0, bottom, right] if t.nchw else [0, top, left, 0, 0, bottom, right, 0]
        t.name = g.op("Pad", [t.name, g.const(base + "_pads", pads, dtype=np.int64)], base, mode="constant")
    elif kind == "Cropping2D":
        (top, bottom), (left, right) = layer.cropping
        _crop(g, t, base, top, bottom, left, right)
    elif kind == "UpSampling2D":
        _resize(g, t, base, float(layer.size[0]), float(layer.size[1]), layer.interpolation)
    elif kind == "Conv2D":
        _conv(g, t, layer, kernel, bias, layer.groups, base)
        _activation(g, t, layer.activation, base, layer.describe())
    elif kind in ("DepthwiseConv2D", "SeparableConv2D"):
        p = layer.params
        kh, kw, c, dm = (kernel if kind == "DepthwiseConv2D" else p["depthwise_kernel"]).shape
        depthwise = (kernel if kind == "DepthwiseConv2D" else p["depthwise_kernel"]).reshape(kh, kw, 1, c * dm)
        if kind == "DepthwiseConv2D":
            _conv(g, t, layer, depthwise, bias, c, base)
        else:
            _conv(g, t, layer, depthwise, None, c, base + "_depthwise")
            _conv(g, t, layer, p["pointwise_kernel"], p.get("bias"), 1, base + "_pointwise", window=False)
        _activation(g, t, layer.activation, base, layer.describe())
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        _to_nchw(g, t)
        attrs = _window_attrs(layer, layer.pool_size)
        if kind == "AveragePooling2D":
            t.name = g.op("AveragePool", [t.name], base, count_include_pad=0, **attrs)
        else:
            t.name = g.op("MaxPool", [t.name], base, **attrs)
    elif kind == "Flatten":
        _to_nhwc(g, t)
        t.name = g.op("Flatten", [t.name], base, axis=1)
        t.rank = 2
    elif kind == "Dense":
        _to_nhwc(g, t)
        t.name = g.op("MatMul", [t.name, g.const(base + "_W", kernel)], base + "_matmul")
        if bias is not None:
            t.name = g.op("Add", [t.name, g.const(base + "_B", bias)], base + "_bias")
        _activation(g, t, layer.activation, base, layer.describe())
    elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        _global_pool(g, t, layer, base)
    elif kind == "Reshape":
        _to_nhwc(g, t)  # convolab reshapes in NHWC (C) order
        # 0 copies the batch size from the input; -1 is inferred, as in the layer
        shape = g.const(base + "_shape", [0] + list(layer.target_shape), dtype=np.int64)
        t.name = g.op("Reshape", [t.name, shape], base)
        t.rank = 1 + len(layer.target_shape)
    elif kind == "Rescaling":
        t.name = g.op("Mul", [t.name, g.const(base + "_scale", layer.scale)], base + "_scale")
        if layer.offset != 0:
            t.name = g.op("Add", [t.name, g.const(base + "_offset", layer.offset)], base + "_offset")
    elif kind == "Dropout":
        t.name = g.op("Identity", [t.name], base)
    elif kind in ("Activation", "Softmax"):
        _activation(g, t, layer.activation, base, layer.describe())
    elif kind == "ReLU":
        _relu(g, t, layer, base)
    elif kind == "LeakyReLU":
        t.name = g.op("LeakyRelu", [t.name], base, alpha=float(layer.negative_slope))
    elif kind == "ELU":
        t.name = g.op("Elu", [t.name], base, alpha=float(layer.alpha))
    elif kind == "PReLU":
        _prelu(g, t, layer, base)
    elif kind == "Conv1D":
        _conv1d(g, t, layer, base)
    elif kind in ("MaxPooling1D", "AveragePooling1D"):
        _pool1d(g, t, layer, base, kind)
    elif kind in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        op = "ReduceMean" if kind == "GlobalAveragePooling1D" else "ReduceMax"
        t.name = g.op(op, [t.name], base, axes=[1], keepdims=int(layer.keepdims))
        if not layer.keepdims:
            t.rank = 2
    elif kind == "Conv2DTranspose":
        _conv_transpose(g, t, layer, base)
    elif kind == "Resizing":
        _resizing(g, t, layer, base)
    elif kind == "BatchNormalization":
        _batch_norm(g, t, layer, base)
    else:
        raise ValueError(f"export_model: {layer.describe()} has no ONNX translation")


def to_onnx(model):
    """The ONNX ``ModelProto`` computing ``model.predict`` (NHWC in, Keras's output out)."""
    onnx, helper, numpy_helper = _import_onnx()
    from ..models import folding
    from ..models.sequential import Sequential
    from ._common import check_saveable as _check_saveable

    if not isinstance(model, Sequential):
        return _graph_to_onnx(model, onnx, helper, numpy_helper)
    _check_saveable(model, "export_model")
    dtype = np.dtype(model.layers[0].dtype)
    elem = {np.dtype("float32"): onnx.TensorProto.FLOAT, np.dtype("float64"): onnx.TensorProto.DOUBLE}.get(dtype)
    if elem is None:
        raise ValueError(f"export_model: dtype {dtype} is not supported; float32 or float64 only")
    g = _Graph(helper, numpy_helper, dtype)
    in_shape = model.input_shape
    t = _Tensor("input", len(in_shape))
    layers = model.layers
    folds = set(folding.stack_plan(layers))  # the pairs predict folds, no other
    i = 0
    while i < len(layers):
        if i in folds:
            _emit(g, t, layers[i], folded=layers[i + 1])
            i += 2
        else:
            _emit(g, t, layers[i])
            i += 1
    _to_nhwc(g, t)
    g.nodes.append(helper.make_node("Identity", [t.name], ["output"], name="output"))

    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info("input", elem, _dims(in_shape))],
        [helper.make_tensor_value_info("output", elem, _dims(model.output_shape))],
        initializer=g.initializers,
    )
    return _finish(graph, onnx, helper)


def _dims(shape):
    return ["batch" if i == 0 else (d if d is not None else f"d{i}") for i, d in enumerate(shape)]


def _elem_type(onnx, dtype):
    elem = {np.dtype("float32"): onnx.TensorProto.FLOAT, np.dtype("float64"): onnx.TensorProto.DOUBLE}.get(
        np.dtype(dtype)
    )
    if elem is None:
        raise ValueError(f"export_model: dtype {dtype} is not supported; float32 or float64 only")
    return elem


def _graph_to_onnx(model, onnx, helper, numpy_helper):
    """A functional model's graph (see :mod:`convolab.saving.onnx_graph`)."""
    from .onnx_graph import emit_graph, io_names

    if getattr(model, "graph", lambda: None)() is None:
        raise ValueError(
            f"export_model: {model.describe()} is a subclassed model ({type(model).__name__}); its "
            "forward pass is Python code, which ONNX export cannot translate"
        )
    _, inputs, outputs, _, _ = model.graph()
    dtype = np.dtype(model.dtype)
    elem = _elem_type(onnx, dtype)
    g = _Graph(helper, numpy_helper, dtype)
    in_names, out_names = io_names("input", len(inputs)), io_names("output", len(outputs))
    results = emit_graph(g, model, [_Tensor(name, len(t.shape)) for name, t in zip(in_names, inputs)], _emit, _to_nhwc)
    for name, t in zip(out_names, results):
        _to_nhwc(g, t)
        g.nodes.append(helper.make_node("Identity", [t.name], [name], name=name))
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info(n, elem, _dims(t.shape)) for n, t in zip(in_names, inputs)],
        [helper.make_tensor_value_info(n, elem, _dims(t.shape)) for n, t in zip(out_names, outputs)],
        initializer=g.initializers,
    )
    return _finish(graph, onnx, helper)


def _finish(graph, onnx, helper):
    from .._version import __version__

    proto = helper.make_model(
        graph, producer_name="convolab", producer_version=__version__, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    return proto


def export_model(model, filepath, format="onnx"):
    """Export ``model`` for inference; the file is written atomically.

    Args:
        model: a functional model (see :mod:`convolab.saving.onnx_graph`) or a built Sequential model of
            Conv2D, DepthwiseConv2D, SeparableConv2D, Dense, Flatten, MaxPooling2D,
            AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape, Rescaling,
            BatchNormalization, ZeroPadding2D, Cropping2D, UpSampling2D, Dropout (identity), Activation,
            ReLU, LeakyReLU, ELU, PReLU, Softmax, Conv1D, MaxPooling1D, AveragePooling1D,
            GlobalAveragePooling1D, GlobalMaxPooling1D, Conv2DTranspose and Resizing layers, and augmentation layers, left out (the identity at inference) but
            for RandomCrop, exported as its inference-time centre crop and resize.
        filepath: output path, e.g. ``'model.onnx'``.
        format: ``'onnx'`` (the only format; needs ``pip install onnx``).

    Returns:
        the path written.
    """
    if format != "onnx":
        raise ValueError(f"export_model: unknown format {format!r}; supported: 'onnx'")
    proto = to_onnx(model)
    path = os.fspath(filepath)
    atomic_write_bytes(path, proto.SerializeToString())
    return path
