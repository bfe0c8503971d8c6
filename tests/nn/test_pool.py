"""max/avg pooling forward and backward against loop references and hand-made answers."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from convolab.nn import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from support.gradcheck import explicit_padding, numerical_gradient, pair, rel_error

_FORWARD = {"max": max_pool_forward, "avg": avg_pool_forward}
_BACKWARD = {"max": max_pool_backward, "avg": avg_pool_backward}


def pool_ref(x, kind, pool, strides, padding):
    """Loop pooling over the *real* pixels of each window (padding is never read)."""
    n_, h, w, c = x.shape
    ph, pw = pool
    sh, sw = strides
    ho, top, _ = explicit_padding(h, ph, sh, padding)
    wo, left, _ = explicit_padding(w, pw, sw, padding)
    y = np.empty((n_, ho, wo, c))
    for n in range(n_):
        for i in range(ho):
            r0 = i * sh - top
            rows = range(max(r0, 0), min(r0 + ph, h))
            for j in range(wo):
                c0 = j * sw - left
                cols = range(max(c0, 0), min(c0 + pw, w))
                for ch in range(c):
                    vals = [x[n, r, q, ch] for r in rows for q in cols]
                    y[n, i, j, ch] = max(vals) if kind == "max" else sum(vals) / len(vals)
    return y


def _distinct(rng, shape):
    """Values spaced at least 0.3 apart, so a 1e-6 step never changes which one is the max."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.3 - 0.15 * size).reshape(shape)


# ---------------------------------------------------------------------------
# forward against the loop reference
# ---------------------------------------------------------------------------

_FWD_CASES = [
    (pair(p), pair(s), pad, hw, 2 if i % 2 else 1, 1 + (i % 3 == 0))
    for i, (p, s, pad, hw) in enumerate(itertools.product([1, 2, 3], [1, 2, 3], ["valid", "same"], [(5, 5), (6, 7)]))
] + [
    ((2, 3), (1, 2), "same", (5, 6), 2, 2),
    ((3, 2), (2, 1), "valid", (7, 4), 1, 1),
    ((3, 3), (1, 1), "same", (2, 2), 1, 1),  # window larger than the image
]


def _id(case):
    p, s, pad, hw, c, n = case
    return f"p{p[0]}x{p[1]}-s{s[0]}x{s[1]}-{pad}-{hw[0]}x{hw[1]}-c{c}n{n}"


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", _FWD_CASES, ids=_id)
def test_pool_forward_matches_loop_reference(case, kind):
    pool, strides, padding, (h, w), c, n = case
    rng = np.random.default_rng(zlib.crc32(_id(case).encode()))
    x = rng.standard_normal((n, h, w, c))
    y, _ = _FORWARD[kind](x, pool, strides, padding)
    ref = pool_ref(x, kind, pool, strides, padding)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# gradient checks
# ---------------------------------------------------------------------------

_GRAD_CASES = [
    ((2, 2), (2, 2), "valid", (4, 4), 2, 2),
    ((2, 2), (2, 2), "same", (5, 5), 1, 2),
    ((3, 3), (1, 1), "same", (4, 5), 2, 1),  # overlapping
    ((3, 3), (2, 2), "valid", (7, 6), 1, 2),  # overlapping
    ((2, 3), (1, 2), "same", (5, 6), 2, 1),
    ((1, 1), (3, 3), "valid", (5, 5), 1, 1),  # stride > pool: skipped pixels
    ((3, 3), (3, 3), "same", (4, 4), 2, 1),
    ((2, 2), (3, 3), "same", (7, 7), 1, 1),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", _GRAD_CASES, ids=_id)
def test_pool_backward_matches_numerical_gradient(case, kind):
    pool, strides, padding, (h, w), c, n = case
    rng = np.random.default_rng(zlib.crc32((kind + _id(case)).encode()))
    shape = (n, h, w, c)
    x = _distinct(rng, shape) if kind == "max" else rng.standard_normal(shape)
    y, cache = _FORWARD[kind](x, pool, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx = _BACKWARD[kind](dy, cache)
    ndx = numerical_gradient(lambda v: _FORWARD[kind](v, pool, strides, padding)[0], x.copy(), dy)
    assert dx.shape == x.shape
    assert rel_error(dx, ndx) < 1e-6


# ---------------------------------------------------------------------------
# exact answers
# ---------------------------------------------------------------------------


def test_max_pool_4x4_arange():
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    y, cache = max_pool_forward(x, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 7], [13, 15]])
    dx = max_pool_backward(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1), cache)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_avg_pool_4x4_arange():
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    y, cache = avg_pool_forward(x, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    dx = avg_pool_backward(np.array([[4.0, 8.0], [12.0, 16.0]]).reshape(1, 2, 2, 1), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], np.kron([[1, 2], [3, 4]], np.ones((2, 2))))


