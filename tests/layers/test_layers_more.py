"""GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape, Rescaling: gradients through the layer
objects, Keras's defaults, errors that name the layer and the shapes, summary, config round trips
and short training runs."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np
import pytest

import convolab
from convolab import backend, keras
from convolab.layers import (
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    GlobalMaxPooling2D,
    Rescaling,
    Reshape,
)
from support.layer_gradients import check_layer_gradients

L = keras.layers
GLOBAL = [GlobalAveragePooling2D, GlobalMaxPooling2D]


def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


# ---------------------------------------------------------------------------
# gradients through the layers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", GLOBAL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(2, 3, 4, 2), (1, 1, 5, 3), (3, 2, 2, 1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_layer_gradients(cls, shape, keepdims):
    rng = _rng(f"{cls.__name__}-{shape}-{keepdims}")
    layer = cls(keepdims=keepdims, dtype="float64")
    layer.build((None,) + shape[1:])
    x = (rng.permutation(math.prod(shape)) * 0.3).reshape(shape)  # distinct: a clear maximum
    check_layer_gradients(layer, x, rng)


@pytest.mark.parametrize(
    "in_shape,target", [((12,), (3, 4)), ((4, 4, 2), (-1,)), ((2, 3, 4), (4, -1, 1)), ((16,), (4, 4, 1))], ids=str
)
def test_reshape_layer_gradients(in_shape, target):
    rng = _rng(f"reshape-{in_shape}-{target}")
    layer = Reshape(target, dtype="float64")
    layer.build((None,) + in_shape)
    check_layer_gradients(layer, rng.standard_normal((3,) + in_shape), rng)


@pytest.mark.parametrize("scale,offset", [(1 / 255, 0.0), (-2.0, 0.5)])
def test_rescaling_layer_gradients(scale, offset):
    rng = _rng(f"rescaling-{scale}")
    layer = Rescaling(scale, offset, dtype="float64")
    layer.build((None, 3, 3, 2))
    check_layer_gradients(layer, rng.standard_normal((2, 3, 3, 2)), rng)


# ---------------------------------------------------------------------------
# Keras's names, defaults and shapes
# ---------------------------------------------------------------------------


def test_keras_names_aliases_and_defaults():
    assert keras.layers.GlobalAvgPool2D is keras.layers.GlobalAveragePooling2D is GlobalAvgPool2D
    assert keras.layers.GlobalMaxPool2D is keras.layers.GlobalMaxPooling2D is GlobalMaxPool2D
    assert keras.layers.Reshape is Reshape and keras.layers.Rescaling is Rescaling
    backend.clear_session()
    gap, gmp = GlobalAveragePooling2D(), GlobalMaxPooling2D()
    assert (gap.name, gmp.name) == ("global_average_pooling2d", "global_max_pooling2d")
    assert gap.keepdims is False and gap.data_format == "channels_last"
    assert Reshape((2, 3)).name == "reshape" and Rescaling(0.5).name == "rescaling"
    assert Rescaling(0.5).offset == 0.0
    assert GlobalAveragePooling2D(data_format="channels_last").data_format == "channels_last"


@pytest.mark.parametrize(
    "layer_fn,in_shape,out_shape",
    [
        (lambda: GlobalAveragePooling2D(), (None, 7, 9, 3), (None, 3)),
        (lambda: GlobalMaxPooling2D(), (None, 7, 9, 3), (None, 3)),
        (lambda: GlobalAveragePooling2D(keepdims=True), (None, 7, 9, 3), (None, 1, 1, 3)),
        (lambda: GlobalMaxPool2D(keepdims=True), (None, None, None, 5), (None, 1, 1, 5)),
        (lambda: Reshape((3, 4)), (None, 12), (None, 3, 4)),
        (lambda: Reshape((-1, 2, 2)), (None, 12), (None, 3, 2, 2)),
        (lambda: Reshape((-1,)), (None, 4, 4, 3), (None, 48)),
        (lambda: Reshape((7, 7, 1)), (None, 49), (None, 7, 7, 1)),
        (lambda: Reshape((-1, 3)), (None, None, 3), (None, None, 3)),
        (lambda: Rescaling(1 / 255), (None, 28, 28, 1), (None, 28, 28, 1)),
    ],
)
def test_compute_output_shape_without_data(layer_fn, in_shape, out_shape):
    layer = layer_fn()
    assert layer.compute_output_shape(in_shape) == out_shape
    assert not layer.built and layer.params == {}


def test_summary_shapes_and_keras_param_counts(capsys):
    backend.clear_session()
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            L.Rescaling(1 / 255),
            L.Conv2D(8, 3, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(16),
            L.Reshape((4, 4, 1)),
            L.Conv2D(2, 3),
            L.GlobalMaxPooling2D(keepdims=True),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.summary()
    out = capsys.readouterr().out
    # Keras: Conv2D 3*3*1*8+8 = 80, Dense 8*16+16 = 144, Conv2D 3*3*1*2+2 = 20, Dense 2*10+10 = 30
    for row in (
        r"rescaling \(Rescaling\)\s+\(None, 28, 28, 1\)\s+0",
        r"global_average_pooling2d \(Gl\S*\s+\(None, 8\)\s+0",
        r"reshape \(Reshape\)\s+\(None, 4, 4, 1\)\s+0",
        r"global_max_pooling2d \(Glob\S*\s+\(None, 1, 1, 2\)\s+0",
    ):
        assert re.search(row, out), row
    assert "Total params: 274" in out
    assert model.count_params() == 80 + 144 + 20 + 30


# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------


def test_global_pooling_layer_values():
    x = np.arange(2 * 2 * 3 * 2, dtype=np.float32).reshape(2, 2, 3, 2)
    np.testing.assert_array_equal(GlobalAveragePooling2D()(x), x.mean(axis=(1, 2)))
    np.testing.assert_array_equal(GlobalMaxPooling2D()(x), x.max(axis=(1, 2)))
    np.testing.assert_array_equal(GlobalMaxPooling2D(keepdims=True)(x), x.max(axis=(1, 2), keepdims=True))
    assert GlobalAveragePooling2D()(x).dtype == np.float32


def test_reshape_and_rescaling_layer_values():
    x = np.arange(12.0).reshape(1, 12)
    np.testing.assert_array_equal(Reshape((3, -1))(x), np.arange(12.0).reshape(1, 3, 4))
    pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    y = Rescaling(1 / 255)(pixels)  # integers are cast to the layer's dtype, as Keras does
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.0, 0.2, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(Rescaling(1 / 127.5, offset=-1)(pixels), [[-1.0, -0.6, 1.0]], rtol=1e-6)


# ---------------------------------------------------------------------------
# errors: the layer's name, what was expected, the whole shape received
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", GLOBAL, ids=lambda c: c.__name__)
def test_global_pooling_refuses_channels_first_and_wrong_rank(cls):
    with pytest.raises(ValueError, match=r"data_format.*channels_first"):
        cls(data_format="channels_first")
    with pytest.raises(TypeError, match="keepdims"):
        cls(keepdims=1)
    layer = cls(name="gp")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{cls.__name__} 'gp' expects 4-D input (batch, height, width, channels); got shape (5, 28, 28)"
        ),
    ):
        layer(np.zeros((5, 28, 28)))
    with pytest.raises(ValueError, match=re.escape("expects 4-D input") + r".*\(None, 10\)"):
        keras.Sequential([L.Dense(10, input_shape=(4,)), cls()])


def test_global_pooling_built_then_other_channels():
    layer = GlobalAveragePooling2D(name="gap")
    layer.build((None, 4, 4, 3))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "GlobalAveragePooling2D 'gap' was built for input shape (None, 4, 4, 3); got shape (2, 4, 4, 5)"
        ),
    ):
        layer(np.zeros((2, 4, 4, 5)))


@pytest.mark.parametrize(
    "target,exc,match",
    [
        ((-1, -1), ValueError, "at most one -1"),
        ((0, 4), ValueError, "positive ints"),
        ((-2, 4), ValueError, "positive ints"),
        ((2.0, 4), ValueError, "positive ints"),
        ((), ValueError, "positive ints"),
        (12, TypeError, "tuple of ints"),
    ],
)
def test_reshape_bad_target_shape(target, exc, match):
    with pytest.raises(exc, match=r"Reshape 'r'.*" + match):
        Reshape(target, name="r")


def test_reshape_size_mismatch_names_layer_and_shapes():
    with pytest.raises(
        ValueError, match=re.escape("Reshape 'r' cannot reshape input shape (None, 12) to target_shape (5, 2)")
    ):
        Reshape((5, 2), name="r").compute_output_shape((None, 12))
    with pytest.raises(
        ValueError,
        match=re.escape("Reshape 'r2' cannot reshape input shape (None, 4, 4, 3) to target_shape (-1, 5)")
        + ".*not a multiple",
    ):
        keras.Sequential([L.Conv2D(3, 1, input_shape=(4, 4, 1)), L.Reshape((-1, 5), name="r2")])
    # built for an unknown size, the data's own size must still fit
    layer = Reshape((-1, 4), name="r3")
    layer.build((None, None))
    assert layer(np.zeros((2, 8))).shape == (2, 2, 4)
    with pytest.raises(ValueError, match=re.escape("Reshape 'r3' cannot reshape input shape (None, 6)")):
        layer(np.zeros((2, 6)))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(scale="1/255"), TypeError, "`scale` must be a number"),
        (dict(scale=np.ones(3)), TypeError, "per-channel"),
        (dict(scale=True), TypeError, "scale"),
        (dict(scale=1.0, offset=None), TypeError, "`offset` must be a number"),
        (dict(scale=float("nan")), ValueError, "finite"),
        (dict(scale=1.0, offset=float("inf")), ValueError, "finite"),
    ],
)
def test_rescaling_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=r"Rescaling 's'.*" + match):
        Rescaling(name="s", **kwargs)


# ---------------------------------------------------------------------------
# get_config / from_config
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer,extra",
    [
        (GlobalAveragePooling2D(name="a"), {"data_format": "channels_last", "keepdims": False}),
        (GlobalMaxPooling2D(keepdims=True, name="b"), {"data_format": "channels_last", "keepdims": True}),
        (Reshape((-1, 2, 2), name="c"), {"target_shape": (-1, 2, 2)}),  # a tuple, as in Keras
        (Rescaling(1 / 255, name="d"), {"scale": 1 / 255, "offset": 0.0}),
        (Rescaling(2, offset=-1, name="e"), {"scale": 2.0, "offset": -1.0}),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_get_config_and_from_config(layer, extra):
    cfg = layer.get_config()
    assert cfg == {"name": layer.name, "trainable": True, "dtype": "float32", **extra}
    clone = type(layer).from_config(cfg)
    assert type(clone) is type(layer) and clone.get_config() == cfg


# ---------------------------------------------------------------------------
# short training runs: each new layer inside a Sequential model learns a trivial task
# ---------------------------------------------------------------------------


def _bright_channel(n, seed):
    """Images (N, 6, 6, 2) of noise; the label is the channel with the brighter 3x3 patch."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 2, n)
    r, c = rng.integers(0, 4, n), rng.integers(0, 4, n)
    for i in range(n):
        x[i, r[i] : r[i] + 3, c[i] : c[i] + 3, y[i]] += 2.0
    return x, y


