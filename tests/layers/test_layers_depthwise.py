"""DepthwiseConv2D, SeparableConv2D and Conv2D(dilation_rate, groups) through the public API."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.saving import schema
from convolab.saving._common import plain
from convolab.saving.errors import ModelFileError
from support.differential import check_spec

L = keras.layers


# -- shapes and Keras's parameter counts ----------------------------------------------------


@pytest.mark.parametrize(
    "layer,in_shape,out_shape,params",
    [
        (lambda: L.DepthwiseConv2D(3), (8, 8, 8), (6, 6, 8), 3 * 3 * 8 + 8),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (8, 8, 8), (8, 8, 16), 3 * 3 * 8 * 2 + 16),
        (lambda: L.DepthwiseConv2D((3, 1), strides=2, use_bias=False), (9, 8, 4), (4, 4, 4), 3 * 4),
        (lambda: L.DepthwiseConv2D(3, dilation_rate=2), (9, 8, 3), (5, 4, 3), 3 * 3 * 3 + 3),
        (lambda: L.SeparableConv2D(16, 3), (8, 8, 8), (6, 6, 16), 3 * 3 * 8 + 8 * 16 + 16),  # 216, as Keras
        (
            lambda: L.SeparableConv2D(16, 3, use_bias=False, depth_multiplier=2, padding="same"),
            (8, 8, 8),
            (8, 8, 16),
            3 * 3 * 8 * 2 + 16 * 16,
        ),
        (lambda: L.SeparableConv2D(4, 2, strides=2, padding="same"), (7, 7, 3), (4, 4, 4), 2 * 2 * 3 + 3 * 4 + 4),
        (lambda: L.Conv2D(16, 3, groups=4), (8, 8, 8), (6, 6, 16), 3 * 3 * 2 * 16 + 16),
        (lambda: L.Conv2D(6, 3, dilation_rate=(2, 3), padding="valid"), (9, 9, 2), (5, 3, 6), 3 * 3 * 2 * 6 + 6),
    ],
)
def test_output_shape_and_parameter_count(layer, in_shape, out_shape, params, capsys):
    model = keras.Sequential([keras.Input(in_shape), layer()])
    lay = model.layers[0]
    assert lay.output_shape == (None,) + out_shape
    assert lay.count_params() == params
    model.summary()
    text = capsys.readouterr().out
    assert str((None,) + out_shape) in text and f"{params:,}" in text
    assert model.predict(np.zeros((2,) + in_shape, "float32"), verbose=0).shape == (2,) + out_shape


def test_weights_have_keras_names_order_and_layout():
    dw = L.DepthwiseConv2D(3, depth_multiplier=2)
    dw.build((None, 5, 5, 4))
    assert [(k, v.shape) for k, v in dw.params.items()] == [("kernel", (3, 3, 4, 2)), ("bias", (8,))]
    sep = L.SeparableConv2D(6, (3, 2), depth_multiplier=3)
    sep.build((None, 5, 5, 4))
    assert [(k, v.shape) for k, v in sep.params.items()] == [
        ("depthwise_kernel", (3, 2, 4, 3)),
        ("pointwise_kernel", (1, 1, 12, 6)),
        ("bias", (6,)),
    ]
    conv = L.Conv2D(6, 3, groups=3)
    conv.build((None, 5, 5, 9))
    assert conv.kernel.shape == (3, 3, 3, 6)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,pattern",
    [
        (
            lambda: L.DepthwiseConv2D(3, strides=2, dilation_rate=2, name="dw"),
            r"DepthwiseConv2D 'dw': `strides` > 1 is not supported together with `dilation_rate` > 1; expected one of "
            r"them to be 1; got strides=\(2, 2\) and dilation_rate=\(2, 2\)",
        ),
        (
            lambda: L.DepthwiseConv2D(3, depth_multiplier=0, name="dw"),
            r"DepthwiseConv2D 'dw': `depth_multiplier` must be a positive int; got 0",
        ),
        (lambda: L.DepthwiseConv2D(0, name="dw"), r"DepthwiseConv2D 'dw': every value of `kernel_size` must be >= 1"),
        (
            lambda: L.DepthwiseConv2D(3, depthwise_regularizer="l3", name="dw"),
            r"DepthwiseConv2D 'dw': unknown `depthwise_regularizer` 'l3'; expected one of 'l1', 'l2', 'l1_l2'",
        ),
        (
            lambda: L.SeparableConv2D(0, 3, name="sep"),
            r"SeparableConv2D 'sep': `filters` must be a positive int; got 0",
        ),
        (
            lambda: L.SeparableConv2D(4, 3, strides=(1, 2), dilation_rate=(2, 1), name="sep"),
            r"SeparableConv2D 'sep': `strides` > 1 is not supported together with `dilation_rate` > 1",
        ),
        (
            lambda: L.SeparableConv2D(4, 3, padding="full", name="sep"),
            r"SeparableConv2D 'sep': `padding` must be 'valid' or 'same'; got 'full'",
        ),
        (
            lambda: L.Conv2D(6, 3, groups=4, name="c"),
            r"Conv2D 'c': `filters` must be divisible by `groups`; "
            r"got filters=6 and groups=4",
        ),
    ],
)
def test_bad_arguments_name_the_layer(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_channels_not_divisible_by_groups():
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'c': the input's channels must be divisible by groups=2; "
        r"got 3 channels \(input shape \(None, 8, 8, 3\)\)",
    ):
        keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, groups=2, name="c")])


def test_dilated_kernel_larger_than_its_input():
    with pytest.raises(
        ValueError,
        match=r"DepthwiseConv2D 'dw': kernel_size \(3, 3\) \(spanning \(7, 7\) with "
        r"dilation_rate=\(3, 3\)\) is larger than its input \(5, 5\)",
    ):
        keras.Sequential([keras.Input((5, 5, 2)), L.DepthwiseConv2D(3, dilation_rate=3, name="dw")])


def test_wrong_rank_input():
    with pytest.raises(
        ValueError,
        match=r"SeparableConv2D 'sep' expects 4-D input \(batch, height, width, "
        r"channels\); got shape \(8, 8\)",
    ):
        L.SeparableConv2D(2, 3, name="sep")(np.zeros((8, 8)))


# -- save / load ------------------------------------------------------------------------------


def _model():
    return keras.Sequential(
        [
            keras.Input((9, 9, 4)),
            L.Conv2D(6, 3, padding="same", dilation_rate=2, groups=2, activation="relu"),
            L.DepthwiseConv2D(
                3, strides=2, depth_multiplier=2, padding="same", activation="relu", depthwise_initializer="he_normal"
            ),
            L.SeparableConv2D(5, 2, dilation_rate=(1, 2), depth_multiplier=2, pointwise_initializer="he_uniform"),
            L.GlobalAveragePooling2D(),
            L.Dense(3, activation="softmax"),
        ]
    )


def test_save_and_load_round_trip(tmp_path):
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(4, 9, 9, 4)).astype("float32")
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.layers, loaded.layers):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[1].get_config()["depthwise_initializer"] == "he_normal"


def test_conv2d_config_from_before_dilation_and_groups_still_loads():
    cfg = {
        "name": "c",
        "trainable": True,
        "dtype": "float32",
        "filters": 2,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": "valid",
        "use_bias": True,
        "activation": "relu",
    }
    assert schema.LAYER_SCHEMAS["Conv2D"](cfg, "layer") == cfg
    assert L.Conv2D(**cfg).get_config()["dilation_rate"] == (1, 1)  # a tuple, as Keras gives it


@pytest.mark.parametrize(
    "cls,extra",
    [
        ("DepthwiseConv2D", {"groups": 2}),
        ("DepthwiseConv2D", {"filters": 3}),
        ("SeparableConv2D", {"groups": 1}),
        ("Conv2D", {"depth_multiplier": 1}),
    ],
)
def test_schema_refuses_keys_a_layer_does_not_have(cls, extra):
    layer = {
        "DepthwiseConv2D": L.DepthwiseConv2D(3),
        "SeparableConv2D": L.SeparableConv2D(2, 3),
        "Conv2D": L.Conv2D(2, 3),
    }[cls]
    cfg = plain(layer.get_config())  # as a file holds it: JSON lists for Keras's tuples
    assert schema.LAYER_SCHEMAS[cls](cfg, "layer") == cfg
    with pytest.raises(ModelFileError, match=r"layer: unknown key\(s\)"):
        schema.LAYER_SCHEMAS[cls]({**cfg, **extra}, "layer")


def test_schema_checks_the_new_values():
    cfg = plain(L.SeparableConv2D(2, 3).get_config())
    with pytest.raises(ModelFileError, match=r"layer.depth_multiplier: expected an int in \[1, "):
        schema.LAYER_SCHEMAS["SeparableConv2D"]({**cfg, "depth_multiplier": 0}, "layer")
    with pytest.raises(ModelFileError, match=r"layer.dilation_rate"):
        schema.LAYER_SCHEMAS["SeparableConv2D"]({**cfg, "dilation_rate": [0, 1]}, "layer")


# -- float32 against float64, Sequential and the tape -------------------------------------------


def _spec(shape, plan, seed, loss="sparse", classes=3, optimizer=("SGD", dict(learning_rate=0.1))):
    return dict(shape=shape, plan=plan, loss=loss, classes=classes, optimizer=optimizer, seed=seed)


DIFFERENTIAL = [
    _spec(
        (2, 8, 8, 3),
        [
            ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, activation="relu")),
            ("Conv2D", dict(filters=4, kernel_size=1, activation="relu")),
            ("Flatten", {}),
            ("Dense", dict(units=3, activation="softmax")),
        ],
        seed=11,
    ),
    _spec(
        (3, 9, 7, 4),
        [
            ("SeparableConv2D", dict(filters=6, kernel_size=3, strides=2, padding="same", activation="tanh")),
            ("Conv2D", dict(filters=4, kernel_size=2, groups=2, dilation_rate=(1, 2), padding="same")),
            ("Flatten", {}),
            ("Dense", dict(units=2)),
        ],
        seed=12,
        loss="categorical_logits",
        classes=2,
        optimizer=("Adam", dict(learning_rate=0.01, epsilon=1e-3)),
    ),
    _spec(
        (2, 10, 10, 2),
        [
            ("Conv2D", dict(filters=4, kernel_size=3, dilation_rate=2, activation="sigmoid")),
            ("DepthwiseConv2D", dict(kernel_size=2, strides=(2, 1), padding="same", use_bias=False)),
            ("SeparableConv2D", dict(filters=3, kernel_size=2, dilation_rate=2, depth_multiplier=2)),
            ("Flatten", {}),
            ("Dense", dict(units=3)),
        ],
        seed=13,
        loss="mse",
        optimizer=("RMSprop", dict(learning_rate=0.01, epsilon=1e-3)),
    ),
]


@pytest.mark.parametrize("spec", DIFFERENTIAL, ids=["depthwise-pointwise", "separable-grouped", "dilated"])
def test_float32_agrees_with_float64_and_the_tape(spec):
    check_spec(spec)


# -- a MobileNet-style block learns -------------------------------------------------------------


def test_mobilenet_block_training_loss_drops():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # vertical against horizontal stripes, with noise
    n = 64
    y = rng.integers(0, 2, n)
    stripes = (np.arange(8) % 2).astype("float32")
    x = np.where(y[:, None, None] == 0, stripes[None, :, None], stripes[None, None, :]) * np.ones((n, 8, 8))
    x = (x + 0.3 * rng.normal(size=x.shape)).astype("float32")[..., None]
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.DepthwiseConv2D(3, padding="same", activation="relu"),
            L.Conv2D(16, 1, activation="relu"),
            L.SeparableConv2D(16, 3, strides=2, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["acc"])
    losses = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
