"""Global pooling, reshape, rescale and Keras's ReLU as pure ops: gradient checks in float64,
loop references and hand-made answers."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from convolab.nn import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    relu_backward,
    relu_forward,
    rescale_backward,
    rescale_forward,
    reshape_backward,
    reshape_forward,
    resolve_target_shape,
)
from support.gradcheck import numerical_gradient, rel_error

TOL = 1e-7


def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


def _distinct(rng, shape):
    """Values at least 0.3 apart, so a 1e-6 step never changes which one is the max."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.3 - 0.15 * size).reshape(shape)


def check_op(forward, backward, x, rng, tol=TOL):
    """Backward against central differences of ``sum(forward(x) * dy)``; ``dy`` left untouched."""
    y, cache = forward(x)
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = backward(dy, cache)
    np.testing.assert_array_equal(dy, dy_before)  # backward never writes into its dy
    assert dx.shape == x.shape and dx.dtype == np.float64
    num = numerical_gradient(lambda v: forward(v)[0], x.copy(), dy)
    assert np.abs(num).max() > 0
    err = rel_error(dx, num)
    assert err < tol, f"relative error {err:.2e}"
    return dx


# ---------------------------------------------------------------------------
# global pooling
# ---------------------------------------------------------------------------

_GP_SHAPES = [(1, 1, 1, 1), (2, 3, 4, 1), (1, 5, 5, 3), (3, 2, 7, 2), (2, 1, 6, 4), (4, 4, 1, 2)]
_GP_CASES = list(itertools.product(["avg", "max"], _GP_SHAPES, [False, True]))
_GP_FORWARD = {"avg": global_avg_pool_forward, "max": global_max_pool_forward}
_GP_BACKWARD = {"avg": global_avg_pool_backward, "max": global_max_pool_backward}


def _gp_id(case):
    kind, shape, keep = case
    return f"{kind}-{'x'.join(map(str, shape))}-keep{int(keep)}"


def global_pool_ref(x, kind):
    """Loop over samples and channels: mean or max of the ``H * W`` values."""
    n_, _, _, c_ = x.shape
    out = np.empty((n_, c_))
    for n in range(n_):
        for c in range(c_):
            vals = list(x[n, :, :, c].ravel())
            out[n, c] = max(vals) if kind == "max" else sum(vals) / len(vals)
    return out


@pytest.mark.parametrize("case", _GP_CASES, ids=_gp_id)
def test_global_pool_forward_matches_loop_and_gradient(case):
    kind, shape, keepdims = case
    rng = _rng(_gp_id(case))
    x = _distinct(rng, shape) if kind == "max" else rng.standard_normal(shape)
    y, _ = _GP_FORWARD[kind](x, keepdims)
    n, _, _, c = shape
    assert y.shape == ((n, 1, 1, c) if keepdims else (n, c))
    np.testing.assert_allclose(y.reshape(n, c), global_pool_ref(x, kind), rtol=1e-13, atol=1e-13)
    dx = check_op(lambda v: _GP_FORWARD[kind](v, keepdims), _GP_BACKWARD[kind], x, rng)
    assert dx.flags.c_contiguous


def test_global_pool_hand_values():
    # channel 0 holds 1..4, channel 1 holds 10, 20, 30, 40 (a 2x2 image)
    x = np.stack([np.arange(1.0, 5.0).reshape(2, 2), 10 * np.arange(1.0, 5.0).reshape(2, 2)], axis=-1)[None]
    avg, cache = global_avg_pool_forward(x)
    np.testing.assert_array_equal(avg, [[2.5, 25.0]])
    np.testing.assert_array_equal(global_avg_pool_backward(np.array([[4.0, 8.0]]), cache)[0, :, :, 0], np.ones((2, 2)))
    mx, cache = global_max_pool_forward(x, keepdims=True)
    np.testing.assert_array_equal(mx, [[[[4.0, 40.0]]]])
    dx = global_max_pool_backward(np.array([[[[1.0, -2.0]]]]), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0], [0, 1.0]])
    np.testing.assert_array_equal(dx[0, :, :, 1], [[0, 0], [0, -2.0]])


def test_global_max_ties_route_to_the_first_maximum_in_row_major_order():
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 2, 0] = x[0, 2, 0, 0] = 5.0  # two equal maxima: (1, 2) comes first
    y, cache = global_max_pool_forward(x)
    assert y[0, 0] == 5.0
    dx = global_max_pool_backward(np.array([[1.0]]), cache)
    assert dx[0, 1, 2, 0] == 1.0 and dx.sum() == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_pool_keeps_dtype(dtype):
    x = _rng("gp-dtype").standard_normal((2, 3, 3, 2)).astype(dtype)
    for kind in ("avg", "max"):
        y, cache = _GP_FORWARD[kind](x)
        assert y.dtype == dtype
        assert _GP_BACKWARD[kind](np.ones_like(y), cache).dtype == dtype


# ---------------------------------------------------------------------------
# reshape
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "in_shape,target,out",
    [
        ((12,), (3, 4), (3, 4)),
        ((12,), (-1, 2, 2), (3, 2, 2)),
        ((4, 4, 3), (-1,), (48,)),
        ((4, 4, 3), (16, -1), (16, 3)),
        ((2, 3), (3, 2), (3, 2)),
        ((None, 3), (-1, 3), (None, 3)),
        ((None, 3), (3, 2), (3, 2)),
        ((7,), (7, 1, 1), (7, 1, 1)),
    ],
)
def test_resolve_target_shape_as_keras(in_shape, target, out):
    assert resolve_target_shape(in_shape, target) == out