def _fit(layers, x, y, epochs=8):
    convolab.set_random_seed(0)
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["acc"])
    hist = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return model, hist.history


@pytest.mark.parametrize("cls", GLOBAL, ids=lambda c: c.__name__)
def test_training_conv_global_pool_dense(cls):
    x, y = _bright_channel(96, seed=1)
    layers = lambda: [
        L.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 2)),
        cls(),  # noqa: E731
        L.Dense(2, activation="softmax"),
    ]
    model, hist = _fit(layers(), x, y)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["acc"][-1] >= 0.9
    xt, yt = _bright_channel(64, seed=2)
    assert model.evaluate(xt, yt, verbose=0)[1] >= 0.9
    _, again = _fit(layers(), x, y)  # seeded: the same losses again
    np.testing.assert_allclose(again["loss"], hist["loss"], rtol=1e-6)


def test_training_dense_reshape_conv():
    # A vector of 36 values is an image in disguise: Reshape makes it one for the Conv2D.
    x, y = _bright_channel(96, seed=3)
    model, hist = _fit(
        [
            L.Reshape((-1,), input_shape=(6, 6, 2)),
            L.Reshape((6, 6, 2)),
            L.Conv2D(4, 3, activation="relu"),
            L.GlobalMaxPooling2D(),
            L.Dense(2, activation="softmax"),
        ],
        x,
        y,
    )
    assert hist["acc"][-1] >= 0.9


