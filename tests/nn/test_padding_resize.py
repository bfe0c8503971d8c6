"""ZeroPadding2D/Cropping2D/UpSampling2D ops and the augmentation ops: float64 gradient checks
and exact answers from hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from convolab.nn.affine import (
    affine_transform_backward,
    affine_transform_forward,
    rotation_transforms,
    translation_transforms,
    zoom_transforms,
)
from convolab.nn.color import brightness_backward, brightness_forward, contrast_backward, contrast_forward
from convolab.nn.flip import flip_backward, flip_forward
from convolab.nn.padding import crop2d_backward, crop2d_forward, zero_pad2d_backward, zero_pad2d_forward
from convolab.nn.resize import (
    bilinear_resize_backward,
    bilinear_resize_forward,
    upsample_nearest_backward,
    upsample_nearest_forward,
)
from support.gradcheck import numerical_gradient, rel_error

RNG = np.random.default_rng(7)


def check_grad(forward, backward, x, tol=1e-7):
    y, cache = forward(x)
    dy = RNG.standard_normal(y.shape)
    before = dy.copy()
    dx = backward(dy, cache)
    np.testing.assert_array_equal(dy, before)
    num = numerical_gradient(lambda v: forward(v)[0], x, dy)
    assert np.abs(num).max() > 0
    assert rel_error(dx, num) < tol


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 2), (3, 0)), ((2, 1), (0, 0))], ids=str)
def test_pad_and_crop_gradients(pads):
    x = RNG.standard_normal((2, 3, 4, 2))
    check_grad(lambda v: zero_pad2d_forward(v, pads), zero_pad2d_backward, x)
    check_grad(lambda v: crop2d_forward(v, ((1, 0), (1, 1))), crop2d_backward, x)


def test_pad_and_crop_values():
    x = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    y, _ = zero_pad2d_forward(x, ((1, 0), (0, 2)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0]])
    z, _ = crop2d_forward(y, ((1, 0), (0, 2)))
    np.testing.assert_array_equal(z, x)


@pytest.mark.parametrize("size", [(2, 2), (1, 3), (3, 2)], ids=str)
def test_upsampling_gradients(size):
    x = RNG.standard_normal((2, 3, 2, 2))
    check_grad(lambda v: upsample_nearest_forward(v, size), upsample_nearest_backward, x)
    out = (3 * size[0], 2 * size[1])
    check_grad(lambda v: bilinear_resize_forward(v, out), bilinear_resize_backward, x)
    check_grad(lambda v: bilinear_resize_forward(v, (2, 1)), bilinear_resize_backward, x)  # downsizing too


def test_upsampling_values_nearest_and_tf_bilinear():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y, _ = upsample_nearest_forward(x, (2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    # tf.image.resize([[1, 2]], (1, 4), 'bilinear'): samples at -0.25, 0.25, 0.75, 1.25 (clamped)
    row = np.array([1.0, 2.0]).reshape(1, 1, 2, 1)
    y, _ = bilinear_resize_forward(row, (1, 4))
    np.testing.assert_allclose(y[0, 0, :, 0], [1.0, 1.25, 1.75, 2.0])


def test_flip_values_and_gradient():
    x = np.arange(6.0).reshape(2, 1, 3, 1)
    y, _ = flip_forward(x, np.array([False, False]), np.array([True, False]))
    np.testing.assert_array_equal(y[:, 0, :, 0], [[2, 1, 0], [3, 4, 5]])
    x = RNG.standard_normal((3, 3, 4, 2))
    fh, fw = np.array([True, False, True]), np.array([True, True, False])
    check_grad(lambda v: flip_forward(v, fh, fw), flip_backward, x)


IMG = np.arange(9.0).reshape(1, 3, 3, 1)  # [[0 1 2] [3 4 5] [6 7 8]]


def run(transforms, **kw):
    return affine_transform_forward(IMG, transforms, **kw)[0][0, :, :, 0]


def test_rotation_by_a_quarter_turn_is_rot90_counter_clockwise():
    for interp in ("bilinear", "nearest"):
        np.testing.assert_allclose(
            run(rotation_transforms([np.pi / 2], 3, 3), interpolation=interp), np.rot90(IMG[0, :, :, 0]), atol=1e-12
        )


@pytest.mark.parametrize(
    "fill_mode,row0", [("reflect", [0, 1, 2]), ("nearest", [0, 1, 2]), ("wrap", [6, 7, 8]), ("constant", [-1, -1, -1])]
)
def test_translation_down_one_pixel_with_each_fill_mode(fill_mode, row0):
    y = run(translation_transforms([1.0], [0.0]), fill_mode=fill_mode, fill_value=-1.0)
    np.testing.assert_array_equal(y, [row0, [0, 1, 2], [3, 4, 5]])


def test_translation_left_two_pixels_reflect_and_wrap():
    # reflect (d c b a | a b c d | d c b a): columns 3, 4 read 2, 1
    np.testing.assert_array_equal(run(translation_transforms([0.0], [-2.0]))[0], [2, 2, 1])
    # TensorFlow's wrap divides by (size - 1): column 4 maps to -2, clamped to 0 (its kernel's own
    # answer, kept so results match Keras on its default backend)
    np.testing.assert_array_equal(run(translation_transforms([0.0], [-2.0]), fill_mode="wrap")[0], [2, 0, 0])
    np.testing.assert_array_equal(run(translation_transforms([0.0], [-1.0]), fill_mode="wrap")[0], [1, 2, 0])


def test_half_pixel_translation_is_the_average_and_zoom_keeps_the_centre():
    y = run(translation_transforms([0.0], [0.5]), fill_mode="nearest")
    np.testing.assert_allclose(y[0], [0, 0.5, 1.5])
    z = run(zoom_transforms([0.5], [0.5], 3, 3))  # zoom in 2x: centre fixed, neighbours halfway
    np.testing.assert_allclose(z, [[2, 2.5, 3], [3.5, 4, 4.5], [5, 5.5, 6]])


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_gradient(fill_mode, interpolation):
    x = RNG.standard_normal((2, 4, 5, 2))
    t = np.concatenate([rotation_transforms([0.3], 4, 5), zoom_transforms([1.3], [0.8], 4, 5)])
    check_grad(lambda v: affine_transform_forward(v, t, interpolation, fill_mode, 0.5), affine_transform_backward, x)


def test_contrast_and_brightness_values_and_gradients():
    x = np.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 2, 2, 1)
    y, _ = contrast_forward(x, [2.0], (0, 255))  # mean 25: 25 + 2 * (x - 25)
    np.testing.assert_allclose(y[0, :, :, 0], [[0, 15], [35, 55]])  # -5 clipped to 0
    y, _ = brightness_forward(x, [220.0], (0, 255))
    np.testing.assert_allclose(y[0, :, :, 0], [[230, 240], [250, 255]])
    x = RNG.uniform(0.1, 0.9, (2, 3, 3, 2))
    check_grad(lambda v: contrast_forward(v, [1.5, 0.5], (0, 1.2)), contrast_backward, x)
    check_grad(lambda v: brightness_forward(v, [0.2, -0.3], (0, 1)), brightness_backward, x)
