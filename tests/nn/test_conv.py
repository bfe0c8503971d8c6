"""conv2d_forward / conv2d_backward / im2col / col2im against independent references."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from convolab.nn import col2im, conv2d_backward, conv2d_forward, im2col
from support.gradcheck import explicit_padding, numerical_gradient, pair, rel_error


def conv_ref(x, w, b, strides, padding):
    """Plain loop convolution (cross-correlation) with explicit zero padding."""
    n_, h, w_, c = x.shape
    kh, kw, c2, f = w.shape
    assert c == c2
    sh, sw = strides
    ho, top, bottom = explicit_padding(h, kh, sh, padding)
    wo, left, right = explicit_padding(w_, kw, sw, padding)
    xpad = np.zeros((n_, h + top + bottom, w_ + left + right, c), dtype=np.float64)
    xpad[:, top : top + h, left : left + w_, :] = x
    y = np.zeros((n_, ho, wo, f), dtype=np.float64)
    for n in range(n_):
        for i in range(ho):
            for j in range(wo):
                acc = np.zeros(f)
                for di in range(kh):
                    for dj in range(kw):
                        acc += xpad[n, i * sh + di, j * sw + dj, :] @ w[di, dj]
                y[n, i, j] = acc + (0.0 if b is None else b)
    return y


# ---------------------------------------------------------------------------
# (a) forward against the loop reference over a case table
# ---------------------------------------------------------------------------

_STRIDES = [1, 2, 3, (1, 2)]
_PADDINGS = ["valid", "same"]
_KERNELS = [1, 2, 3, 5, (2, 3)]
_SIZES = [(7, 5), (6, 8)]  # odd and even
_CFN = list(itertools.product([1, 3], [1, 4], [1, 3]))  # channels, filters, batch


def _forward_cases():
    cases = []
    for i, (s, p, k, hw) in enumerate(itertools.product(_STRIDES, _PADDINGS, _KERNELS, _SIZES)):
        c, f, n = _CFN[i % len(_CFN)]
        cases.append((pair(s), p, pair(k), hw, c, f, n))
    # 'same' with a kernel larger than the image, and tiny odd/even images.
    for i, (s, k, hw) in enumerate(itertools.product([1, 2, (1, 2)], [5, (2, 3)], [(3, 4), (2, 2)])):
        c, f, n = _CFN[(i * 3) % len(_CFN)]
        cases.append((pair(s), "same", pair(k), hw, c, f, n))
    return cases


_FORWARD_CASES = _forward_cases()


def _case_id(case):
    s, p, k, hw, c, f, n = case
    return f"s{s[0]}x{s[1]}-{p}-k{k[0]}x{k[1]}-{hw[0]}x{hw[1]}-c{c}f{f}n{n}"


@pytest.mark.parametrize("case", _FORWARD_CASES, ids=_case_id)
def test_conv_forward_matches_loop_reference(case):
    strides, padding, k, (h, w_), c, f, n = case
    rng = np.random.default_rng(zlib.crc32(_case_id(case).encode()))
    x = rng.standard_normal((n, h, w_, c))
    w = rng.standard_normal((k[0], k[1], c, f))
    b = rng.standard_normal(f)
    y, _ = conv2d_forward(x, w, b, strides, padding)
    ref = conv_ref(x, w, b, strides, padding)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv_forward_without_bias_matches_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 5, 3))
    w = rng.standard_normal((3, 2, 3, 4))
    y, _ = conv2d_forward(x, w, None, (2, 1), "same")
    np.testing.assert_allclose(y, conv_ref(x, w, None, (2, 1), "same"), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# (b) gradient checks
# ---------------------------------------------------------------------------

_GRAD_CASES = [
    # strides, padding, kernel, (H, W), C, F, N
    ((1, 1), "valid", (3, 3), (5, 5), 2, 3, 2),
    ((2, 2), "same", (3, 3), (5, 6), 2, 2, 2),
    ((1, 2), "same", (2, 3), (4, 5), 3, 2, 1),
    ((3, 3), "valid", (2, 2), (7, 7), 1, 2, 2),
    ((2, 2), "same", (5, 5), (4, 4), 2, 1, 1),  # kernel larger than the image
    ((1, 1), "same", (2, 2), (4, 3), 1, 1, 3),  # odd padding pixel at bottom/right
    ((3, 3), "same", (1, 1), (5, 5), 2, 2, 1),  # stride > kernel: some pixels unused
    ((2, 3), "valid", (1, 2), (5, 7), 2, 3, 2),
]


@pytest.mark.parametrize("case", _GRAD_CASES, ids=_case_id)
def test_conv_backward_matches_numerical_gradient(case):
    strides, padding, k, (h, w_), c, f, n = case
    rng = np.random.default_rng(zlib.crc32(_case_id(case).encode()))
    x = rng.standard_normal((n, h, w_, c))
    w = rng.standard_normal((k[0], k[1], c, f))
    b = rng.standard_normal(f)
    y, cache = conv2d_forward(x, w, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)

    ndx = numerical_gradient(lambda v: conv2d_forward(v, w, b, strides, padding)[0], x.copy(), dy)
    ndw = numerical_gradient(lambda v: conv2d_forward(x, v, b, strides, padding)[0], w.copy(), dy)
    ndb = numerical_gradient(lambda v: conv2d_forward(x, w, v, strides, padding)[0], b.copy(), dy)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx, ndx) < 1e-6
    assert rel_error(dw, ndw) < 1e-6
    assert rel_error(db, ndb) < 1e-6


def test_conv_backward_need_dx_false_gives_same_weight_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 5, 2))
    w = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal(3)
    y, cache = conv2d_forward(x, w, b, (2, 2), "same")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache, need_dx=True)
    dx2, dw2, db2 = conv2d_backward(dy, cache, need_dx=False)
    assert dx2 is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), rtol=1e-12)


def test_conv_backward_skipped_pixels_get_zero_gradient():
    # 1x1 kernel, stride 2, valid: pixels at odd rows/cols are never read.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 5, 5, 1))
    w = np.full((1, 1, 1, 1), 2.0)
    y, cache = conv2d_forward(x, w, None, (2, 2), "valid")
    dy = np.ones_like(y)
    dx, _, _ = conv2d_backward(dy, cache)
    expected = np.zeros((5, 5))
    expected[::2, ::2] = 2.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


# ---------------------------------------------------------------------------
# (c) exact answers from hand-made inputs
# ---------------------------------------------------------------------------


def test_all_ones_kernel_gives_window_sums():
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    w = np.ones((2, 2, 1, 1))
    y, _ = conv2d_forward(x, w, None, (1, 1), "valid")
    # window sum at (i, j) = 16 i + 4 j + 10
    np.testing.assert_array_equal(y[0, :, :, 0], [[10, 14, 18], [26, 30, 34], [42, 46, 50]])
    y2, _ = conv2d_forward(x, w, None, (2, 2), "valid")
    np.testing.assert_array_equal(y2[0, :, :, 0], [[10, 18], [42, 50]])


def test_all_ones_kernel_sums_over_channels_and_filters_are_separate():
    x = np.zeros((1, 4, 4, 2))
    x[..., 0] = np.arange(16).reshape(4, 4)
    x[..., 1] = 100.0
    w = np.ones((2, 2, 2, 2))
    w[..., 1] = 2.0  # second filter doubles
    b = np.array([0.0, 1.0])
    y, _ = conv2d_forward(x, w, b, (2, 2), "valid")
    base = np.array([[10, 18], [42, 50]]) + 400
    np.testing.assert_array_equal(y[0, :, :, 0], base)
    np.testing.assert_array_equal(y[0, :, :, 1], 2 * base + 1)


def test_vertical_edge_filter():
    # Bright (10) left half, dark (0) right half: the lesson's vertical edge.
    img = np.zeros((6, 6))
    img[:, :3] = 10.0
    x = img.reshape(1, 6, 6, 1)
    k = np.array([[-1.0, 0.0, 1.0]] * 3)
    w = k.reshape(3, 3, 1, 1)
    y, _ = conv2d_forward(x, w, None, (1, 1), "valid")
    np.testing.assert_array_equal(y[0, :, :, 0], np.tile([0.0, -30.0, -30.0, 0.0], (4, 1)))


def test_same_conv_ones_3x3():
    x = np.ones((1, 3, 3, 1))
    w = np.ones((3, 3, 1, 1))
    y, _ = conv2d_forward(x, w, None, (1, 1), "same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


def test_same_padding_puts_odd_pixel_bottom_right():
    # 2x2 kernel, stride 1, 'same' on 4x4: one row/col of padding, after the image.
    x = np.arange(1, 17, dtype=np.float64).reshape(1, 4, 4, 1)
    top_left = np.zeros((2, 2, 1, 1))
    top_left[0, 0] = 1.0
    y, _ = conv2d_forward(x, top_left, None, (1, 1), "same")
    np.testing.assert_array_equal(y, x)  # no padding before: output pixel (i,j) reads x[i,j]
    bottom_right = np.zeros((2, 2, 1, 1))
    bottom_right[1, 1] = 1.0
    y, _ = conv2d_forward(x, bottom_right, None, (1, 1), "same")
    expected = np.zeros((4, 4))
    expected[:3, :3] = x[0, 1:, 1:, 0]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_rectangular_stride_picks_columns():
    x = np.arange(12, dtype=np.float64).reshape(1, 3, 4, 1)
    w = np.ones((1, 1, 1, 1))
    y, _ = conv2d_forward(x, w, None, (1, 2), "valid")
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 2], [4, 6], [8, 10]])


def test_kernel_is_cross_correlation_not_flipped():
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    w = np.zeros((3, 3, 1, 1))
    w[0, 0] = 1.0
    y, _ = conv2d_forward(x, w, None, (1, 1), "valid")
    assert y.reshape(()) == 0.0  # the top-left pixel, not the bottom-right (8)


# ---------------------------------------------------------------------------
# (d) im2col rows are windows; col2im is its adjoint
# ---------------------------------------------------------------------------

_IM2COL_CASES = [
    ((1, 1), "valid", (3, 3), (5, 5), 2, 2),
    ((2, 2), "same", (3, 3), (5, 6), 3, 1),
    ((1, 2), "same", (2, 3), (4, 5), 1, 2),
    ((3, 3), "same", (2, 2), (7, 8), 2, 1),
    ((2, 1), "valid", (1, 2), (6, 3), 2, 2),
    ((1, 1), "same", (5, 5), (3, 4), 1, 1),
    ((3, 2), "same", (1, 1), (5, 5), 3, 2),
]


def _im2col_id(case):
    s, p, k, hw, c, n = case
    return f"s{s[0]}x{s[1]}-{p}-k{k[0]}x{k[1]}-{hw[0]}x{hw[1]}-c{c}n{n}"


@pytest.mark.parametrize("case", _IM2COL_CASES, ids=_im2col_id)
def test_im2col_rows_are_flattened_windows(case):
    strides, padding, k, (h, w_), c, n = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, h, w_, c))
    cols, out_hw = im2col(x, k, strides, padding)
    ho, top, bottom = explicit_padding(h, k[0], strides[0], padding)
    wo, left, right = explicit_padding(w_, k[1], strides[1], padding)
    assert tuple(out_hw) == (ho, wo)
    xpad = np.zeros((n, h + top + bottom, w_ + left + right, c))
    xpad[:, top : top + h, left : left + w_] = x
    expected = np.empty((n * ho * wo, k[0] * k[1] * c))
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                r0, c0 = i * strides[0], j * strides[1]
                expected[(b * ho + i) * wo + j] = xpad[b, r0 : r0 + k[0], c0 : c0 + k[1], :].reshape(-1)
    np.testing.assert_array_equal(cols, expected)


@pytest.mark.parametrize("case", _IM2COL_CASES, ids=_im2col_id)
def test_col2im_is_adjoint_of_im2col(case):
    strides, padding, k, (h, w_), c, n = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, h, w_, c))
    cols, _ = im2col(x, k, strides, padding)
    cm = rng.standard_normal(cols.shape)
    back = col2im(cm, x.shape, k, strides, padding)
    assert back.shape == x.shape
    lhs = np.sum(cols * cm)
    rhs = np.sum(x * back)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_col2im_counts_window_overlaps():
    # col2im of all-ones rows: each pixel gets the number of windows that cover it.
    cols, _ = im2col(np.zeros((1, 4, 4, 1)), (2, 2), (1, 1), "valid")
    counts = col2im(np.ones_like(cols), (1, 4, 4, 1), (2, 2), (1, 1), "valid")
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(counts[0, :, :, 0], expected)


# ---------------------------------------------------------------------------
# (e) dtypes and no writes into the caller's arrays
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_float32_in_float32_out(padding):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y, cache = conv2d_forward(x, w, b, (2, 2), padding)
    assert y.dtype == np.float32
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = conv2d_backward(dy, cache)
    assert dx.dtype == np.float32 and dw.dtype == np.float32 and db.dtype == np.float32
    ref = conv_ref(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (2, 2), padding)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_backward_does_not_modify_dy_and_forward_does_not_modify_inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, 2))
    w = rng.standard_normal((3, 2, 2, 3))
    b = rng.standard_normal(3)
    x0, w0, b0 = x.copy(), w.copy(), b.copy()
    y, cache = conv2d_forward(x, w, b, (1, 2), "same")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(b, b0)
    dy = rng.standard_normal(y.shape)
    dy0 = dy.copy()
    conv2d_backward(dy, cache)
    np.testing.assert_array_equal(dy, dy0)
    np.testing.assert_array_equal(w, w0)
