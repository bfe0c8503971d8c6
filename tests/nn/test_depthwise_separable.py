"""depthwise_conv2d_* and separable_conv2d_* against loop references, central differences and hand-made inputs."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from convolab.nn import (
    depthwise_conv2d_backward,
    depthwise_conv2d_forward,
    separable_conv2d_backward,
    separable_conv2d_forward,
)
from support.conv_refs import depthwise_conv_ref, separable_conv_ref
from support.gradcheck import numerical_gradient, rel_error

# strides, padding, kernel, dilation, depth_multiplier, (H, W), C, F (separable), N
CASES = [
    ((1, 1), "valid", (3, 3), (1, 1), 1, (6, 7), 3, 4, 2),
    ((1, 1), "same", (3, 3), (1, 1), 2, (5, 6), 2, 3, 1),
    ((2, 2), "same", (3, 3), (1, 1), 1, (6, 6), 4, 2, 2),  # even size, stride 2: the odd pixel after
    ((2, 1), "valid", (2, 3), (1, 1), 3, (7, 6), 2, 5, 1),
    ((1, 2), "same", (2, 2), (1, 1), 1, (5, 7), 1, 2, 2),  # one channel: an ordinary conv
    ((1, 1), "valid", (3, 3), (2, 2), 2, (7, 7), 2, 3, 1),
    ((1, 1), "same", (2, 2), (3, 3), 1, (6, 5), 3, 2, 2),  # dilated span 4: odd pixel after
    ((1, 1), "same", (3, 2), (2, 3), 2, (4, 5), 2, 4, 1),
    ((3, 3), "same", (1, 1), (1, 1), 4, (7, 5), 2, 3, 1),
]


def _id(case):
    s, p, k, d, dm, hw, c, f, n = case
    return f"s{s[0]}x{s[1]}-{p}-k{k[0]}x{k[1]}-d{d[0]}x{d[1]}-dm{dm}-{hw[0]}x{hw[1]}-c{c}f{f}n{n}"


def _arrays(case):
    s, p, k, d, dm, (h, w_), c, f, n = case
    rng = np.random.default_rng(zlib.crc32(_id(case).encode()))
    return (
        rng.standard_normal((n, h, w_, c)),
        rng.standard_normal(k + (c, dm)),
        rng.standard_normal((1, 1, c * dm, f)),
        rng.standard_normal(c * dm),
        rng.standard_normal(f),
    )


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("use_bias", [True, False])
def test_depthwise_forward_matches_loop_reference(case, use_bias):
    s, p, k, d = case[:4]
    x, w, _, b, _ = _arrays(case)
    b = b if use_bias else None
    y, _ = depthwise_conv2d_forward(x, w, b, s, p, d)
    ref = depthwise_conv_ref(x, w, b, s, p, d)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("use_bias", [True, False])
def test_separable_forward_matches_loop_reference(case, use_bias):
    s, p, k, d = case[:4]
    x, dw, pw, _, b = _arrays(case)
    b = b if use_bias else None
    y, _ = separable_conv2d_forward(x, dw, pw, b, s, p, d)
    ref = separable_conv_ref(x, dw, pw, b, s, p, d)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_depthwise_gradients_match_central_differences(case):
    s, p, k, d = case[:4]
    x, w, _, b, _ = _arrays(case)
    y, cache = depthwise_conv2d_forward(x, w, b, s, p, d)
    dy = np.random.default_rng(5).standard_normal(y.shape)
    dy_before = dy.copy()
    dx, dw, db = depthwise_conv2d_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before)
    assert dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx, numerical_gradient(lambda v: depthwise_conv2d_forward(v, w, b, s, p, d)[0], x, dy)) < 1e-7
    assert rel_error(dw, numerical_gradient(lambda v: depthwise_conv2d_forward(x, v, b, s, p, d)[0], w, dy)) < 1e-7
    assert rel_error(db, numerical_gradient(lambda v: depthwise_conv2d_forward(x, w, v, s, p, d)[0], b, dy)) < 1e-7


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_separable_gradients_match_central_differences(case):
    s, p, k, d = case[:4]
    x, dwk, pwk, _, b = _arrays(case)
    y, cache = separable_conv2d_forward(x, dwk, pwk, b, s, p, d)
    dy = np.random.default_rng(6).standard_normal(y.shape)
    dy_before = dy.copy()
    dx, ddw, dpw, db = separable_conv2d_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before)

    def f(x_=x, dw_=dwk, pw_=pwk, b_=b):
        return separable_conv2d_forward(x_, dw_, pw_, b_, s, p, d)[0]

    assert rel_error(dx, numerical_gradient(lambda v: f(x_=v), x, dy)) < 1e-7
    assert rel_error(ddw, numerical_gradient(lambda v: f(dw_=v), dwk, dy)) < 1e-7
    assert rel_error(dpw, numerical_gradient(lambda v: f(pw_=v), pwk, dy)) < 1e-7
    assert rel_error(db, numerical_gradient(lambda v: f(b_=v), b, dy)) < 1e-7


def test_depthwise_need_dx_false_skips_only_the_input_gradient():
    x, w, _, b, _ = _arrays(CASES[1])
    y, cache = depthwise_conv2d_forward(x, w, b, (1, 1), "same")
    dy = np.ones_like(y)
    dx, dw, db = depthwise_conv2d_backward(dy, cache, need_dx=False)
    _, dw2, db2 = depthwise_conv2d_backward(dy, cache)
    assert dx is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_depthwise_channel_order_from_hand_made_input():
    # channel c holds c + 1 everywhere, filter m of every channel is all (m + 1): a valid 3x3 window
    # sums 9 * (c + 1) * (m + 1), found at output channel c * dm + m (TensorFlow's order)
    c, dm = 3, 2
    x = np.broadcast_to(np.arange(1.0, c + 1), (1, 4, 5, c)).copy()
    w = np.broadcast_to(np.arange(1.0, dm + 1), (3, 3, c, dm)).copy()
    y, _ = depthwise_conv2d_forward(x, w, None)
    assert y.shape == (1, 2, 3, c * dm)
    np.testing.assert_array_equal(y[0, 1, 2], [9, 18, 18, 36, 27, 54])


def test_depthwise_same_padding_counts_the_pixels_inside():
    # all-ones image and kernel: each output is how many of its 3x3 window's pixels lie inside
    y, _ = depthwise_conv2d_forward(np.ones((1, 3, 3, 2)), np.ones((3, 3, 2, 1)), None, padding="same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    np.testing.assert_array_equal(y[0, :, :, 0], y[0, :, :, 1])


def test_separable_from_hand_made_input():
    # depthwise 2x2 ones over channels holding 1 and 2 gives 4 and 8; the pointwise kernel
    # [[1, 0, 1], [0, 1, 1]] then gives 4, 8 and 12, plus the bias
    x = np.broadcast_to(np.array([1.0, 2.0]), (1, 2, 2, 2)).copy()
    pw = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]).reshape(1, 1, 2, 3)
    y, _ = separable_conv2d_forward(x, np.ones((2, 2, 2, 1)), pw, np.array([0.5, 0.0, -1.0]))
    np.testing.assert_array_equal(y.reshape(-1), [4.5, 8.0, 11.0])