@pytest.mark.parametrize("pool", [2, 3])
def test_avg_pool_same_on_ones_is_ones(pool):
    x = np.ones((1, 3, 3, 2))
    y, _ = avg_pool_forward(x, (pool, pool), (1, 1), "same")
    np.testing.assert_array_equal(y, np.ones((1, 3, 3, 2)))


def test_avg_pool_same_excludes_padding_and_pads_bottom_right():
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    y, cache = avg_pool_forward(x, (2, 2), (2, 2), "same")
    # windows {0,1,3,4}, {2,5}, {6,7}, {8}
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.0, 3.5], [6.5, 8.0]])
    dx = avg_pool_backward(np.ones((1, 2, 2, 1)), cache)
    expected = [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]]
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_same_pads_bottom_right():
    # 2x2 stride 1 'same' on 3x3: one padding row/col after; output (i,j) is max of x[i:i+2, j:j+2].
    x = np.array([[9.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 0.5]]).reshape(1, 3, 3, 1)
    y, _ = max_pool_forward(x, (2, 2), (1, 1), "same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[9, 5, 5], [7, 7, 5], [7, 7, 0.5]])


# ---------------------------------------------------------------------------
# ties and -inf padding
# ---------------------------------------------------------------------------


def test_max_pool_tie_sends_whole_gradient_to_first_element():
    x = np.full((1, 4, 4, 1), 3.0)
    y, cache = max_pool_forward(x, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(y, np.full((1, 2, 2, 1), 3.0))
    dy = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    dx = max_pool_backward(dy, cache)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 2], expected[2, 0], expected[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


@pytest.mark.parametrize(
    "window, first",
    [
        ([[1.0, 5.0], [5.0, 2.0]], (0, 1)),  # tie across rows: row-major first
        ([[5.0, 1.0], [2.0, 5.0]], (0, 0)),
        ([[1.0, 2.0], [5.0, 5.0]], (1, 0)),
    ],
)
def test_max_pool_partial_tie_goes_to_row_major_first(window, first):
    x = np.array(window).reshape(1, 2, 2, 1)
    _, cache = max_pool_forward(x, (2, 2), (2, 2), "valid")
    dx = max_pool_backward(np.full((1, 1, 1, 1), 7.0), cache)
    expected = np.zeros((2, 2))
    expected[first] = 7.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_overlapping_ties_each_window_picks_its_own_first():
    x = np.ones((1, 3, 3, 1))
    _, cache = max_pool_forward(x, (2, 2), (1, 1), "valid")
    dy = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(1, 2, 2, 1)
    dx = max_pool_backward(dy, cache)
    expected = np.array([[1.0, 10.0, 0.0], [100.0, 1000.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_same_padding_never_wins_for_negative_input():
    x = -np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    y, cache = max_pool_forward(x, (2, 2), (2, 2), "same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -3], [-7, -9]])
    dx = max_pool_backward(np.ones((1, 2, 2, 1)), cache)
    expected = np.zeros((3, 3))
    expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


@pytest.mark.parametrize("pool, strides", [((3, 3), (1, 1)), ((3, 3), (2, 2)), ((2, 3), (3, 1))])
def test_max_pool_same_all_negative_random(pool, strides):
    rng = np.random.default_rng(11)
    x = -rng.uniform(1.0, 10.0, size=(2, 5, 6, 3))
    y, cache = max_pool_forward(x, pool, strides, "same")
    assert np.all(np.isfinite(y)) and np.all(y < 0)
    np.testing.assert_array_equal(y, pool_ref(x, "max", pool, strides, "same"))
    dy = rng.standard_normal(y.shape)
    dx = max_pool_backward(dy, cache)
    # every output gradient lands on a real pixel: none is lost to the padding
    np.testing.assert_allclose(dx.sum(axis=(1, 2)), dy.sum(axis=(1, 2)), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# dtypes and no writes into the caller's gradient
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pool_float32_and_dy_untouched(kind, padding):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    x0 = x.copy()
    y, cache = _FORWARD[kind](x, (3, 3), (2, 2), padding)
    np.testing.assert_array_equal(x, x0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, pool_ref(x.astype(np.float64), kind, (3, 3), (2, 2), padding), rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy0 = dy.copy()
    dx = _BACKWARD[kind](dy, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dy, dy0)
