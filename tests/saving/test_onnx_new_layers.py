"""ONNX export of issue 19's layers and activations, each checked against ``predict`` in
onnxruntime on random float32 inputs (atol 1e-5): LeakyReLU, ELU, PReLU, Conv1D, the 1-D poolings,
Conv2DTranspose (ConvTranspose), Resizing (Resize) and every ``activation=`` name. What still has
no translation is refused with a ValueError naming the layer."""

import numpy as np
import pytest

from convolab import keras
from support.onnx_check import check_export, images

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

L = keras.layers

ACTIVATIONS = [
    "gelu",
    "elu",
    "selu",
    "swish",
    "silu",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "exponential",
    "mish",
    "leaky_relu",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "linear",
]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_argument_of_conv2d_and_dense(tmp_path, activation):
    model = keras.Sequential(
        [
            keras.Input((6, 5, 3)),
            L.Conv2D(4, 3, padding="same", activation=activation),
            L.Flatten(),
            L.Dense(5, activation=activation),
        ]
    )
    if activation == "exponential":  # exp of a sum of exps: small weights keep atol 1e-5 meaningful in float32
        for layer in model.layers:
            if "kernel" in layer.params:
                layer.params["kernel"] *= 0.1
    check_export(model, tmp_path, images((6, 5, 3)))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer(tmp_path, activation):
    model = keras.Sequential([keras.Input((4, 4, 3)), L.Conv2D(3, 2), L.Activation(activation)])
    scale = 0.5 if activation == "exponential" else 2.0  # wide inputs, but exp stays where atol 1e-5 means something
    check_export(model, tmp_path, scale * images((4, 4, 3)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.LeakyReLU(),
        lambda: L.LeakyReLU(negative_slope=0.05),
        lambda: L.ELU(),
        lambda: L.ELU(alpha=0.5),
        lambda: L.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.0, 0.5)),
        lambda: L.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.0, 0.5), shared_axes=[1, 2]),
    ],
)
def test_activation_layers_after_a_convolution(tmp_path, make):
    model = keras.Sequential([keras.Input((5, 6, 3)), L.Conv2D(4, 3, padding="same"), make(), L.Conv2D(2, 1)])
    check_export(model, tmp_path, images((5, 6, 3)))


def test_prelu_on_vectors(tmp_path):
    model = keras.Sequential(
        [keras.Input((7,)), L.Dense(6), L.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.0, 0.5))]
    )
    check_export(model, tmp_path, np.random.default_rng(2).normal(size=(4, 7)).astype("float32"))


CONV1D_CASES = [
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, strides=2, padding="same"),
    dict(kernel_size=3, padding="causal", dilation_rate=2),
    dict(kernel_size=3, padding="same", groups=2),
    dict(kernel_size=5, strides=3, padding="valid", use_bias=False, activation="gelu"),
]


@pytest.mark.parametrize("kwargs", CONV1D_CASES)
def test_conv1d(tmp_path, kwargs):
    model = keras.Sequential([keras.Input((13, 4)), L.Conv1D(6, **kwargs)])
    check_export(model, tmp_path, images((13, 4)))


def test_conv1d_unknown_length_same_padding(tmp_path):
    model = keras.Sequential([keras.Input((None, 4)), L.Conv1D(5, 4, strides=2, padding="same")])
    check_export(model, tmp_path, images((11, 4)))


@pytest.mark.parametrize("pool", ["MaxPooling1D", "AveragePooling1D"])
@pytest.mark.parametrize("pool_size,strides,padding", [(2, None, "valid"), (3, 2, "same"), (3, 1, "valid")])
def test_pooling1d(tmp_path, pool, pool_size, strides, padding):
    model = keras.Sequential(
        [
            keras.Input((11, 3)),
            L.Conv1D(4, 2, padding="same"),
            getattr(L, pool)(pool_size, strides=strides, padding=padding),
        ]
    )
    check_export(model, tmp_path, images((11, 3)))


