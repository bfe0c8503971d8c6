"""``Conv2D.convolution_op`` overridden in a subclass, as keras.io's weight-standardization
example writes it ("Customizing the convolution operation of a Conv2D layer", issue 19).

The override runs on the tape path (the fused kernels and hand-written backward are not used
for it); a Conv2D that does not override it is unchanged. The forward is checked against a
plain-loop convolution with the kernel standardized by hand here.
"""

import numpy as np
import pytest

from convolab.models.plan import compile_plan
from convolab import keras
from convolab.keras import layers, ops
from support.conv_refs import grouped_conv_ref
from support.gradcheck import numerical_gradient, rel_error


class StandardizedConv2DWithOverride(layers.Conv2D):
    """keras.io's class, as written there."""

    def convolution_op(self, inputs, kernel):
        mean, var = ops.moments(kernel, axes=[0, 1, 2], keepdims=True)
        return ops.conv(
            inputs,
            (kernel - mean) / ops.sqrt(var + 1e-10),
            padding="valid",
            strides=list(self.strides),
            dilation_rate=list(self.dilation_rate),
        )


def _standardized_ref(x, kernel, bias):
    k = kernel.astype(np.float64)
    mean = k.mean(axis=(0, 1, 2), keepdims=True)
    var = k.var(axis=(0, 1, 2), keepdims=True)
    return grouped_conv_ref(x.astype(np.float64), (k - mean) / np.sqrt(var + 1e-10), bias, (1, 1), "valid")


def test_the_override_is_what_the_layer_computes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    layer = StandardizedConv2DWithOverride(4, kernel_size=(3, 3), activation="relu")
    y = np.asarray(layer(x))
    layer.bias.assign(rng.normal(size=4).astype("float32"))
    y = np.asarray(layer(x))
    want = np.maximum(_standardized_ref(x, layer.kernel.numpy(), layer.bias.numpy()), 0)
    assert y.shape == (2, 4, 3, 4)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    # not the plain convolution: the override changed the answer
    plain = np.maximum(grouped_conv_ref(x, layer.kernel.numpy(), layer.bias.numpy(), (1, 1), "valid"), 0)
    assert not np.allclose(y, plain, atol=1e-3)


def test_the_override_runs_on_the_tape_path_and_the_plain_layer_keeps_its_fast_path():
    assert not StandardizedConv2DWithOverride.has_backward()
    assert layers.Conv2D.has_backward()
    model = keras.Sequential([keras.Input((6, 6, 2)), StandardizedConv2DWithOverride(3, 3), layers.Flatten()])
    assert not compile_plan(model).stack
    plain = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(3, 3), layers.Flatten()])
    assert compile_plan(plain).stack


def test_gradients_through_the_override_match_central_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 5, 2))
    layer = StandardizedConv2DWithOverride(3, kernel_size=(2, 2), activation="tanh", dtype="float64")
    layer(x)
    kernel = layer.kernel.numpy()
    bias = rng.normal(size=3)
    layer.bias.assign(bias)
    dy = rng.normal(size=(2, 4, 4, 3))
    xt = ops.convert_to_tensor(x)
    with keras.GradientTape() as tape:
        tape.watch(xt)
        loss = ops.sum(layer(xt) * dy)
    dx, dk, db = tape.gradient(loss, [xt, layer.kernel, layer.bias])

    def f_x(v):
        return np.tanh(_standardized_ref(v, kernel, bias))

    def f_k(k):
        return np.tanh(_standardized_ref(x, k, bias))

    def f_b(b):
        return np.tanh(_standardized_ref(x, kernel, b))

    assert rel_error(np.asarray(dx), numerical_gradient(f_x, x.copy(), dy)) < 1e-6
    assert rel_error(np.asarray(dk), numerical_gradient(f_k, kernel.copy(), dy)) < 1e-6
    assert rel_error(np.asarray(db), numerical_gradient(f_b, bias.copy(), dy)) < 1e-6


def test_keras_io_model_with_the_override_trains():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
    y = (x[:, :4].sum(axis=(1, 2, 3)) > x[:, 4:].sum(axis=(1, 2, 3))).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            StandardizedConv2DWithOverride(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            StandardizedConv2DWithOverride(8, kernel_size=(3, 3), activation="relu"),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    calls = []
    first = model.layers[0]
    original = type(first).convolution_op
    first.convolution_op = lambda inputs, kernel: calls.append(1) or original(first, inputs, kernel)
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert calls, "fit did not go through convolution_op"
    assert losses[-1] < losses[0] * 0.9
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


@pytest.mark.parametrize("groups", [1, 2])
def test_default_convolution_op_is_the_layer_convolution(groups):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 6, 4)).astype("float32")
    layer = layers.Conv2D(4, 3, strides=2, padding="same", groups=groups)
    layer(x)
    got = np.asarray(layer.convolution_op(x, layer.kernel))
    want = grouped_conv_ref(x, layer.kernel.numpy(), None, (2, 2), "same", groups=groups)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
