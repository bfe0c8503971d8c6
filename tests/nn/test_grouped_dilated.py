"""conv2d_forward/backward with dilation_rate and groups against a loop reference and central differences."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from convolab.nn import conv2d_backward, conv2d_forward
from convolab.utils.conv_utils import conv_output_size, padding_amounts
from support.conv_refs import grouped_conv_ref
from support.gradcheck import numerical_gradient, rel_error

# strides, padding, kernel, dilation, groups, (H, W), C, F, N
CASES = [
    ((1, 1), "valid", (3, 3), (2, 2), 1, (7, 7), 2, 3, 2),
    ((1, 1), "same", (3, 3), (2, 2), 1, (7, 6), 2, 3, 1),
    ((1, 1), "same", (2, 2), (3, 3), 1, (6, 7), 1, 2, 2),  # span 4: the odd pixel after
    ((1, 1), "valid", (2, 3), (1, 2), 2, (6, 8), 4, 6, 1),
    ((1, 1), "same", (3, 2), (2, 1), 2, (5, 6), 4, 2, 2),
    ((2, 2), "same", (3, 3), (1, 1), 2, (6, 6), 4, 4, 1),  # stride 2, even size: odd pixel after
    ((2, 1), "valid", (3, 3), (1, 1), 3, (7, 6), 6, 3, 2),
    ((1, 2), "same", (2, 2), (1, 1), 4, (5, 7), 4, 8, 1),
    ((3, 3), "same", (1, 1), (1, 1), 2, (7, 5), 2, 4, 2),
    ((1, 1), "same", (3, 3), (3, 2), 3, (4, 5), 3, 6, 1),  # the span is larger than the image
]


def _id(case):
    s, p, k, d, g, hw, c, f, n = case
    return f"s{s[0]}x{s[1]}-{p}-k{k[0]}x{k[1]}-d{d[0]}x{d[1]}-g{g}-{hw[0]}x{hw[1]}-c{c}f{f}n{n}"


def _arrays(case):
    s, p, k, d, g, (h, w_), c, f, n = case
    rng = np.random.default_rng(zlib.crc32(_id(case).encode()))
    return rng.standard_normal((n, h, w_, c)), rng.standard_normal(k + (c // g, f)), rng.standard_normal(f)


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("use_bias", [True, False])
def test_forward_matches_loop_reference(case, use_bias):
    s, p, k, d, g = case[:5]
    x, w, b = _arrays(case)
    b = b if use_bias else None
    y, _ = conv2d_forward(x, w, b, s, p, d, g)
    ref = grouped_conv_ref(x, w, b, s, p, d, g)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_gradients_match_central_differences(case):
    s, p, k, d, g = case[:5]
    x, w, b = _arrays(case)
    y, cache = conv2d_forward(x, w, b, s, p, d, g)
    dy = np.random.default_rng(7).standard_normal(y.shape)
    dy_before = dy.copy()
    dx, dw, db = conv2d_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before)  # backward never writes into dy
    assert rel_error(dx, numerical_gradient(lambda v: conv2d_forward(v, w, b, s, p, d, g)[0], x, dy)) < 1e-7
    assert rel_error(dw, numerical_gradient(lambda v: conv2d_forward(x, v, b, s, p, d, g)[0], w, dy)) < 1e-7
    assert rel_error(db, numerical_gradient(lambda v: conv2d_forward(x, w, v, s, p, d, g)[0], b, dy)) < 1e-7


@pytest.mark.parametrize("case", CASES[:6], ids=_id)
def test_float32_matches_float64(case):
    s, p, k, d, g = case[:5]
    x, w, b = _arrays(case)
    y64, c64 = conv2d_forward(x, w, b, s, p, d, g)
    y32, c32 = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), s, p, d, g)
    assert y32.dtype == np.float32 and rel_error(y32, y64) < 1e-5
    dy = np.random.default_rng(3).standard_normal(y64.shape)
    for g32, g64 in zip(conv2d_backward(dy.astype(np.float32), c32), conv2d_backward(dy, c64)):
        assert g32.dtype == np.float32 and rel_error(g32, g64) < 1e-5


def test_dilated_sums_from_a_hand_made_image():
    # x[i, j] = 5i + j; a 2x2 all-ones kernel with dilation 2 adds x at (i, j), (i, j+2), (i+2, j), (i+2, j+2)
    x = np.arange(25, dtype=np.float64).reshape(1, 5, 5, 1)
    y, _ = conv2d_forward(x, np.ones((2, 2, 1, 1)), None, (1, 1), "valid", (2, 2))
    i, j = np.mgrid[0:3, 0:3]
    np.testing.assert_array_equal(y[0, :, :, 0], 4 * (5 * i + j) + 24)


def test_dilated_same_padding_puts_the_odd_pixel_after():
    # a (1, 2) kernel with dilation 3 spans 4 pixels: 3 zeros of padding, 1 before and 2 after,
    # so output j sums the input at j - 1 and j + 2
    y, _ = conv2d_forward(np.ones((1, 1, 4, 1)), np.ones((1, 2, 1, 1)), None, (1, 1), "same", (1, 3))
    np.testing.assert_array_equal(y.ravel(), [1, 2, 1, 1])
    assert padding_amounts((1, 4), (1, 2), (1, 1), "same", (1, 3)) == ((0, 0), (1, 2))


def test_groups_sum_only_their_own_channels():
    x = np.broadcast_to(np.array([1.0, 2.0, 3.0, 4.0]), (1, 2, 2, 4)).copy()
    y, _ = conv2d_forward(x, np.ones((1, 1, 2, 4)), np.array([0.0, 0.5, 0.0, 0.5]), (1, 1), "valid", (1, 1), 2)
    np.testing.assert_array_equal(y[0, 0, 0], [3.0, 3.5, 7.0, 7.5])


@pytest.mark.parametrize(
    "size,kernel,stride,padding,dilation,expected",
    [
        (7, 3, 1, "valid", 2, 3),
        (7, 3, 1, "valid", 3, 1),
        (6, 3, 1, "valid", 3, 0),
        (7, 2, 1, "valid", 6, 1),
        (7, 2, 1, "valid", 7, 0),
        (7, 3, 1, "same", 3, 7),
        (7, 3, 2, "same", 1, 4),
        (9, 2, 1, "valid", 4, 5),
    ],
)
def test_output_size_uses_the_dilated_span(size, kernel, stride, padding, dilation, expected):
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected
