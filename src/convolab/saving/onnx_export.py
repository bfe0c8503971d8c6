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
``crop_to_aspect_ratio``. LeakyReLU, ELU and PReLU are ONNX's LeakyRelu, Elu and PRelu. Embedding is a Cast of its indices
to int64 (floats truncated, as the layer casts them) and a Gather of the table's rows; a model
whose keras.Input is int32 or int64 takes its input in that type, the rest in the model's float type.

Activations (``activation=`` and the Activation layer) are ONNX ops where opset 13 has them
(Relu, Sigmoid, Tanh, Softmax, Elu, Selu, Softplus, Softsign, HardSigmoid with Keras 3's
``alpha = 1/6, beta = 0.5``, LeakyRelu with slope 0.2, Exp) and compositions otherwise: gelu
``0.5 x (1 + erf(x / sqrt 2))`` (Gelu is opset 20), swish/silu ``x sigmoid(x)``, mish
``x tanh(softplus(x))`` (Mish is opset 18). Anything else is refused with a ValueError naming the
layer, before a file is written.

BatchNormalization exports its inference form (moving statistics). Where ``predict`` folds it
into the layer before it (a Conv2D, DepthwiseConv2D or Dense without activation whose output
only the BatchNormalization reads: :func:`convolab.models.folding.plan`, the one rule) the
export folds it the same way, with the same formula (``kernel * scale``, ``bias * scale +
shift``), so it costs nothing at inference; elsewhere it is an ONNX BatchNormalization node
(NCHW images, ``(N, C)`` vectors) or, for other ranks, a Mul and an Add over the last axis.

One graph: a Sequential is exported as the functional graph over its layers that it builds
once it knows its input shape, through the same walk as a functional model
(:mod:`convolab.saving.onnx_graph`). Each layer emits itself: its class's ``to_onnx(g, t,
folded=None)`` method, written with the builder in :mod:`convolab.saving.onnx_ops`; a layer
whose class has none is refused with a ValueError naming it.
"""

from __future__ import annotations

import os

import numpy as np

from .atomic import atomic_write_bytes
from .onnx_ops import Graph, Tensor, to_nhwc

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


def _emitter(layer):
    """The layer's ``to_onnx`` method, or None. A convolab class may inherit it (Softmax has
    Activation's); a user's class must define its own, since a subclass of a built-in layer may
    compute something else than the emitter it would inherit."""
    cls = type(layer)
    if getattr(cls, "to_onnx", None) is None:
        return None
    if cls.__module__.startswith("convolab.") or "to_onnx" in cls.__dict__:
        return layer.to_onnx
    return None


def _emit(g, t, layer, folded=None):
    """Emit ``layer`` on the running tensor ``t``: the layer's own ``to_onnx``. ``folded`` is
    ``(kernel, bias)`` with a following BatchNormalization folded in
    (:func:`convolab.models.folding.plan` said it may)."""
    emit = _emitter(layer)
    if emit is None:
        raise ValueError(f"export_model: {layer.describe()} has no ONNX translation")
    emit(g, t, folded)


def to_onnx(model):
    """The ONNX ``ModelProto`` computing ``model.predict`` (NHWC in, Keras's output out)."""
    onnx, helper, numpy_helper = _import_onnx()
    from ..models.model import Model
    from ..models.sequential import Sequential
    from ._common import check_saveable as _check_saveable

    if not isinstance(model, Sequential):
        return _graph_to_onnx(model, onnx, helper, numpy_helper, model.dtype)
    _check_saveable(model, "export_model")  # a built stack of layers a file may hold, as before
    dtype = model.layers[0].dtype  # what predict computes in (a keras.Input may say otherwise)
    # the functional graph over the same layers, as the Sequential builds it (public tensors only)
    graph = Model(inputs=model.inputs, outputs=model.outputs, name=model.name)
    return _graph_to_onnx(graph, onnx, helper, numpy_helper, dtype)


def _dims(shape):
    return ["batch" if i == 0 else (d if d is not None else f"d{i}") for i, d in enumerate(shape)]


def _elem_type(onnx, dtype, indices=False):
    """ONNX's element type for ``dtype``: float32 or float64, or (``indices``: a model input, which
    an Embedding reads as indices) int32 or int64 too."""
    types = {np.dtype("float32"): onnx.TensorProto.FLOAT, np.dtype("float64"): onnx.TensorProto.DOUBLE}
    if indices:
        types.update({np.dtype("int32"): onnx.TensorProto.INT32, np.dtype("int64"): onnx.TensorProto.INT64})
    elem = types.get(np.dtype(dtype))
    if elem is None:
        allowed = "float32, float64, int32 or int64" if indices else "float32 or float64"
        raise ValueError(f"export_model: dtype {dtype} is not supported; {allowed} only")
    return elem


def _input_elem(onnx, t, elem):
    """An input's element type: the model's float type, or the input's own integer type (indices)."""
    return _elem_type(onnx, t.dtype, indices=True) if np.dtype(t.dtype).kind in "iu" else elem


def _graph_to_onnx(model, onnx, helper, numpy_helper, dtype):
    """A functional model's graph (see :mod:`convolab.saving.onnx_graph`), computing in ``dtype``."""
    from .onnx_graph import emit_graph, io_names

    if getattr(model, "graph", lambda: None)() is None:
        raise ValueError(
            f"export_model: {model.describe()} is a subclassed model ({type(model).__name__}); its "
            "forward pass is Python code, which ONNX export cannot translate"
        )
    _, inputs, outputs, _, _ = model.graph()
    dtype = np.dtype(dtype)
    if dtype.kind != "f":  # integer inputs (indices into an Embedding): the layers compute in the outputs' dtype
        dtype = np.dtype(outputs[0].dtype)
    elem = _elem_type(onnx, dtype)
    g = Graph(helper, numpy_helper, dtype)
    in_names, out_names = io_names("input", len(inputs)), io_names("output", len(outputs))
    results = emit_graph(g, model, [Tensor(name, len(t.shape)) for name, t in zip(in_names, inputs)], _emit)
    for name, t in zip(out_names, results):
        to_nhwc(g, t)
        g.nodes.append(helper.make_node("Identity", [t.name], [name], name=name))
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [
            helper.make_tensor_value_info(n, _input_elem(onnx, t, elem), _dims(t.shape))
            for n, t in zip(in_names, inputs)
        ],
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
            GlobalAveragePooling1D, GlobalMaxPooling1D, Conv2DTranspose, Resizing and Embedding layers, and augmentation layers, left out (the identity at inference) but
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
