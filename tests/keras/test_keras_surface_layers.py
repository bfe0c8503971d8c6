"""Issue 19's layers: LeakyReLU, ELU, PReLU, Lambda, Resizing, Conv1D, 1-D pooling, Conv2DTranspose,
the functional merge helpers and Dot: exact answers on hand-made inputs, float64 central-difference
gradient checks of every op, loop references written here, Keras's documented shapes, saving, and a
Keras-style program run through the public API."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convolab import keras
from convolab.nn.conv1d import (
    conv1d_backward,
    conv1d_forward,
    global_pool1d_backward,
    global_pool1d_forward,
    pool1d_backward,
    pool1d_forward,
)
from convolab.nn.conv_transpose import conv2d_transpose_backward, conv2d_transpose_forward
from convolab.nn.prelu import prelu_backward, prelu_forward
from convolab.nn.resizing import resizing_backward, resizing_forward
from support.gradcheck import numerical_gradient, rel_error

L = keras.layers
rng = np.random.default_rng(19)


def _check_grads(forward, backward, inputs, tol=1e-6):
    """``forward(*inputs) -> (y, cache)``, ``backward(dy, cache) -> grads``: each against central differences."""
    y, cache = forward(*inputs)
    dy = rng.standard_normal(y.shape)
    dy_copy = dy.copy()
    grads = backward(dy, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert np.array_equal(dy, dy_copy), "backward wrote into its upstream gradient"
    for i, g in enumerate(grads):
        if g is None:
            continue
        args = list(inputs)

        def f(v, i=i):
            args[i] = v
            return forward(*args)[0]

        num = numerical_gradient(f, inputs[i].copy(), dy)
        assert rel_error(g, num) < tol, f"gradient {i}"


# -- loop references, written independently of convolab -----------------------------------------
def _tf_same_before(size_out_conv_in, kernel, stride, size_conv_out):
    """TensorFlow's 'same' padding on top for a convolution from ``size_out_conv_in`` to ``size_conv_out``."""
    total = max((size_conv_out - 1) * stride + kernel - size_out_conv_in, 0)
    return total // 2


def conv_transpose_ref(x, w, b, strides, padding, out_hw, dilation=(1, 1)):
    """Scatter each input pixel through the kernel onto the output (a plain loop)."""
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    ho, wo = out_hw
    ekh, ekw = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    top = 0 if padding == "valid" else _tf_same_before(ho, ekh, strides[0], h)
    left = 0 if padding == "valid" else _tf_same_before(wo, ekw, strides[1], wd)
    y = np.zeros((n, ho, wo, f))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for bb in range(kw):
                    r, s = i * strides[0] - top + a * dilation[0], j * strides[1] - left + bb * dilation[1]
                    if 0 <= r < ho and 0 <= s < wo:
                        y[:, r, s, :] += x[:, i, j, :] @ w[a, bb].T
    return y + (0 if b is None else b)


