"""Shared plumbing for layers with an ``activation=`` argument (Conv2D, Dense)."""

from __future__ import annotations


from .. import activations, constraints, initializers, regularizers
from ..autodiff.tape import is_recording
from ..backend import get_array_module
from ..nn.activations import NEEDS_INPUT, activation_backward, activation_forward
from ..nn.custom_activation import custom_backward, custom_forward
from .base import Layer


class ActivatedLayer(Layer):
    """A layer computing ``activation(x * kernel + bias)`` (Conv2D, Dense).

    Subclasses implement ``linear_forward(x, training)`` and ``linear_backward(dz)``
    (which sets ``self.grads`` and returns ``dx``). ``call_logits`` / ``backward_logits``
    skip the activation, so a model can fuse a final softmax with cross-entropy.

    ``activation`` is a built-in's name (``'relu'``; ``keras.ops.relu`` and the like map to it) or
    the user's callable, run by :mod:`convolab.nn.custom_activation` (a local tape's
    vector-Jacobian product is its backward).
    """

    #: the argument names of the kernel's regularizer and constraint (``depthwise_...`` for DepthwiseConv2D)
    kernel_arg = "kernel"
    #: the pre-activation output, kept only for activations whose backward needs it (gelu, swish...)
    _z = None

    def __init__(
        self,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        me = self.describe()
        k = self.kernel_arg
        self.kernel_regularizer = regularizers.get(kernel_regularizer, me, f"{k}_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, me, "bias_regularizer")
        self.activity_regularizer = regularizers.get(activity_regularizer, me, "activity_regularizer")
        self.kernel_constraint = constraints.get(kernel_constraint, me, f"{k}_constraint")
        self.bias_constraint = constraints.get(bias_constraint, me, "bias_constraint")
        self.activation = activations.get(activation, owner=me)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, me)
        self.bias_initializer = initializers.get(bias_initializer, me)
        # names go into get_config; a callable initializer cannot be saved
        self._initializer_names = {
            key: value
            for key, value in (("kernel_initializer", kernel_initializer), ("bias_initializer", bias_initializer))
            if isinstance(value, str)
        }
        self._y = None
        self._cache = None
        self._act_cache = None

    def add_kernel_and_bias(self, kernel_shape, units):
        self._add_param(
            "kernel", kernel_shape, self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint
        )
        if self.use_bias:
            self._add_param("bias", (units,), self.bias_initializer, self.bias_regularizer, self.bias_constraint)

    # -- activity penalty: ``activity_regularizer(y) / batch``, on the output of the last call --
    def activity_penalty(self) -> float:
        """The activity penalty of the last ``call``'s output (0 without an activity regularizer)."""
        if self.activity_regularizer is None or self._y is None:
            return 0.0
        return self.activity_regularizer(self._y) / max(len(self._y), 1)

    def activity_gradient(self):
        """``d activity_penalty / d y`` for the last ``call``'s output."""
        y = self._y
        return self.activity_regularizer.gradient(y) / y.dtype.type(max(len(y), 1))

    @property
    def kernel(self):
        """The kernel's :class:`Variable` (Keras's ``layer.kernel``)."""
        return self.variable("kernel")

    @property
    def bias(self):
        """The bias's :class:`Variable`, or ``None`` with ``use_bias=False``."""
        return self.variable("bias") if "bias" in self.params else None

    def store_grads(self, dw, db):
        self.grads["kernel"] = dw
        if self.use_bias:
            self.grads["bias"] = db

    def call(self, x, training=False):
        if callable(self.activation):
            z = self.linear_forward(x, training)
            record = bool(training) or is_recording()  # a backward may follow
            y, self._act_cache = custom_forward(self.activation, z, record, self.describe())
        elif self.activation == "relu":
            y = self.linear_forward_relu(x, training)
        else:
            z = self.linear_forward(x, training)
            self._z = z if self.activation in NEEDS_INPUT else None  # gelu, swish, mish: dz needs z
            y = activation_forward(self.activation, z)
        self._y = y
        return y

    def linear_forward_relu(self, x, training=False):
        """``max(linear_forward(x), 0)``; Conv2D rectifies inside its kernels' store."""
        z = self.linear_forward(x, training)
        return get_array_module(z).maximum(z, 0, out=z)  # a fresh output owned by this layer: in place

    def backward(self, dy):
        if callable(self.activation):
            return self.linear_backward(custom_backward(dy, self._act_cache))
        return self.linear_backward(activation_backward(self.activation, dy, self._y, self._z))

    def call_logits(self, x, training=False):
        return self.linear_forward(x, training)

    def backward_logits(self, dz):
        return self.linear_backward(dz)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            activation=activations.serialize(self.activation, self.describe()),
            use_bias=self.use_bias,
            **self._initializer_names,
        )
        cfg.update(self.rules_config())
        return cfg

    def rules_config(self) -> dict:
        """The regularizers and constraints that are set, under Keras's argument names."""
        k = self.kernel_arg
        rules = {
            f"{k}_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            f"{k}_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
        return {key: value for key, value in rules.items() if value is not None}