@pytest.mark.parametrize(
    "in_shape,target,match",
    [
        ((12,), (5, 2), "total size"),
        ((12,), (-1, 5), "not a multiple"),
        ((12,), (-1, -1), "at most one -1"),
    ],
)
def test_resolve_target_shape_errors(in_shape, target, match):
    with pytest.raises(ValueError, match=match):
        resolve_target_shape(in_shape, target)


@pytest.mark.parametrize(
    "x_shape,target", [((2, 12), (3, 4)), ((3, 2, 2, 3), (-1,)), ((1, 6), (1, 2, 3)), ((2, 4, 3), (3, -1))]
)
def test_reshape_is_c_order_and_gradient(x_shape, target):
    rng = _rng(f"reshape-{x_shape}-{target}")
    x = rng.standard_normal(x_shape)
    y, _ = reshape_forward(x, target)
    np.testing.assert_array_equal(y.ravel(), x.ravel())  # C order, every sample in place
    assert y.shape[0] == x.shape[0]
    check_op(lambda v: reshape_forward(v, target), reshape_backward, x, rng)


def test_reshape_hand_values():
    x = np.arange(8.0).reshape(2, 4)
    y, cache = reshape_forward(x, (2, 2))
    np.testing.assert_array_equal(y, [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    np.testing.assert_array_equal(reshape_backward(y * 10, cache), x * 10)


# ---------------------------------------------------------------------------
# rescale
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale,offset", [(1 / 255, 0.0), (1 / 127.5, -1.0), (-2.0, 0.5), (0.0, 3.0)])
def test_rescale_values_and_gradient(scale, offset):
    rng = _rng(f"rescale-{scale}-{offset}")
    x = rng.standard_normal((3, 4, 2))
    y, _ = rescale_forward(x, scale, offset)
    np.testing.assert_allclose(y, x * scale + offset, rtol=1e-15, atol=1e-15)
    if scale != 0:
        check_op(lambda v: rescale_forward(v, scale, offset), rescale_backward, x, rng)
    else:
        dy = rng.standard_normal(x.shape)
        np.testing.assert_array_equal(rescale_backward(dy, rescale_forward(x, scale, offset)[1]), np.zeros_like(x))


def test_rescale_hand_values_and_float32():
    x = np.array([[0.0, 127.5, 255.0]], dtype=np.float32)
    y, _ = rescale_forward(x, 1 / 127.5, -1.0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[-1.0, 0.0, 1.0]])
    y, _ = rescale_forward(x, 1 / 255)
    np.testing.assert_array_equal(y, x * np.float32(1 / 255))


# ---------------------------------------------------------------------------
# Keras's ReLU
# ---------------------------------------------------------------------------


def keras_relu_ref(v, negative_slope, max_value, threshold):
    """Keras 3's ``ReLU.static_call`` for one number, written out."""
    negative_part = max(threshold - v, 0.0) if negative_slope else 0.0
    pos = v if v > threshold else 0.0
    if max_value is not None:
        pos = min(max(pos, 0.0), max_value)
    return pos - negative_slope * negative_part


_RELU_CASES = [
    (0.0, None, 0.0),
    (0.2, None, 0.0),
    (0.0, 0.8, 0.0),
    (0.0, None, 0.3),
    (0.1, 1.0, 0.25),
    (0.3, 0.5, 1.0),
    (0.5, 6.0, 0.0),
    (0.0, 0.0, 0.0),
]


@pytest.mark.parametrize("negative_slope,max_value,threshold", _RELU_CASES)
def test_relu_op_matches_keras_and_gradient(negative_slope, max_value, threshold):
    rng = _rng(f"relu-{negative_slope}-{max_value}-{threshold}")
    x = rng.uniform(-2.0, 2.0, (4, 6))
    for kink in (threshold, max_value):
        if kink is not None:
            x[np.abs(x - kink) < 1e-3] += 2e-3  # keep the central difference off the kinks
    fwd = lambda v: relu_forward(v, negative_slope, max_value, threshold)  # noqa: E731
    y, _ = fwd(x)
    ref = np.vectorize(lambda v: keras_relu_ref(v, negative_slope, max_value, threshold))(x)
    np.testing.assert_allclose(y, ref, rtol=1e-15, atol=1e-15)
    if max_value == 0.0:
        assert not y.any()
    else:
        check_op(fwd, relu_backward, x, rng)


def test_relu_cap_below_threshold_keeps_the_negative_slope():
    # max_value < threshold: below the threshold the output is negative, never capped, so its
    # gradient is the slope (an earlier version zeroed it wherever x >= max_value).
    y, cache = relu_forward(np.array([0.7, 1.5]), negative_slope=0.3, max_value=0.5, threshold=1.0)
    np.testing.assert_allclose(y, [0.3 * (0.7 - 1.0), 0.5])
    np.testing.assert_allclose(relu_backward(np.ones(2), cache), [0.3, 0.0])


def test_relu_gives_positive_zero_any_rank():
    y, _ = relu_forward(np.array([-1.0, 2.0]))
    assert not np.signbit(y).any()
    y0, _ = relu_forward(np.array(-3.0))
    assert y0.shape == () and y0 == 0