def conv1d_ref(x, w, b, stride, padding, dilation=1):
    n, length, c = x.shape
    k, _, f = w.shape
    span = (k - 1) * dilation + 1
    if padding == "causal":
        x = np.concatenate([np.zeros((n, span - 1, c)), x], axis=1)
    elif padding == "same":
        out = -(-length // stride)
        total = max((out - 1) * stride + span - length, 0)
        x = np.concatenate([np.zeros((n, total // 2, c)), x, np.zeros((n, total - total // 2, c))], axis=1)
    lo = (x.shape[1] - span) // stride + 1
    y = np.zeros((n, lo, f))
    for t in range(lo):
        for a in range(k):
            y[:, t] += x[:, t * stride + a * dilation] @ w[a]
    return y + (0 if b is None else b)


# -- exact answers ---------------------------------------------------------------------------------
def test_leaky_relu_and_elu_layers_give_kerass_documented_values():
    # keras.io's LeakyReLU example (negative_slope=0.5) and the default slope 0.3
    x = np.array([-10, -5, 0.0, 5, 10])
    assert np.allclose(L.LeakyReLU(negative_slope=0.5)(x), [-5.0, -2.5, 0.0, 5.0, 10.0])
    assert np.allclose(L.LeakyReLU()(np.array([-3.0, -1.0, 0.0, 2.0])), [-0.9, -0.3, 0.0, 2.0])
    assert np.allclose(L.ELU()(np.array([-1.0, 0.0, 2.0])), [math.exp(-1) - 1, 0.0, 2.0])
    assert np.allclose(L.ELU(alpha=2.0)(np.array([-1.0])), [2 * (math.exp(-1) - 1)])


def test_prelu_alpha_shape_follows_shared_axes_and_starts_at_zero():
    layer = L.PReLU(shared_axes=[1, 2])
    y = layer(-np.ones((2, 4, 5, 3)))
    assert layer.params["alpha"].shape == (1, 1, 3)
    assert np.all(y == 0)  # alpha_initializer='zeros': a plain ReLU at first
    layer.set_weights([np.array([[[0.1, 0.2, 0.3]]])])
    assert np.allclose(layer(-np.ones((1, 4, 5, 3)))[0, 0, 0], [-0.1, -0.2, -0.3])
    assert L.PReLU()(np.ones((2, 6))).shape == (2, 6)


def test_conv1d_causal_on_a_hand_made_sequence():
    layer = L.Conv1D(1, 2, padding="causal", kernel_initializer="ones", use_bias=False)
    y = layer(np.array([[1.0, 2.0, 3.0, 4.0]])[..., None])
    assert np.array_equal(y[0, :, 0], [1.0, 3.0, 5.0, 7.0])  # x[t-1] + x[t], a zero before the start
    assert layer.params["kernel"].shape == (2, 1, 1)  # Keras's (k, C, F)


@pytest.mark.parametrize(
    "stride,padding,dilation,k",
    [
        (1, "valid", 1, 3),
        (2, "valid", 1, 3),
        (2, "same", 1, 2),
        (1, "causal", 2, 3),
        (1, "same", 2, 3),
        (3, "causal", 1, 4),
    ],
)
def test_conv1d_against_the_loop_reference(stride, padding, dilation, k):
    x = rng.standard_normal((2, 11, 3))
    w = rng.standard_normal((k, 3, 4))
    b = rng.standard_normal(4)
    y, _ = conv1d_forward(x, w, b, stride, padding, dilation)
    assert np.allclose(y, conv1d_ref(x, w, b, stride, padding, dilation))
    layer = L.Conv1D(4, k, strides=stride, padding=padding, dilation_rate=dilation, dtype="float64")
    assert layer.compute_output_shape((None, 11, 3)) == (None,) + y.shape[1:]


def test_pooling1d_exact_values():
    x = np.array([[[1.0], [5.0], [2.0], [4.0], [3.0]]])
    assert np.array_equal(L.MaxPooling1D()(x)[0, :, 0], [5.0, 4.0])
    assert np.array_equal(L.AveragePooling1D(pool_size=2, strides=1)(x)[0, :, 0], [3.0, 3.5, 3.0, 3.5])
    assert np.array_equal(L.MaxPooling1D(padding="same")(x)[0, :, 0], [5.0, 4.0, 3.0])
    assert np.array_equal(L.GlobalAveragePooling1D()(x), [[3.0]])
    assert np.array_equal(L.GlobalMaxPooling1D(keepdims=True)(x), [[[5.0]]])


def test_conv2d_transpose_all_ones_spreads_each_pixel_over_its_window():
    # kernel 2 = stride 2, 'valid': every input pixel becomes a 2x2 block of its own value
    layer = L.Conv2DTranspose(1, 2, strides=2, kernel_initializer="ones", use_bias=False)
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y = layer(x)[0, :, :, 0]
    assert np.array_equal(y, np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))))
    assert layer.params["kernel"].shape == (2, 2, 1, 1)
    # kernel 3, stride 1, 'valid': a 1x1 image becomes 3x3; with overlaps the sums add up
    y = L.Conv2DTranspose(1, 3, kernel_initializer="ones", use_bias=False)(np.ones((1, 2, 2, 1)))[0, :, :, 0]
    assert np.array_equal(y, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


@pytest.mark.parametrize(
    "h,k,s,padding,op,expected",
    [
        (5, 3, 2, "same", None, 10),
        (5, 3, 2, "valid", None, 11),
        (4, 2, 3, "valid", None, 12),
        (5, 3, 2, "same", 1, 10),
        (5, 3, 2, "valid", 1, 12),
        (7, 4, 2, "same", 1, 13),
        (3, 5, 1, "same", None, 3),
    ],
)
def test_conv2d_transpose_output_size_as_keras_computes_it(h, k, s, padding, op, expected):
    # Keras's deconv_output_length, by hand: e.g. 'same' with output_padding: (h-1)*s + k - 2*(k//2) + op
    layer = L.Conv2DTranspose(2, k, strides=s, padding=padding, output_padding=op)
    assert layer.compute_output_shape((None, h, h, 3)) == (None, expected, expected, 2)
    assert layer(rng.standard_normal((1, h, h, 3)).astype("float32")).shape == (1, expected, expected, 2)


@pytest.mark.parametrize(
    "strides,padding,op,dilation",
    [
        ((1, 1), "valid", None, (1, 1)),
        ((2, 2), "same", None, (1, 1)),
        ((2, 3), "valid", (1, 2), (1, 1)),
        ((2, 2), "same", (1, 1), (1, 1)),
        ((1, 1), "same", None, (2, 2)),
    ],
)
def test_conv2d_transpose_against_the_loop_reference(strides, padding, op, dilation):
    x = rng.standard_normal((2, 4, 3, 3))
    w = rng.standard_normal((3, 2, 5, 3))
    b = rng.standard_normal(5)
    y, _ = conv2d_transpose_forward(x, w, b, strides, padding, op, dilation)
    assert np.allclose(y, conv_transpose_ref(x, w, b, strides, padding, y.shape[1:3], dilation))


def test_conv2d_transpose_is_the_adjoint_of_conv2d():
    # <conv2d(y), x> == <y, conv2d_transpose(x)> for the same kernel: the defining property
    from convolab.nn.conv import conv2d_forward

    w = rng.standard_normal((3, 3, 4, 2))
    y = rng.standard_normal((2, 8, 8, 4))
    cy, _ = conv2d_forward(y, w, None, (2, 2), "same")
    x = rng.standard_normal(cy.shape)
    tx, _ = conv2d_transpose_forward(x, w, None, (2, 2), "same")
    assert math.isclose(np.sum(cy * x), np.sum(y * tx), rel_tol=1e-10)


def test_resizing_nearest_and_bilinear_exact_values():
    x = np.arange(4.0).reshape(1, 2, 2, 1)
    y = L.Resizing(4, 4, interpolation="nearest")(x)[0, :, :, 0]
    assert np.array_equal(y, np.kron([[0.0, 1.0], [2.0, 3.0]], np.ones((2, 2))))
    # half-pixel centres (tf.image.resize): output column j reads input at (j + 0.5) / 2 - 0.5
    y = L.Resizing(1, 4)(np.array([[[[0.0], [4.0]]]]))[0, 0, :, 0]
    assert np.allclose(y, [0.0, 1.0, 3.0, 4.0])
    # crop_to_aspect_ratio: a 2x4 image to 1x1 keeps the centre 2x2 square
    x = np.arange(8.0).reshape(1, 2, 4, 1)
    y = L.Resizing(1, 1, interpolation="nearest", crop_to_aspect_ratio=True)(x)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] in (x[0, :, 1:3, 0]).ravel()
    assert L.Resizing(1, 1, crop_to_aspect_ratio=True)(x)[0, 0, 0, 0] == pytest.approx(np.mean(x[0, :, 1:3, 0]))


def test_merge_helpers_and_dot():
    a, b = np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])
    assert np.array_equal(L.average([a, b]), [[2.0, 3.5]])
    assert np.array_equal(L.subtract([a, b]), [[-2.0, 3.0]])
    assert np.array_equal(L.maximum([a, b]), [[3.0, 5.0]])
    assert np.array_equal(L.minimum([a, b]), [[1.0, 2.0]])
    assert np.array_equal(L.dot([a, b], axes=1), [[13.0]])
    assert np.allclose(L.dot([a, b], axes=1, normalize=True), [[13.0 / (math.sqrt(26) * math.sqrt(13))]])
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    assert np.allclose(L.Dot(axes=(2, 2))([x, y]), np.einsum("nik,njk->nij", x, y))
    assert np.allclose(L.Dot(axes=1)([x, rng.standard_normal((2, 3, 6))]).shape, (2, 4, 6))


