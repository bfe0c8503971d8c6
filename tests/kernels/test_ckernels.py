"""The optional compiled kernels against the NumPy reference path, in float32.

Each case runs the same op twice: once with the compiled kernels, once with them switched
off (``kernels.lib = None``), and requires the same answer. Skipped when the extension
was not built.
"""

import itertools

import numpy as np
import pytest

from convolab import kernels
from support.kernel_paths import ISAS, fused_isa
from convolab.nn import col2im, conv2d_backward, conv2d_forward, im2col, max_pool_backward, max_pool_forward

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")

CASES = [
    # (H, W, C, kernel, stride, padding)
    (7, 7, 1, (3, 3), (1, 1), "valid"),
    (7, 6, 3, (3, 2), (2, 1), "same"),
    (8, 8, 2, (2, 2), (2, 2), "valid"),  # the 2x2 fast paths
    (7, 9, 12, (2, 2), (2, 2), "valid"),  # fast forward, general backward (odd edge left out)
    (6, 4, 16, (2, 2), (2, 2), "valid"),  # the 2x2 forward 8 channels at a time
    (5, 4, 8, (2, 2), (2, 2), "valid"),  # the same, odd edge left out
    (5, 9, 4, (5, 5), (1, 3), "same"),
    (6, 6, 1, (1, 1), (3, 3), "same"),
    (4, 4, 3, (6, 6), (1, 1), "same"),  # window larger than the image
]


def both(fn, monkeypatch):
    fast = fn()
    monkeypatch.setattr(kernels, "lib", None)
    slow = fn()
    monkeypatch.undo()
    return fast, slow


@pytest.mark.parametrize("h,w,c,k,s,pad", CASES)
def test_im2col_and_col2im_match_numpy(h, w, c, k, s, pad, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, h, w, c)).astype(np.float32)
    (fast, hw_f), (slow, hw_s) = both(lambda: im2col(x, k, s, pad), monkeypatch)
    assert hw_f == hw_s
    np.testing.assert_array_equal(fast, slow)
    cols = rng.standard_normal(slow.shape).astype(np.float32)
    fast, slow = both(lambda: col2im(cols, x.shape, k, s, pad), monkeypatch)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("h,w,c,k,s,pad", CASES)
def test_max_pool_matches_numpy(h, w, c, k, s, pad, monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    x[0, :2, :2, :] = 0.5  # ties: both paths must pick the first maximum
    x[1, 0, 0, 0] = np.nan  # NaN: the first NaN of a window is its maximum, as NumPy's argmax has it
    x[1, 1, 1, 1 % c] = np.nan  # (and later in a window too)
    x[1, 1, 1, -1] = -np.inf
    (yf, cf), (ys, cs) = both(lambda: max_pool_forward(x, k, s, pad), monkeypatch)
    np.testing.assert_array_equal(yf, ys)
    np.testing.assert_array_equal(cf[0], cs[0])
    dy = rng.standard_normal(ys.shape).astype(np.float32)
    fast, slow = both(lambda: max_pool_backward(dy, cf), monkeypatch)
    np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride,pad", list(itertools.product([(1, 1), (2, 2)], ["valid", "same"])))
def test_conv_layer_math_matches_numpy(stride, pad, monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 9, 9, 3)).astype(np.float32)
    wt = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)

    def run():
        y, cache = conv2d_forward(x, wt, b, stride, pad)
        dx, dw, db = conv2d_backward(np.ones_like(y), cache)
        return y, dx, dw, db

    fast, slow = both(run, monkeypatch)
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f, s, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("convolab").optimizers.Adam(learning_rate=0.01),
        lambda: __import__("convolab").optimizers.RMSprop(learning_rate=0.01),
    ],
)
def test_optimizer_steps_match_numpy(make, monkeypatch):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(1000).astype(np.float32)
    grads = [rng.standard_normal(1000).astype(np.float32) for _ in range(5)]

    def run():
        p, opt = p0.copy(), make()
        for g in grads:
            opt.apply([g], [p])
        return p

    fast, slow = both(run, monkeypatch)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(fast, p0)


def test_relu_backward_matches_numpy(monkeypatch):
    from convolab.nn.activations import activation_backward

    rng = np.random.default_rng(4)
    y = np.maximum(rng.standard_normal((7, 5, 3)).astype(np.float32), 0)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    fast, slow = both(lambda: activation_backward("relu", dy, y), monkeypatch)
    np.testing.assert_array_equal(fast, slow)


