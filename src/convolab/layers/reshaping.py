"""Reshape and Rescaling: weight-free maps with Keras's names and arguments."""

from __future__ import annotations

import numbers

from ..nn.reshape import rescale_backward, rescale_forward, reshape_backward, reshape_forward, resolve_target_shape
from ..utils.config_schema import MAX_INT, fail, integer, list_of, number
from ..utils.layer_schema import layer_schema
from .base import Layer, shape_str


def _target_shape(v, where):
    """Reshape's ``target_shape`` in a file: 1 to 6 sizes, each positive or ``-1``, at most one ``-1``."""
    dims = list_of(integer(-1, MAX_INT), 1, 6)(v, where)
    if 0 in dims or dims.count(-1) > 1:
        fail(where, "positive sizes and at most one -1", v)
    return dims


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (C order, so NHWC images flatten as in Keras).

    Args:
        target_shape: tuple of sizes without the batch axis; one of them may be ``-1``,
            inferred from the others.

    Shape:
        ``(N, *in_shape)`` -> ``(N, *target_shape)`` with the ``-1`` filled in; the total size
        per sample must not change. No weights.
    """

    config_schema = layer_schema({"target_shape": _target_shape})

    def to_onnx(self, g, t, folded=None):
        """ONNX Reshape in NHWC order, keeping the batch size (shape ``[0, *target_shape]``)."""
        import numpy as np

        from ..saving.onnx_ops import to_nhwc

        to_nhwc(g, t)  # convolab reshapes in NHWC (C) order
        # 0 copies the batch size from the input; -1 is inferred, as in the layer
        shape = g.const(self.name + "_shape", [0] + list(self.target_shape), dtype=np.int64)
        t.name = g.op("Reshape", [t.name, shape], self.name)
        t.rank = 1 + len(self.target_shape)

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        try:
            dims = tuple(target_shape)
        except TypeError:
            raise TypeError(
                f"{me}: `target_shape` must be a tuple of ints without the batch axis, "
                f"e.g. (7, 7, 1); got {target_shape!r}"
            ) from None
        if not dims or any(
            isinstance(d, bool) or not isinstance(d, numbers.Integral) or not (d >= 1 or d == -1) for d in dims
        ):
            raise ValueError(
                f"{me}: `target_shape` must hold positive ints and at most one -1; got target_shape={target_shape!r}"
            )
        if dims.count(-1) > 1:
            raise ValueError(f"{me}: at most one -1 is allowed in `target_shape`; got target_shape={dims}")
        self.target_shape = tuple(int(d) for d in dims)
        self._cache = None

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        try:
            out = resolve_target_shape(tuple(input_shape[1:]), self.target_shape)
        except ValueError as e:
            raise ValueError(
                f"{self.describe()} cannot reshape input shape {shape_str(input_shape)} to "
                f"target_shape {self.target_shape}: {e}"
            ) from None
        return (input_shape[0],) + out

    def check_call_shape(self, shape) -> None:
        super().check_call_shape(shape)
        # Built for unknown sizes, the data's own sizes must still fit the target.
        self.compute_output_shape((None,) + tuple(shape[1:]))

    def call(self, x, training=False):
        y, self._cache = reshape_forward(x, self.target_shape)
        return y

    def backward(self, dy):
        return reshape_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = tuple(self.target_shape)
        return cfg


class Rescaling(Layer):
    """``x * scale + offset``: e.g. ``Rescaling(1 / 255)`` maps uint8 pixels to ``[0, 1]``,
    ``Rescaling(1 / 127.5, offset=-1)`` to ``[-1, 1]``.

    Args:
        scale: a number (per-channel arrays are not supported).
        offset: a number, default 0.0.

    Shape: output = input. No weights. Called directly it takes an array of any rank.
    """

    any_rank = True

    config_schema = layer_schema({"scale": number(), "offset": number()})

    def to_onnx(self, g, t, folded=None):
        """A Mul, and an Add when the offset is not 0."""
        t.name = g.op("Mul", [t.name, g.const(self.name + "_scale", self.scale)], self.name + "_scale")
        if self.offset != 0:
            t.name = g.op("Add", [t.name, g.const(self.name + "_offset", self.offset)], self.name + "_offset")

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for key, val in (("scale", scale), ("offset", offset)):
            if isinstance(val, bool) or not isinstance(val, numbers.Real):
                raise TypeError(
                    f"{self.describe()}: `{key}` must be a number (convolab has no per-channel {key}); got {val!r}"
                )
            if not float("-inf") < float(val) < float("inf"):
                raise ValueError(f"{self.describe()}: `{key}` must be finite; got {val!r}")
        self.scale = float(scale)
        self.offset = float(offset)
        self._cache = None

    def call(self, x, training=False):
        y, self._cache = rescale_forward(x, self.scale, self.offset)
        return y

    def backward(self, dy):
        return rescale_backward(dy, self._cache)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(scale=self.scale, offset=self.offset)
        return cfg
