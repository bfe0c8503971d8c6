"""``keras.layers.Resizing(..., pad_to_aspect_ratio=True, fill_value=...)``: Keras 3 pads the short side
evenly (half the missing rows, truncated, on each side), then resizes. Exact hand-made cases, the padding
rule against Keras's formula written out here, a float64 gradient check of the hand-written backward,
the config and file round trips, and the refusals (antialias, fill_mode, crop and pad together)."""

from __future__ import annotations

import numpy as np
import pytest

from convolab import keras
from convolab.nn.resizing import resizing_backward, resizing_forward
from support.layer_gradients import check_layer_gradients

L = keras.layers


def _keras_padded(x, out_h, out_w, fill):
    """Keras 3's padding (backend resize, channels_last), written out: the padded image before resizing."""
    n, h, w, c = x.shape
    pad_height = max(h, int(float(w * out_h) / out_w))
    pad_width = max(w, int(float(h * out_w) / out_h))
    hstart = int(float(pad_height - h) / 2)
    wstart = int(float(pad_width - w) / 2)
    if hstart > 0:
        band = np.full((n, hstart, w, c), fill)
        return np.concatenate([band, x, band], axis=1)
    if wstart > 0:
        band = np.full((n, h, wstart, c), fill)
        return np.concatenate([band, x, band], axis=2)
    return x


def test_letterbox_a_wide_image_exact_nearest():
    # a 2x4 image into 4x4: one row of fill above and below, then 4x4 is the padded image itself
    x = np.arange(1.0, 9.0).reshape(1, 2, 4, 1)
    y = L.Resizing(4, 4, interpolation="nearest", pad_to_aspect_ratio=True, fill_value=-1.0)(x)
    want = np.array([[-1, -1, -1, -1], [1, 2, 3, 4], [5, 6, 7, 8], [-1, -1, -1, -1]], dtype=float)
    np.testing.assert_array_equal(y[0, :, :, 0], want)


def test_pillarbox_a_tall_image_exact_bilinear_downscale():
    # a 4x2 image into 2x2: pad one column each side (4x4), then halve: each output is a 2x2 mean
    x = np.array([[1.0, 3.0], [5.0, 7.0], [9.0, 11.0], [13.0, 15.0]]).reshape(1, 4, 2, 1)
    y = L.Resizing(2, 2, pad_to_aspect_ratio=True, fill_value=0.0)(x)[0, :, :, 0]
    np.testing.assert_allclose(
        y, [[(0 + 1 + 0 + 5) / 4, (3 + 0 + 7 + 0) / 4], [(0 + 9 + 0 + 13) / 4, (11 + 0 + 15 + 0) / 4]]
    )


def test_odd_difference_pads_half_truncated_on_each_side_as_keras():
    # 3x8 to 4x4: Keras's padded height is 8, 5 rows short: 2 on each side, so 7x8 is resized (not 8x8)
    x = np.arange(24.0).reshape(1, 3, 8, 1)
    assert _keras_padded(x, 4, 4, 5.0).shape == (1, 7, 8, 1)
    y = L.Resizing(4, 4, interpolation="nearest", pad_to_aspect_ratio=True, fill_value=5.0)(x)[0, :, :, 0]
    # nearest reads rows floor((i + 0.5) * 7 / 4) = 0, 2, 4, 6 of the padded 7 (image rows are 2..4)
    # and columns floor((j + 0.5) * 2) = 1, 3, 5, 7
    want = np.array([[5.0] * 4, x[0, 0, [1, 3, 5, 7], 0], x[0, 2, [1, 3, 5, 7], 0], [5.0] * 4])
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    "in_hw, out_hw",
    [((3, 8), (4, 4)), ((8, 3), (4, 4)), ((5, 6), (3, 7)), ((6, 5), (7, 3)), ((4, 4), (2, 2)), ((6, 4), (3, 2))],
)
def test_same_as_keras_padding_then_plain_resize(interpolation, in_hw, out_hw):
    rng = np.random.default_rng(sum(in_hw) * 10 + sum(out_hw))
    x = rng.standard_normal((2, *in_hw, 3))
    got = L.Resizing(*out_hw, interpolation=interpolation, pad_to_aspect_ratio=True, fill_value=0.25)(x)
    want = L.Resizing(*out_hw, interpolation=interpolation)(_keras_padded(x, *out_hw, 0.25))
    assert got.shape == (2, *out_hw, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("in_hw, out_hw", [((3, 8), (5, 4)), ((7, 3), (4, 6)), ((4, 4), (3, 3))])
def test_gradient_float64(interpolation, in_hw, out_hw):
    rng = np.random.default_rng(7)
    layer = L.Resizing(*out_hw, interpolation=interpolation, pad_to_aspect_ratio=True, fill_value=2.0, dtype="float64")
    x = rng.standard_normal((2, *in_hw, 2))
    layer(x)
    check_layer_gradients(layer, x, rng)


def test_backward_does_not_hand_the_padding_a_gradient():
    x = np.zeros((1, 2, 4, 1))
    _, cache = resizing_forward(x, (4, 4), "nearest", pad_to_aspect_ratio=True)
    dx = resizing_backward(np.ones((1, 4, 4, 1)), cache)
    np.testing.assert_array_equal(dx, np.ones((1, 2, 4, 1)))  # each pixel read once; the padding dropped


def test_trains_inside_a_model():
    model = keras.Sequential(
        [keras.Input((6, 10, 1)), L.Resizing(8, 8, pad_to_aspect_ratio=True), L.Flatten(), L.Dense(1)]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).random((8, 6, 10, 1)).astype("float32")
    history = model.fit(x, np.ones((8, 1)), epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (8, 1)


def test_config_round_trip_and_file_round_trip(tmp_path):
    layer = L.Resizing(8, 8, pad_to_aspect_ratio=True, fill_value=0.5, interpolation="nearest")
    cfg = layer.get_config()
    assert cfg["pad_to_aspect_ratio"] is True and cfg["fill_value"] == 0.5 and cfg["fill_mode"] == "constant"
    again = L.Resizing.from_config(cfg)
    assert again.pad_to_aspect_ratio and again.fill_value == 0.5
    x = np.random.default_rng(1).random((2, 4, 8, 1)).astype("float32")
    np.testing.assert_array_equal(again(x), layer(x))

    model = keras.Sequential([keras.Input((4, 8, 1)), layer, L.Flatten(), L.Dense(2)])
    want = model.predict(x, verbose=0)
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        assert loaded.layers[0].pad_to_aspect_ratio is True and loaded.layers[0].fill_value == 0.5
        np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)


def test_refusals_at_construction():
    with pytest.raises(ValueError, match=r"Resizing '.*': antialias=True is not implemented"):
        L.Resizing(4, 4, antialias=True)
    with pytest.raises(ValueError, match="only one of crop_to_aspect_ratio and pad_to_aspect_ratio"):
        L.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="fill_mode.*'constant'.*got 'reflect'"):
        L.Resizing(4, 4, pad_to_aspect_ratio=True, fill_mode="reflect")
    with pytest.raises(TypeError, match="fill_value"):
        L.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value="zero")
    L.Resizing(4, 4, fill_mode="reflect")  # without padding the mode is unused, as before