FUSED_CASES = [
    # (N, H, W, C, kh, kw, stride, F, bias): F across 1..4 vectors of 8 and partial ones,
    # output widths that are and are not multiples of the 4 (or 3, 2) rows done at once
    (2, 9, 9, 1, 5, 5, (1, 1), 9, True),
    (3, 12, 11, 6, 5, 5, (1, 1), 20, True),
    (2, 12, 11, 10, 5, 5, (1, 1), 20, True),  # 250 taps: the reference path
    (2, 10, 10, 3, 5, 5, (1, 1), 6, True),
    (1, 8, 7, 2, 3, 2, (2, 1), 1, False),
    (2, 7, 9, 4, 2, 3, (1, 3), 8, True),
    (1, 9, 9, 3, 3, 3, (2, 2), 16, False),
    (2, 6, 13, 2, 1, 4, (1, 2), 17, True),
    (1, 7, 7, 5, 3, 3, (1, 1), 24, True),
    (1, 6, 6, 2, 3, 3, (1, 1), 32, True),
    (1, 6, 6, 2, 3, 3, (1, 1), 33, True),  # over 32 filters: the reference path
    # <= 6 filters at stride 1 along W with >= 16 output columns: 16 pixels per vector pair
    (2, 20, 21, 3, 5, 5, (1, 1), 6, True),
    (1, 18, 40, 1, 3, 3, (1, 1), 1, False),
    (2, 19, 22, 2, 2, 3, (2, 1), 4, True),
    (1, 9, 33, 4, 1, 1, (1, 1), 5, True),
    # AVX-512: 13-24 filters with pixels in the lanes (one vector each), narrow outputs as two
    # rows at a time with an odd last row, filters in blocks of 64 with a partial last block,
    # row tiles of 8 and tap blocks whose tails take the 4-, 2- and 1-wide loops
    (2, 10, 40, 3, 3, 3, (1, 1), 18, True),
    (3, 9, 14, 2, 3, 3, (1, 1), 5, True),
    (1, 7, 9, 4, 3, 3, (1, 1), 65, True),
    (2, 6, 11, 3, 2, 2, (1, 2), 130, False),
    (1, 5, 30, 7, 1, 3, (1, 1), 40, True),
    (2, 4, 23, 5, 1, 3, (1, 1), 48, True),
    (1, 3, 19, 3, 1, 1, (1, 1), 16, True),
    # AVX-512 kernel gradient with the taps in the lanes (F <= 8, kw * C <= 16 and more than F):
    # 7 and 8 filters take two kernel rows at a time, 6 and fewer four (LeNet's first layer above)
    (1, 9, 9, 4, 3, 3, (2, 1), 7, False),
    (2, 8, 9, 2, 4, 6, (1, 1), 8, True),
    (2, 11, 8, 5, 6, 3, (1, 2), 3, True),
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n,h,w,c,kh,kw,stride,f,bias", FUSED_CASES)
def test_fused_conv_matches_im2col_gemm(n, h, w, c, kh, kw, stride, f, bias, isa, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((kh, kw, c, f)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32) if bias else None

    paths = []

    def run():
        y, cache = conv2d_forward(x, wt, b, stride, "valid")
        paths.append(isinstance(cache[0], str))
        dy = rng_dy.standard_normal(y.shape).astype(np.float32)
        return (y,) + conv2d_backward(dy, cache)

    rng_dy = np.random.default_rng(6)
    with fused_isa(isa):
        fast = run()
    # fused where it applies: AVX2 up to 32 filters and 200 taps, AVX-512 any
    assert paths == [isa == "avx512" or (isa == "avx2" and f <= 32 and kh * kw * c <= 200)]
    rng_dy = np.random.default_rng(6)
    monkeypatch.setattr(kernels, "lib", None)
    slow = run()
    for a, s in zip(fast, slow):
        assert a.dtype == np.float32 and a.shape == s.shape
        np.testing.assert_allclose(a, s, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("isa", ISAS)
def test_fused_kernel_gradient_across_row_chunks(isa, monkeypatch):
    """The AVX-512 kernel gradient walks the output rows in chunks of 256 KB of dy (1,024 rows
    of 4 pixels at 16 filters): 1,120 rows here, so two chunks add into the same gradient."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((70, 16, 4, 3)).astype(np.float32)
    wt = rng.standard_normal((1, 1, 3, 16)).astype(np.float32)
    dy = rng.standard_normal((70, 16, 4, 16)).astype(np.float32)

    def run():
        y, cache = conv2d_forward(x, wt, None, (1, 1), "valid")
        return (y,) + conv2d_backward(dy, cache)

    with fused_isa(isa):
        fast = run()
    monkeypatch.setattr(kernels, "lib", None)
    slow = run()
    for a, s in zip(fast, slow):
        np.testing.assert_allclose(a, s, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    "h,w,k,stride,pt,pl,ho,wo,f",
    [
        (6, 7, 3, 1, 1, 1, 6, 7, 5),  # 'same'
        (7, 7, 3, 2, 1, 1, 4, 4, 20),  # 'same' at stride 2, odd size: a row of zeros after
        (8, 8, 3, 2, 0, 0, 4, 4, 16),  # 'same' at stride 2, even size: only after (pt = pl = 0)
        (5, 9, 5, 1, 4, 2, 9, 9, 3),  # the input gradient's padding of a 'valid' 5x5 (k - 1 before)
        (6, 6, 2, 1, 0, 1, 6, 6, 40),  # windows past the end on both axes
    ],
)
def test_fused_kernels_pad_each_image_as_a_padded_copy(h, w, k, stride, pt, pl, ho, wo, f, isa):
    """pt/pl (and the windows' reach after the image): the same bits as the 'valid' kernels on
    an explicitly zero-padded copy, forward and kernel gradient."""
    if kernels.lib is None or not kernels.lib.fused_conv:
        pytest.skip("fused kernels not available")
    rng = np.random.default_rng(12)
    n, c = 3, 4
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    hp, wp_ = (ho - 1) * stride + k, (wo - 1) * stride + k
    xp = np.zeros((n, hp, wp_, c), np.float32)
    rows, cols = min(h, hp - pt), min(w, wp_ - pl)
    xp[:, pt : pt + rows, pl : pl + cols] = x[:, :rows, :cols]
    fp = kernels.fused_width(f)
    wmat = np.zeros((k * k * c, fp), np.float32)
    wmat[:, :f] = rng.standard_normal((k * k * c, f))
    bias = np.zeros(fp, np.float32)
    bias[:f] = rng.standard_normal(f)
    dy = rng.standard_normal((n * ho * wo, f)).astype(np.float32)
    with fused_isa(isa):
        if f > kernels.fused_isa()[1]:
            pytest.skip(f"{isa} takes at most {kernels.fused_isa()[1]} filters")
        y, y_ref = (np.empty((n, ho, wo, f), np.float32) for _ in range(2))
        kernels.conv_fwd_f32(x, wmat, bias, y, n, h, w, c, k, k, stride, stride, f, ho, wo, pt, pl)
        kernels.conv_fwd_f32(xp, wmat, bias, y_ref, n, hp, wp_, c, k, k, stride, stride, f, ho, wo, 0, 0)
        dw, dw_ref = (np.zeros((k * k * c, fp), np.float32) for _ in range(2))
        db, db_ref = (np.zeros(fp, np.float32) for _ in range(2))
        kernels.conv_dw_f32(x, dy, dw, db, n, h, w, c, k, k, stride, stride, f, ho, wo, pt, pl)
        kernels.conv_dw_f32(xp, dy, dw_ref, db_ref, n, hp, wp_, c, k, k, stride, stride, f, ho, wo, 0, 0)
    np.testing.assert_array_equal(y, y_ref)
    # per image against the whole batch: the sums come in another order; the AVX2 loops leave
    # the padding columns undefined (the ops read the first F only)
    np.testing.assert_allclose(dw[:, :f], dw_ref[:, :f], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db[:f], db_ref[:f], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    "shape,kernel,stride,padding,groups",
    [
        ((2, 12, 40, 1), (5, 5, 1, 9), 1, "valid", 1),  # pixels in the lanes (one-conv model's layer)
        ((2, 9, 14, 3), (3, 3, 3, 5), 1, "same", 1),  # two rows at a time, padded per image
        ((2, 8, 8, 6), (3, 3, 6, 20), 2, "same", 1),  # filters in the lanes
        ((2, 7, 7, 4), (3, 3, 4, 40), 1, "valid", 1),  # AVX-512 blocks; on AVX2, im2col + BLAS
        ((2, 7, 7, 4), (3, 3, 2, 6), 1, "valid", 2),  # grouped: NumPy, rectified after
    ],
)
def test_conv_forward_relu_in_the_store_equals_relu_after(shape, kernel, stride, padding, groups, isa, monkeypatch):
    """``conv2d_forward(..., relu=True)`` is ``max(conv2d_forward(...), 0)`` on every path."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(kernel).astype(np.float32)
    b = rng.standard_normal(kernel[3]).astype(np.float32)
    args = (x, w, b, (stride, stride), padding, (1, 1), groups)
    with fused_isa(isa):
        plain = conv2d_forward(*args)[0]
        fused, cache = conv2d_forward(*args, relu=True)
    np.testing.assert_array_equal(fused, np.maximum(plain, 0))
    assert (fused < 0).sum() == 0 and (plain < 0).sum() > 0
    monkeypatch.setattr(kernels, "lib", None)  # the NumPy reference takes the flag too
    np.testing.assert_allclose(conv2d_forward(*args, relu=True)[0], fused, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("isa", ISAS)
def test_conv_forward_relu_in_the_store_keeps_nan(isa):
    """A NaN output stays NaN through the rectifying store, as through np.maximum (fit's NaN
    checks rely on it)."""
    x = np.ones((1, 6, 20, 1), np.float32)
    x[0, 2, 3, 0] = np.nan
    for f in (5, 20):  # pixels and filters in the lanes
        w = np.ones((3, 3, 1, f), np.float32)
        with fused_isa(isa):
            y = conv2d_forward(x, w, None, relu=True)[0]
        np.testing.assert_array_equal(np.isnan(y), np.isnan(conv2d_forward(x, w)[0]))
        assert np.isnan(y).sum() == 9 * f