def test_lambda_runs_its_function_with_arguments_and_output_shape():
    layer = L.Lambda(lambda t, p: keras.ops.power(t, p), arguments={"p": 3})
    assert np.array_equal(layer(np.array([[2.0]])), [[8.0]])
    inp = keras.Input((4,))
    out = L.Lambda(lambda t: keras.ops.concatenate([t, t], axis=-1))(inp)
    assert out.shape == (None, 8)  # traced on zeros
    out = L.Lambda(lambda t: t[:, :2], output_shape=(2,))(inp)
    assert out.shape == (None, 2)


# -- gradients ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "strides,padding,op,dilation",
    [
        ((1, 1), "valid", None, (1, 1)),
        ((2, 2), "same", None, (1, 1)),
        ((2, 3), "valid", (1, 1), (1, 1)),
        ((1, 1), "same", None, (2, 1)),
    ],
)
def test_conv2d_transpose_gradients(strides, padding, op, dilation):
    x = rng.standard_normal((2, 3, 3, 2))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    _check_grads(
        lambda x, w, b: conv2d_transpose_forward(x, w, b, strides, padding, op, dilation),
        conv2d_transpose_backward,
        [x, w, b],
    )


@pytest.mark.parametrize(
    "stride,padding,dilation,groups", [(1, "valid", 1, 1), (2, "same", 1, 1), (1, "causal", 2, 1), (1, "same", 1, 2)]
)
def test_conv1d_gradients(stride, padding, dilation, groups):
    x = rng.standard_normal((2, 7, 4))
    w = rng.standard_normal((3, 4 // groups, 4))
    b = rng.standard_normal(4)
    _check_grads(lambda x, w, b: conv1d_forward(x, w, b, stride, padding, dilation, groups), conv1d_backward, [x, w, b])


@pytest.mark.parametrize(
    "mode,padding,pool,stride", [("max", "valid", 2, 2), ("avg", "same", 3, 2), ("max", "same", 3, 1)]
)
def test_pool1d_gradients(mode, padding, pool, stride):
    x = rng.standard_normal((2, 7, 3))
    _check_grads(lambda x: pool1d_forward(x, pool, stride, padding, mode), pool1d_backward, [x])


@pytest.mark.parametrize("mode,keepdims", [("avg", False), ("max", True)])
def test_global_pool1d_gradients(mode, keepdims):
    x = rng.standard_normal((2, 5, 3))
    _check_grads(lambda x: global_pool1d_forward(x, keepdims, mode), global_pool1d_backward, [x])


def test_prelu_gradients_with_and_without_shared_axes():
    x = rng.standard_normal((3, 4, 2))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    for alpha in (rng.standard_normal((4, 2)), rng.standard_normal((1, 2))):
        _check_grads(prelu_forward, prelu_backward, [x, alpha])


@pytest.mark.parametrize(
    "interpolation,crop", [("bilinear", False), ("nearest", False), ("bilinear", True), ("nearest", True)]
)
def test_resizing_gradients(interpolation, crop):
    x = rng.standard_normal((2, 3, 5, 2))
    _check_grads(lambda x: resizing_forward(x, (4, 3), interpolation, crop), resizing_backward, [x])


def test_activation_layers_gradients_through_the_tape():
    for layer in (L.LeakyReLU(0.1), L.ELU(0.5), L.PReLU()):
        x = rng.standard_normal((3, 4))
        x[np.abs(x) < 1e-3] = 0.5
        layer(x)  # build
        dy = rng.standard_normal((3, 4))
        layer(x)
        dx = layer.backward(dy)
        assert rel_error(dx, numerical_gradient(lambda v: layer(v), x.copy(), dy)) < 1e-6


# -- errors ------------------------------------------------------------------------------------------
def test_errors_name_the_layer_and_what_came():
    # Keras's formula gives 12 for (7, kernel 4, stride 2, 'same', output_padding 0), which a
    # convolution maps back to 6, not 7 (TensorFlow refuses it as well)
    with pytest.raises(ValueError, match="Conv2DTranspose .* convolves back to 6, not 7"):
        L.Conv2DTranspose(2, 4, strides=2, padding="same", output_padding=0)(np.ones((1, 7, 7, 1)))
    with pytest.raises(ValueError, match="Conv1D .* expects 3-D input .*got shape"):
        L.Conv1D(2, 3)(np.ones((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="output_padding.*smaller than its stride"):
        L.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="padding.*'causal'"):
        L.Conv1D(2, 3, padding="full")
    with pytest.raises(ValueError, match="interpolation"):
        L.Resizing(2, 2, interpolation="bicubic")
    with pytest.raises(ValueError, match="kernel_size .* larger than its input's 2 steps"):
        L.Conv1D(2, 3)(np.ones((1, 2, 1)))
    with pytest.raises(TypeError, match="Lambda .* callable"):
        L.Lambda(3)


# -- saving ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".convolab", ".keras"])
def test_new_layers_save_and_load(tmp_path, suffix):
    inp = keras.Input((6, 6, 2))
    h = L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1, activation="gelu")(inp)
    h = L.PReLU(shared_axes=[1, 2])(h)
    h = L.Resizing(5, 4, interpolation="nearest")(h)
    h = L.ELU(alpha=0.5)(h)
    h = L.Reshape((20, 3))(h)
    h = L.Conv1D(4, 3, padding="causal", dilation_rate=2)(h)
    h = L.LeakyReLU(0.1)(h)
    h = L.AveragePooling1D(2)(h)
    h = L.MaxPooling1D(2, padding="same")(h)
    out = L.GlobalMaxPooling1D()(h)
    model = keras.Model(inp, L.Dense(2)(L.concatenate([out, L.GlobalAveragePooling1D()(h)])))
    model.layers[2].set_weights([rng.standard_normal((1, 1, 3))])  # a non-zero PReLU alpha
    path = tmp_path / f"m{suffix}"
    model.save(path)
    again = keras.models.load_model(path)
    x = rng.standard_normal((3, 6, 6, 2)).astype("float32")
    assert np.array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]


def test_lambda_is_refused_by_saving(tmp_path):
    model = keras.Sequential([keras.Input((3,)), L.Lambda(lambda t: t * 2.0), L.Dense(1)])
    with pytest.raises((ValueError, TypeError), match="Lambda"):
        model.save(tmp_path / "m.convolab")


# -- a Keras program ---------------------------------------------------------------------------------
def test_keras_program_conv1d_and_conv2d_transpose_train():
    """A small denoising autoencoder and a 1-D classifier, as the keras.io examples write them."""
    keras.utils.set_random_seed(0)
    x = rng.random((64, 8, 8, 1)).astype("float32")
    inputs = keras.Input(shape=(8, 8, 1))
    h = L.Conv2D(8, 3, activation="relu", padding="same")(inputs)
    h = L.MaxPooling2D((2, 2), padding="same")(h)
    h = L.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(h)
    h = L.LeakyReLU(negative_slope=0.2)(h)
    outputs = L.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(h)
    autoencoder = keras.Model(inputs, outputs)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    hist = autoencoder.fit(x, x, epochs=4, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]

    seq = rng.standard_normal((96, 20, 1)).astype("float32")
    labels = (seq[:, :10, 0].mean(axis=1) > seq[:, 10:, 0].mean(axis=1)).astype("int64")
    model = keras.Sequential(
        [
            keras.Input(shape=(20, 1)),
            L.Conv1D(filters=8, kernel_size=3, padding="same", activation="swish"),
            L.MaxPooling1D(pool_size=2),
            L.Conv1D(filters=8, kernel_size=3, padding="causal"),
            L.ELU(),
            L.GlobalAveragePooling1D(),
            L.Lambda(lambda t: t * 2.0),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(seq, labels, epochs=6, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