@pytest.mark.parametrize("pool", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling1d(tmp_path, pool, keepdims):
    model = keras.Sequential([keras.Input((9, 3)), L.Conv1D(4, 3), getattr(L, pool)(keepdims=keepdims)])
    check_export(model, tmp_path, images((9, 3)))


def test_text_classifier_of_keras_io(tmp_path):
    """Conv1D, pooling and a Dense head, as keras.io's 1-D convolution examples stack them."""
    model = keras.Sequential(
        [
            keras.Input((20, 8)),
            L.Conv1D(16, 5, activation="relu"),
            L.MaxPooling1D(2),
            L.Conv1D(16, 3, padding="causal", activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(3, activation="softmax"),
        ]
    )
    check_export(model, tmp_path, images((20, 8)))


CONV_TRANSPOSE_CASES = [
    dict(kernel_size=3, strides=2, padding="same"),
    dict(kernel_size=3, strides=2, padding="valid"),
    dict(kernel_size=2, strides=3, padding="valid"),  # stride above the kernel: output_padding in ONNX
    dict(kernel_size=4, strides=2, padding="same"),
    dict(kernel_size=(3, 3), strides=(2, 1), padding="same", output_padding=(1, 0)),
    dict(kernel_size=3, strides=2, padding="valid", output_padding=1),
    dict(kernel_size=3, padding="same", dilation_rate=2, activation="relu"),
    dict(kernel_size=3, strides=1, padding="valid", use_bias=False),
]


@pytest.mark.parametrize("kwargs", CONV_TRANSPOSE_CASES)
def test_conv2d_transpose(tmp_path, kwargs):
    model = keras.Sequential([keras.Input((5, 6, 3)), L.Conv2DTranspose(4, **kwargs)])
    check_export(model, tmp_path, images((5, 6, 3)))


def test_autoencoder_decoder_of_keras_io(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, activation="relu", padding="same", strides=2),
            L.Conv2DTranspose(8, 3, strides=2, activation="relu", padding="same"),
            L.Conv2D(1, 3, activation="sigmoid", padding="same"),
        ]
    )
    check_export(model, tmp_path, images((8, 8, 1)))


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size,crop", [((12, 10), False), ((4, 3), False), ((5, 9), False), ((6, 4), True)])
def test_resizing(tmp_path, interpolation, size, crop):
    model = keras.Sequential(
        [
            keras.Input((7, 8, 3)),
            L.Resizing(*size, interpolation=interpolation, crop_to_aspect_ratio=crop),
            L.Conv2D(2, 1),
        ]
    )
    check_export(model, tmp_path, images((7, 8, 3)))


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(6, 4), (4, 9), (7, 8)])
def test_resizing_pad_to_aspect_ratio(tmp_path, interpolation, size):
    model = keras.Sequential(
        [
            keras.Input((7, 8, 3)),
            L.Resizing(*size, interpolation=interpolation, pad_to_aspect_ratio=True, fill_value=0.5),
            L.Conv2D(2, 1),
        ]
    )
    check_export(model, tmp_path, images((7, 8, 3)))


def test_functional_graph_with_the_new_layers(tmp_path):
    inputs = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 3, padding="same", activation="swish")(inputs)
    a = L.LeakyReLU()(x)
    b = L.ELU()(L.Conv2DTranspose(4, 2, strides=1, padding="same")(x))
    y = L.Resizing(4, 4)(L.add([a, b]))
    model = keras.Model(inputs, L.Dense(2, activation="mish")(L.Flatten()(y)))
    check_export(model, tmp_path, images((6, 6, 3)))


def test_conv2d_transpose_with_unknown_sizes_is_refused_by_name(tmp_path):
    model = keras.Sequential([keras.Input((None, None, 3)), L.Conv2DTranspose(2, 3, strides=2, padding="same")])
    with pytest.raises(ValueError, match=r"Conv2DTranspose '.*' needs a known input height and width"):
        model.export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_an_activation_without_translation_is_a_value_error_naming_the_layer(tmp_path):
    """Every activation convolab accepts is exported; one that is not (set behind the API's back,
    as a future name would arrive) is a ValueError naming the layer, not the KeyError it was."""
    model = keras.Sequential([keras.Input((4, 4, 3)), L.Conv2D(2, 3, name="conv_x")])
    model.layers[0].activation = "not_in_onnx"
    with pytest.raises(ValueError, match=r"Conv2D 'conv_x' has activation 'not_in_onnx'"):
        model.export(tmp_path / "m.onnx")