def test_training_rescaling_first_on_uint8_images():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 96)
    x = np.where(
        y[:, None, None, None] == 1, rng.integers(150, 256, (96, 4, 4, 1)), rng.integers(0, 100, (96, 4, 4, 1))
    ).astype(np.uint8)  # bright vs dark
    model, hist = _fit(
        [L.Rescaling(1 / 255, input_shape=(4, 4, 1)), L.Flatten(), L.Dense(2, activation="softmax")], x, y
    )
    assert hist["acc"][-1] >= 0.95
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]


# ---------------------------------------------------------------------------
# the functional API and the tape: the new layers as graph nodes
# ---------------------------------------------------------------------------


def test_functional_model_with_the_new_layers_gradients_on_the_tape():
    from support.gradcheck import rel_error

    from convolab.autodiff import GradientTape

    keras.backend.set_floatx("float64")
    try:
        convolab.set_random_seed(0)
        inputs = keras.Input(shape=(12,))
        x = L.Rescaling(0.5, offset=0.1)(inputs)
        x = L.Reshape((2, -1, 2))(x)  # (2, 3, 2)
        x = L.Conv2D(3, (1, 2), activation="tanh")(x)
        a = L.GlobalAveragePooling2D()(x)
        b = L.GlobalMaxPooling2D()(x)
        outputs = L.Dense(2)(L.Add()([a, b]))
        model = keras.Model(inputs, outputs)
        assert x.shape == (None, 2, 2, 3) and a.shape == (None, 3) and b.shape == (None, 3)
        rng = np.random.default_rng(5)
        xs, target = rng.standard_normal((3, 12)), rng.standard_normal((3, 2))

        def loss_and_grads():
            with GradientTape() as tape:
                d = keras.ops.subtract(model(xs, training=True), target)
                loss = keras.ops.mean(keras.ops.square(d))
            return float(np.asarray(loss)), tape.gradient(loss, model.trainable_variables)

        _, grads = loss_and_grads()
        for v, g in zip(model.trainable_variables, grads):
            w, num = v.value, np.zeros_like(v.value)
            for i in np.ndindex(w.shape):
                old = w[i]
                w[i] = old + 1e-6
                fp, _ = loss_and_grads()
                w[i] = old - 1e-6
                fm, _ = loss_and_grads()
                w[i] = old
                num[i] = (fp - fm) / 2e-6
            assert rel_error(g, num) < 1e-6, v.path
    finally:
        keras.backend.set_floatx("float32")
