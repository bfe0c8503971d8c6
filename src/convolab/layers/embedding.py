"""Embedding: Keras's lookup table turning integer indices (word ids) into dense vectors."""

from __future__ import annotations

import numbers
import warnings

from .. import constraints, initializers, regularizers
from ..nn.embedding import embedding_backward, embedding_forward
from ..utils.config_schema import boolean, fail
from ..utils.layer_schema import dim, initializer, layer_schema, regularizer, constraint
from .base import Layer, shape_str


def _false(v, where):
    """``mask_zero`` in a file: false only (convolab has no masking)."""
    if boolean(v, where) is not False:
        fail(where, "false (convolab has no masking)", v)
    return v


class Embedding(Layer):
    """Row ``x`` of a trainable ``(input_dim, output_dim)`` table for every index ``x``.

    Args:
        input_dim: the vocabulary's size, the largest index + 1.
        output_dim: the length of each vector.
        embeddings_initializer: default ``'uniform'`` (Keras's: ``RandomUniform(-0.05, 0.05)``).
        embeddings_regularizer, embeddings_constraint, activity_regularizer: as Keras's.
        mask_zero: False only: convolab has no masking, so True is refused.
        weights: the initial table ``(input_dim, output_dim)`` (or a list holding it).
        lora_rank: None only (no LoRA in convolab); ``lora_alpha`` means nothing without it.
        input_length: removed in Keras 3, which warns and ignores it; so does convolab.

    Indices: int32/int64 as they are; any other dtype cast to int32 as Keras casts it (floats
    truncated), so a model whose data came in as float32 (a Sequential's) looks up the same rows.
    An index outside ``[0, input_dim)`` raises ValueError naming the layer and the indices' range
    (Keras on the CPU raises too). The indices get no gradient.

    Shape:
        input ``(N, ...)`` of any rank; output ``(N, ..., output_dim)``. Weight: ``embeddings``
        ``(input_dim, output_dim)``.
    """

    config_schema = layer_schema(
        {"input_dim": dim, "output_dim": dim},
        {
            "embeddings_initializer": initializer,
            "embeddings_regularizer": regularizer,
            "activity_regularizer": regularizer,
            "embeddings_constraint": constraint,
            "mask_zero": _false,
        },
    )
    #: indices go in as they are; Layer.__call__ would cast them to float
    autocast = False

    def to_onnx(self, g, t, folded=None):
        """Cast the indices to int64 (truncating floats, as the layer does), Gather rows of the table."""
        from onnx import TensorProto

        from ..saving.onnx_ops import to_nhwc

        to_nhwc(g, t)
        idx = g.op("Cast", [t.name], self.name + "_indices", to=TensorProto.INT64)
        table = g.const(self.name + "_embeddings", self.params["embeddings"])
        t.name = g.op("Gather", [table, idx], self.name, axis=0)
        t.rank += 1

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        lora_rank=None,
        lora_alpha=None,
        activity_regularizer=None,
        quantization_config=None,
        input_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        me = self.describe()
        if input_length is not None:
            warnings.warn(f"{me}: Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{me}: `{arg}` must be a positive int; got {value!r}")
        if mask_zero:
            raise ValueError(
                f"{me}: mask_zero={mask_zero!r} is not supported: convolab has no masking, so the layers "
                "after it would compute on the padding as if it were data; use mask_zero=False (index 0 "
                "then gets a trainable vector like any other)"
            )
        if lora_rank is not None:
            raise ValueError(f"{me}: lora_rank={lora_rank!r} is not supported (convolab has no LoRA); use None")
        if quantization_config is not None:
            raise ValueError(f"{me}: quantization_config is not supported by convolab; use None")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer, me)
        # the name goes into get_config; a callable initializer cannot be saved
        self._initializer_name = embeddings_initializer if isinstance(embeddings_initializer, str) else None
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer, me, "embeddings_regularizer")
        self.activity_regularizer = regularizers.get(activity_regularizer, me, "activity_regularizer")
        self.embeddings_constraint = constraints.get(embeddings_constraint, me, "embeddings_constraint")
        self.mask_zero = False
        self.lora_rank = None
        self._cache = None
        self._y = None
        if weights is not None:  # Keras builds at once and sets them: the table needs no input shape
            self._make_table()
            self.set_weights(weights if isinstance(weights, list) and len(weights) == 1 else [weights])

    def _make_table(self):
        if "embeddings" not in self.params:
            self._add_param(
                "embeddings",
                (self.input_dim, self.output_dim),
                self.embeddings_initializer,
                self.embeddings_regularizer,
                self.embeddings_constraint,
            )

    def check_input_shape(self, shape) -> None:
        """Any rank with a batch axis: ``(N,)`` indices give ``(N, output_dim)`` vectors."""
        if len(shape) < 1:
            raise ValueError(
                f"{self.describe()} expects indices with a batch axis, e.g. (batch, sequence_length); "
                f"got shape {shape_str(shape)}"
            )

    def check_call_shape(self, shape) -> None:
        """Any shape, whatever the layer was built for: the table does not depend on it (Keras's
        Embedding is called on any shape too)."""
        self.check_input_shape(shape)

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return tuple(input_shape) + (self.output_dim,)

    def build(self, input_shape):
        super().build(input_shape)
        self._make_table()

    def call(self, x, training=False):
        y, self._cache = embedding_forward(x, self.params["embeddings"], where=self.describe())
        self._y = y if self.activity_regularizer is not None else None
        return y

    def backward(self, dy):
        """Store the table's gradient; the indices get none (``None``)."""
        if self.weight_is_trainable("embeddings"):
            self.grads["embeddings"] = embedding_backward(dy, self._cache)
        return None

    # -- activity penalty: ``activity_regularizer(y) / batch`` on the last call's output ---------
    def activity_penalty(self) -> float:
        if self.activity_regularizer is None or self._y is None:
            return 0.0
        return self.activity_regularizer(self._y) / max(len(self._y), 1)

    def activity_gradient(self):
        y = self._y
        return self.activity_regularizer.gradient(y) / y.dtype.type(max(len(y), 1))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(input_dim=self.input_dim, output_dim=self.output_dim)
        if self._initializer_name is not None:
            cfg["embeddings_initializer"] = self._initializer_name
        rules = {
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
        }
        cfg.update({k: v for k, v in rules.items() if v is not None})
        cfg["mask_zero"] = False
        return cfg
