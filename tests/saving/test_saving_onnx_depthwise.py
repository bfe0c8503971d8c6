"""ONNX export of grouped, dilated, depthwise and separable convolutions matches predict in onnxruntime."""

import pytest

from convolab import keras
from support.onnx_check import check_export, images

onnx = pytest.importorskip("onnx")

L = keras.layers

# kernel, strides, padding, dilation, (H, W)
WINDOWS = [
    (3, 1, "valid", 1, (7, 6)),
    (3, 1, "same", 1, (7, 6)),
    (3, 2, "same", 1, (6, 7)),
    ((2, 3), (2, 1), "same", 1, (6, 7)),
    (3, 1, "same", 2, (7, 6)),
    ((2, 2), 1, "same", (3, 1), (6, 7)),
    (3, 1, "valid", (2, 1), (8, 7)),
]


@pytest.mark.parametrize("kernel,strides,padding,dilation,hw", WINDOWS)
@pytest.mark.parametrize("depth_multiplier", [1, 2])
@pytest.mark.parametrize("use_bias", [True, False])
def test_depthwise(tmp_path, kernel, strides, padding, dilation, hw, depth_multiplier, use_bias):
    model = keras.models.Sequential(
        [
            L.DepthwiseConv2D(
                kernel,
                strides=strides,
                padding=padding,
                dilation_rate=dilation,
                depth_multiplier=depth_multiplier,
                use_bias=use_bias,
                input_shape=hw + (3,),
            )
        ]
    )
    check_export(model, tmp_path, images(hw + (3,)))
    conv = next(n for n in onnx.load(tmp_path / "m.onnx").graph.node if n.op_type == "Conv")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["group"] == 3
    assert attrs.get("dilations", [1, 1]) == list(model.layers[0].dilation_rate)


@pytest.mark.parametrize("kernel,strides,padding,dilation,hw", WINDOWS)
def test_separable(tmp_path, kernel, strides, padding, dilation, hw):
    model = keras.models.Sequential(
        [
            L.SeparableConv2D(
                5,
                kernel,
                strides=strides,
                padding=padding,
                dilation_rate=dilation,
                depth_multiplier=2,
                activation="relu",
                input_shape=hw + (3,),
            )
        ]
    )
    check_export(model, tmp_path, images(hw + (3,)))


@pytest.mark.parametrize(
    "groups,dilation,padding", [(2, 1, "valid"), (4, 1, "same"), (1, 2, "same"), (2, (2, 3), "same"), (4, 2, "valid")]
)
def test_conv2d_groups_and_dilation(tmp_path, groups, dilation, padding):
    model = keras.models.Sequential(
        [L.Conv2D(8, 3, padding=padding, groups=groups, dilation_rate=dilation, input_shape=(9, 8, 4))]
    )
    check_export(model, tmp_path, images((9, 8, 4)))


def test_mobilenet_block(tmp_path):
    model = keras.models.Sequential(
        [
            L.Conv2D(8, 3, strides=2, padding="same", activation="relu", input_shape=(12, 12, 3)),
            L.DepthwiseConv2D(3, padding="same", activation="relu"),
            L.Conv2D(16, 1, activation="relu"),
            L.SeparableConv2D(8, 3, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(4, activation="softmax"),
        ]
    )
    check_export(model, tmp_path, images((12, 12, 3)))


def test_functional_residual_block_saves_and_exports(tmp_path):
    import numpy as np

    from support.onnx_check import run_onnx

    inputs = keras.Input((8, 8, 4))
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(inputs)
    x = L.Conv2D(4, 1, groups=2)(x)
    x = L.Add()([inputs, x])
    outputs = L.SeparableConv2D(3, 3, dilation_rate=2, padding="same")(x)
    model = keras.Model(inputs, outputs)
    x = images((8, 8, 4))
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0), expected)
    model.export(tmp_path / "m.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), expected, rtol=0, atol=1e-5)
