"""ONNX export: every layer type and the lesson's three models match predict in onnxruntime."""

import numpy as np
import pytest

import convolab
from convolab import keras
from support.onnx_check import check_export, images

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

L = keras.layers


CONV_CASES = [
    (k, s, p, hw)
    for k, s, p, hw in [
        (3, 1, "valid", (7, 6)),
        (3, 1, "same", (7, 6)),
        (3, 2, "same", (7, 6)),
        (3, 2, "valid", (8, 7)),
        ((2, 3), (2, 1), "same", (6, 7)),
        (4, 3, "same", (8, 8)),
        (1, 1, "valid", (4, 5)),
        (5, 2, "same", (5, 5)),
    ]
]


@pytest.mark.parametrize("kernel,strides,padding,hw", CONV_CASES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d(tmp_path, kernel, strides, padding, hw, use_bias):
    model = keras.models.Sequential(
        [L.Conv2D(4, kernel, strides=strides, padding=padding, use_bias=use_bias, input_shape=hw + (3,))]
    )
    check_export(model, tmp_path, images(hw + (3,)))


POOL_CASES = [
    (2, None, "valid"),
    (2, None, "same"),
    (3, 2, "same"),
    (3, 1, "same"),
    ((2, 3), (1, 2), "same"),
    (3, 2, "valid"),
    (2, 1, "valid"),
]


@pytest.mark.parametrize("pool,strides,padding", POOL_CASES)
@pytest.mark.parametrize("cls", [L.MaxPooling2D, L.AveragePooling2D])
@pytest.mark.parametrize("hw", [(7, 5), (6, 6)])
def test_pooling(tmp_path, cls, pool, strides, padding, hw):
    model = keras.models.Sequential([cls(pool, strides=strides, padding=padding, input_shape=hw + (2,))])
    check_export(model, tmp_path, images(hw + (2,)))


def test_pooling_after_conv_and_flatten_order(tmp_path):
    # Flatten after NCHW ops must flatten in NHWC order, or the Dense weights meet the wrong pixels.
    model = keras.models.Sequential(
        [
            L.Conv2D(3, 3, activation="relu", input_shape=(7, 7, 2)),
            L.AveragePooling2D(2, padding="same"),
            L.Flatten(),
            L.Dense(5),
        ]
    )
    check_export(model, tmp_path, images((7, 7, 2)))


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_activations_in_layers_and_alone(tmp_path, activation):
    model = keras.models.Sequential(
        [
            L.Conv2D(3, 2, activation=activation, input_shape=(4, 4, 2)),
            L.Activation(activation),
            L.Flatten(),
            L.Dense(4, activation=activation),
            L.Activation(activation),
        ]
    )
    check_export(model, tmp_path, images((4, 4, 2)))


def test_softmax_layer_on_images_and_vectors(tmp_path):
    model = keras.models.Sequential(
        [L.Conv2D(3, 2, input_shape=(4, 4, 2)), L.Softmax(), L.Flatten(), L.Dense(3), L.Softmax()]
    )
    check_export(model, tmp_path, images((4, 4, 2)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"negative_slope": 0.2},
        {"max_value": 0.5},
        {"threshold": 0.3},
        {"threshold": 0.2, "negative_slope": 0.1, "max_value": 1.0},
    ],
)
def test_relu_layer(tmp_path, kwargs):
    model = keras.models.Sequential(
        [L.Conv2D(3, 2, input_shape=(4, 4, 2)), L.ReLU(**kwargs), L.Flatten(), L.Dense(3), L.ReLU(**kwargs)]
    )
    check_export(model, tmp_path, images((4, 4, 2)))


def test_dropout_is_identity_and_dense_on_images(tmp_path):
    model = keras.models.Sequential(
        [
            L.Conv2D(3, 2, input_shape=(5, 5, 2)),
            L.Dropout(0.5),
            L.Dense(4),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    check_export(model, tmp_path, images((5, 5, 2)))


def test_dense_only_model(tmp_path):
    model = keras.models.Sequential(
        [L.Dense(6, activation="relu", input_shape=(5,)), L.Dropout(0.3), L.Dense(3, activation="softmax")]
    )
    check_export(model, tmp_path, np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))


def lesson_models():
    simple = [
        L.Conv2D(filters=9, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu"),
        L.Flatten(),
        L.Dense(10),
    ]
    pyramid = [
        L.Conv2D(filters=10, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(filters=20, kernel_size=(5, 5), activation="relu"),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dense(10, activation="softmax"),
    ]
    lenet = [
        L.Conv2D(filters=6, kernel_size=5, strides=1, activation="relu", input_shape=(32, 32, 3)),
        L.MaxPooling2D(pool_size=2, strides=2),
        L.Conv2D(filters=16, kernel_size=5, strides=1, activation="relu"),
        L.MaxPooling2D(pool_size=2, strides=2),
        L.Flatten(),
        L.Dense(120, activation="relu"),
        L.Dense(84, activation="relu"),
        L.Dense(10, activation="softmax"),
    ]
    return {"simple": simple, "pyramid": pyramid, "lenet": lenet}


@pytest.mark.parametrize("name", ["simple", "pyramid", "lenet"])
def test_lesson_models_after_training(tmp_path, name):
    convolab.set_random_seed(0)
    model = keras.models.Sequential(lesson_models()[name])
    shape = model.input_shape[1:]
    x = np.random.default_rng(2).random((16,) + shape, dtype=np.float32)
    y = np.random.default_rng(3).integers(0, 10, 16)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    check_export(model, tmp_path, x)


def test_export_errors(tmp_path):
    from convolab.saving import export_model

    model = keras.models.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="format"):
        export_model(model, tmp_path / "m.tflite", format="tflite")
    with pytest.raises(ValueError, match="no weights yet"):
        export_model(keras.models.Sequential([L.Dense(2)]), tmp_path / "m.onnx")
    assert export_model(model, tmp_path / "m.onnx") == str(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))
