"""Lambda: wrap any function written with ``keras.ops`` as a layer (Keras's ``keras.layers.Lambda``)."""

from __future__ import annotations

import numpy as np

from .base import Layer


class Lambda(Layer):
    """A layer whose ``call`` is ``function(inputs, **arguments)``.

    The function is written with ``keras.ops`` (or NumPy, outside training): inside a training
    step its ops are recorded on the tape, so it needs no backward. A Lambda layer has no
    weights and cannot be saved to a file (it holds Python code, which convolab never loads).

    Args:
        function: ``f(inputs) -> outputs`` (a tensor or a list of tensors in, as the layer is called).
        output_shape: ``None`` (found by running ``function`` once on zeros, as Keras traces it),
            a tuple without the batch axis, or ``f(input_shape) -> output_shape``.
        mask: only ``None``.
        arguments: optional dict of keyword arguments for ``function``.

    Shape:
        whatever ``function`` returns.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        me = self.describe()
        if not callable(function):
            raise TypeError(f"{me}: `function` must be callable; got {function!r}")
        if mask is not None:
            raise ValueError(f"{me}: convolab supports only mask=None; got mask={mask!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"{me}: `arguments` must be a dict of keyword arguments; got {arguments!r}")
        if output_shape is not None and not callable(output_shape):
            try:
                output_shape = tuple(None if d is None else int(d) for d in output_shape)
            except (TypeError, ValueError):
                raise TypeError(
                    f"{me}: `output_shape` must be None, a tuple of ints or a function; got {output_shape!r}"
                ) from None
        self.function = function
        self.output_shape_arg = output_shape
        self.arguments = dict(arguments or {})

    def build(self, input_shape):
        self.input_shape = input_shape
        self.built = True
        if isinstance(input_shape, tuple) and None not in input_shape[1:]:
            self.output_shape = self._traced_shape(input_shape)

    def _traced_shape(self, input_shape):
        """The output shape: the rule given, else the function run once on zeros (a batch of 1)."""
        try:
            return self.compute_output_shape(input_shape)
        except NotImplementedError:
            pass
        y = self.function(np.zeros((1,) + tuple(input_shape[1:]), dtype=self.dtype), **self.arguments)
        return (input_shape[0],) + tuple(np.shape(y))[1:]

    def compute_output_shape(self, input_shape):
        spec = self.output_shape_arg
        if spec is None:
            raise NotImplementedError  # the graph runs the function once on zeros instead
        if callable(spec):
            return tuple(spec(input_shape))
        batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
        return (batch,) + spec

    def call(self, inputs, training=False):
        return self.function(inputs, **self.arguments)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(function=getattr(self.function, "__name__", repr(self.function)), arguments=self.arguments)
        return cfg
