"""The Keras layer life cycle: ``__init__`` (arguments) -> ``build`` (weights) -> ``call`` (math).

A layer keeps hyper-parameters and weights and calls pure functions in ``convolab.ops``.
It never updates its own weights: it exposes ``params`` and, after ``backward``,
``grads`` (same keys), and the optimiser does the update.
"""
from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from .. import backend

_name_counters: defaultdict = defaultdict(int)


def reset_name_counters() -> None:
    _name_counters.clear()


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
    return s.replace("2_d", "2d")


def unique_name(prefix: str) -> str:
    """Keras's automatic names: ``conv2d``, ``conv2d_1``, ``conv2d_2``..."""
    n = _name_counters[prefix]
    _name_counters[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


class Layer:
    """Base class of every layer.

    Subclasses set ``input_ndim`` (rank including the batch axis, or ``None`` for any
    rank >= 2), implement ``compute_output_shape`` and ``call``/``backward``, and create
    weights in ``build`` with :meth:`add_weight`.
    """

    input_ndim: int | None = None

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None, batch_input_shape=None, **kwargs):
        cls = type(self).__name__
        if kwargs:
            raise TypeError(f"{cls}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{cls}: `name` must be a string; got {name!r}")
        self.name = name or unique_name(_snake(cls))
        self.trainable = bool(trainable)
        self.dtype = np.dtype(dtype or backend.floatx()).name
        self._input_shape_arg = None
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_shape is not None:
            try:
                self._input_shape_arg = tuple(None if d is None else int(d) for d in input_shape)
            except (TypeError, ValueError):
                raise TypeError(f"{self.describe()}: `input_shape` must be a tuple of ints; got {input_shape!r}") from None
        self.params: dict = {}
        self.grads: dict = {}
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.need_input_grad = True

    # -- description --------------------------------------------------------
    def describe(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def __repr__(self) -> str:
        return f"<{self.describe()}>"

    # -- life cycle ---------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create weights for ``input_shape`` (batch axis included, possibly ``None``)."""
        self.check_input_shape(input_shape)
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def check_input_shape(self, shape) -> None:
        """Raise ``ValueError`` naming this layer if ``shape`` has the wrong rank."""
        if self.input_ndim is not None and len(shape) != self.input_ndim:
            raise ValueError(
                f"{self.describe()} expects {self.input_ndim}-D input {self.expected_layout()}; "
                f"got shape {shape_str(shape)}"
            )
        if self.input_ndim is None and len(shape) < 2:
            raise ValueError(f"{self.describe()} expects input with a batch axis and at least one more; got shape {shape_str(shape)}")

    def expected_layout(self) -> str:
        return "(batch, height, width, channels)" if self.input_ndim == 4 else ""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=False):
        """Run the layer on a batch, building it on first use."""
        x = np.asarray(x)
        if not self.built:
            self.check_input_shape(x.shape)  # report the data's own shape, not the batch-less one
            self.build((None,) + tuple(x.shape[1:]))
        self.check_call_shape(x.shape)
        return self.call(x, training=training)

    def check_call_shape(self, shape) -> None:
        """Raise if a batch of ``shape`` does not fit the built layer (rank or sizes)."""
        self.check_input_shape(shape)
        expected = self.input_shape
        for got, want in zip(shape[1:], expected[1:]):
            if want is not None and got != want:
                raise ValueError(
                    f"{self.describe()} was built for input shape {shape_str(expected)}; "
                    f"got shape {shape_str(shape)}"
                )

    # -- weights ------------------------------------------------------------
    def add_weight(self, key, shape, initializer):
        value = np.asarray(initializer(tuple(shape), self.dtype), dtype=self.dtype)
        self.params[key] = np.ascontiguousarray(value)
        return self.params[key]

    @property
    def weights(self):
        """The weight arrays, Keras's order (kernel, bias). Live arrays: edit in place with care."""
        return list(self.params.values())

    @property
    def trainable_weights(self):
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else self.weights

    def get_weights(self):
        """Copies of the weights as NumPy arrays."""
        return [w.copy() for w in self.params.values()]

    def set_weights(self, weights) -> None:
        """Replace the weights; shapes must match exactly."""
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(
                f"{self.describe()} expects a list of {len(self.params)} weight arrays; got {len(weights)}"
            )
        for (key, cur), new in zip(self.params.items(), weights):
            new = np.asarray(new)
            if new.shape != cur.shape:
                raise ValueError(
                    f"{self.describe()}: weight '{key}' has shape {cur.shape}; got an array of shape {new.shape}"
                )
            cur[...] = new

    def count_params(self) -> int:
        return int(sum(w.size for w in self.params.values()))

    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)
