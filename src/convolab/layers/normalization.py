"""BatchNormalization: Keras's batch normalization over the channel (last) axis."""

from __future__ import annotations

import numbers

from .. import constraints, initializers, regularizers
from ..nn.batchnorm import (
    BatchNormCache,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference_backward,
    batchnorm_inference_forward,
)
from ..utils.config_schema import boolean, integer, number
from ..utils.layer_schema import constraint, initializer, layer_schema, regularizer
from .base import Layer, shape_str

_INITIALIZERS = ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")
_RULES = ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint")


class BatchNormalization(Layer):
    """Normalise each channel: ``gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    With ``training=True`` (``fit``, ``train_on_batch``) ``mean`` and ``var`` are the batch's
    own (the biased variance), and the moving statistics are updated in place as Keras does:
    ``moving = moving * momentum + batch * (1 - momentum)``. Otherwise (``predict``,
    ``evaluate``) the moving statistics are used. A layer with ``trainable=False`` always runs
    in inference mode, even in training: Keras's rule for fine-tuning a frozen base model.

    Args:
        axis: the channel axis; only the last one (``-1``, Keras's default for NHWC) is supported.
        momentum: of the moving averages, default 0.99.
        epsilon: added to the variance, default 1e-3.
        center: learn ``beta`` (default True); scale: learn ``gamma`` (default True).
        beta_initializer ``'zeros'``, gamma_initializer ``'ones'``,
        moving_mean_initializer ``'zeros'``, moving_variance_initializer ``'ones'``.
        beta_regularizer, gamma_regularizer: a penalty on ``beta``/``gamma`` added to the training
            loss (``keras.regularizers.L2(1e-4)``, ``'l2'``...), as a Dense kernel's is.
        beta_constraint, gamma_constraint: a projection applied to ``beta``/``gamma`` after each
            optimizer step (``keras.constraints.NonNeg()``...). Neither touches the moving statistics,
            which the optimizer never updates.
        synchronized: accepted; statistics always cover the whole batch (convolab does not
            split a batch across threads for a model with this layer, see ``models/runner.py``).

    Shape:
        output = input ``(N, ..., C)``. Weights (Keras's order): gamma ``(C,)`` if ``scale``,
        beta ``(C,)`` if ``center`` (trainable); moving_mean, moving_variance ``(C,)``
        (non-trainable: never seen by the optimizer).
    """

    config_schema = layer_schema(
        {
            "axis": integer(-1, 6),
            "momentum": number(0, 1),
            "epsilon": number(0, lo_open=True),
            "center": boolean,
            "scale": boolean,
            "synchronized": boolean,
        },
        {
            **{
                key: initializer
                for key in (
                    "beta_initializer",
                    "gamma_initializer",
                    "moving_mean_initializer",
                    "moving_variance_initializer",
                )
            },
            "beta_regularizer": regularizer,
            "gamma_regularizer": regularizer,
            "beta_constraint": constraint,
            "gamma_constraint": constraint,
        },
    )

    def to_onnx(self, g, t, folded=None):
        """The inference form (moving statistics); see :func:`convolab.saving.onnx_ops.batch_norm`.
        Where predict folds it into the layer before, the export folds it too and never asks it."""
        from ..saving.onnx_ops import batch_norm

        batch_norm(g, t, self, self.name)

    #: computes statistics over the batch: a shard of a batch would normalise differently
    batch_statistics = True

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        me = self.describe()
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{me}: `axis` must be an int (convolab normalises the last axis only); got {axis!r}")
        for key, value, ok, want in (
            ("momentum", momentum, lambda v: 0 <= v <= 1, "a float in [0, 1]"),
            ("epsilon", epsilon, lambda v: v > 0, "a positive float"),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
                raise ValueError(f"{me}: `{key}` must be {want}; got {value!r}")
        self.beta_regularizer = regularizers.get(beta_regularizer, me, "beta_regularizer")
        self.gamma_regularizer = regularizers.get(gamma_regularizer, me, "gamma_regularizer")
        self.beta_constraint = constraints.get(beta_constraint, me, "beta_constraint")
        self.gamma_constraint = constraints.get(gamma_constraint, me, "gamma_constraint")
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.synchronized = bool(synchronized)
        given = dict(
            zip(
                _INITIALIZERS,
                (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer),
            )
        )
        self._initializers = {key: initializers.get(value, me) for key, value in given.items()}
        # names go into get_config; a callable initializer cannot be saved
        self._initializer_names = {key: value for key, value in given.items() if isinstance(value, str)}
        self._cache = None

    def build(self, input_shape):
        super().build(input_shape)
        ndim = len(input_shape)
        if self.axis not in (-1, ndim - 1):
            raise ValueError(
                f"{self.describe()}: convolab normalises the last (channel) axis only, axis=-1 or "
                f"axis={ndim - 1} for input shape {shape_str(input_shape)}; got axis={self.axis}"
            )
        c = input_shape[-1]
        if c is None:
            raise ValueError(
                f"{self.describe()}: the channel axis of the input must be known; got shape {shape_str(input_shape)}"
            )
        if self.scale:
            self._add_param(
                "gamma", (c,), self._initializers["gamma_initializer"], self.gamma_regularizer, self.gamma_constraint
            )
        if self.center:
            self._add_param(
                "beta", (c,), self._initializers["beta_initializer"], self.beta_regularizer, self.beta_constraint
            )
        self._add_param("moving_mean", (c,), self._initializers["moving_mean_initializer"])
        self._add_param("moving_variance", (c,), self._initializers["moving_variance_initializer"])
        self._non_trainable_keys.update(("moving_mean", "moving_variance"))

    def uses_batch_statistics(self, training) -> bool:
        """Keras's rule: batch statistics only in training, and never for a frozen layer."""
        return bool(training) and self.trainable

    def call(self, x, training=False):
        p = self.params
        gamma, beta = p.get("gamma"), p.get("beta")
        if self.uses_batch_statistics(training):
            y, self._cache = batchnorm_forward(x, gamma, beta, self.epsilon)
            self._update_moving(self._cache.mean, self._cache.var)
            return y
        y, self._cache = batchnorm_inference_forward(
            x, p["moving_mean"], p["moving_variance"], gamma, beta, self.epsilon
        )
        return y

    def _update_moving(self, mean, var):
        """In place, so every replica sharing ``params`` (tape copies) updates the real weights once."""
        for key, batch in (("moving_mean", mean), ("moving_variance", var)):
            moving = self.params[key]
            moving[...] = moving * self.momentum + batch * (1.0 - self.momentum)

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"{self.describe()}: backward before a forward call")
        if isinstance(self._cache, BatchNormCache):
            dx, dgamma, dbeta = batchnorm_backward(dy, self._cache)
        else:
            dx, dgamma, dbeta = batchnorm_inference_backward(dy, self._cache)
        if self.scale:
            self.grads["gamma"] = dgamma
        if self.center:
            self.grads["beta"] = dbeta
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            axis=self.axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            center=self.center,
            scale=self.scale,
            synchronized=self.synchronized,
            **self._initializer_names,
        )
        # only those set, as Dense writes its own: files without them stay as they were
        rules = {
            key: (regularizers if key.endswith("_regularizer") else constraints).serialize(getattr(self, key))
            for key in _RULES
        }
        cfg.update({key: value for key, value in rules.items() if value is not None})
        return cfg
