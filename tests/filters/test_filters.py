"""convolab.filters: named kernels, get_kernel's parsing and errors, convolve against a plain loop."""

import itertools

import numpy as np
import pytest

from convolab.filters import KERNELS, convolve, gaussian_kernel, get_kernel, kernel_names
from convolab.nn.conv import conv2d_forward


def loop_correlate(img, k, padding):
    """Independent slow reference: 2-D cross-correlation with TensorFlow's 'same' zero padding."""
    img = np.asarray(img, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    h, w = img.shape
    kh, kw = k.shape
    if padding == "same":
        top, left = (kh - 1) // 2, (kw - 1) // 2
        padded = np.zeros((h + kh - 1, w + kw - 1))
        padded[top : top + h, left : left + w] = img
    else:
        padded = img
    ho, wo = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    out = np.zeros((ho, wo))
    for i in range(ho):
        for j in range(wo):
            total = 0.0
            for a in range(kh):
                for b in range(kw):
                    total += padded[i + a, j + b] * k[a, b]
            out[i, j] = total
    return out


EXPECTED = {
    "vertical_edge": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "horizontal_edge": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "box_blur": np.full((3, 3), 1 / 9),
    "gaussian_blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_kernels_have_the_textbook_values(name):
    k = get_kernel(name)
    assert k.dtype == np.float32 and k.shape == (3, 3)
    np.testing.assert_allclose(k, EXPECTED[name], rtol=1e-6)


def test_kernel_table_is_complete_and_read_only():
    assert set(KERNELS) == set(EXPECTED) and kernel_names() == list(KERNELS)
    with pytest.raises(ValueError):
        KERNELS["sobel_x"][0, 0] = 5
    k = get_kernel("sobel_x")
    k[0, 0] = 5  # a copy: the table is untouched
    assert KERNELS["sobel_x"][0, 0] == -1


@pytest.mark.parametrize("spelling", ["Sobel_X", "sobel-x", " sobel x "])
def test_kernel_names_are_forgiving(spelling):
    np.testing.assert_array_equal(get_kernel(spelling), KERNELS["sobel_x"])


@pytest.mark.parametrize(
    "value, shape",
    [
        ([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], (2, 3)),  # the lesson's first call: not square
        ([[-1, 0, 1]] * 3, (3, 3)),  # ints, as the lesson's matrix
        ([[1]], (1, 1)),
        (((1, 2), (3, 4), (5, 6)), (3, 2)),
        (np.arange(6, dtype=np.int64).reshape(2, 3), (2, 3)),
    ],
)
def test_get_kernel_accepts_nested_lists_and_arrays(value, shape):
    k = get_kernel(value)
    assert k.shape == shape and k.dtype == np.float32 and k.flags.writeable
    np.testing.assert_array_equal(k, np.asarray(value, dtype=np.float32))


@pytest.mark.parametrize(
    "value, error, fragment",
    [
        ([1, 2, 3], ValueError, "2-D"),
        ([[[1]]], ValueError, "got 3-D"),
        (np.zeros((3, 3, 1)), ValueError, "shape (3, 3, 1)"),
        ([], ValueError, "2-D"),
        ([[]], ValueError, "empty"),
        ([[1, 2], [3]], ValueError, "same length"),
        ([["a", "b"]], TypeError, "numbers"),
        ([[None, 1]], TypeError, "numbers"),
        ([[True, False]], TypeError, "numbers"),
        ([[np.nan, 1.0]], ValueError, "finite"),
        ("no_such_filter", ValueError, "known kernels: vertical_edge"),
        (3.0, ValueError, "2-D"),
    ],
)
def test_get_kernel_rejects_bad_kernels_naming_what_came(value, error, fragment):
    with pytest.raises(error) as info:
        get_kernel(value)
    assert fragment in str(info.value)


CASES = list(
    itertools.product(
        [(1, 1), (2, 3), (3, 3), (3, 1), (5, 5), (4, 4)],  # kernel shapes, odd and even
        ["same", "valid"],
        ["hw", "nhw", "nhwc1", "nhwc3"],
    )
)


@pytest.mark.parametrize("kshape, padding, layout", CASES)
def test_convolve_matches_a_plain_loop(kshape, padding, layout):
    rng = np.random.default_rng(hash((kshape, padding, layout)) % 2**32)
    k = rng.normal(size=kshape)
    shape = {"hw": (7, 9), "nhw": (2, 7, 9), "nhwc1": (2, 7, 9, 1), "nhwc3": (2, 7, 9, 3)}[layout]
    x = rng.normal(size=shape).astype(np.float32)
    y = convolve(x, k.tolist(), padding)
    assert y.dtype == np.float32 and y.ndim == x.ndim
    planes = x.reshape((1,) + x.shape + (1,)) if x.ndim == 2 else x[..., None] if x.ndim == 3 else x
    y4 = y.reshape((1,) + y.shape + (1,)) if y.ndim == 2 else y[..., None] if y.ndim == 3 else y
    for n in range(planes.shape[0]):
        for c in range(planes.shape[-1]):
            ref = loop_correlate(planes[n, :, :, c], k.astype(np.float32), padding)
            np.testing.assert_allclose(y4[n, :, :, c], ref, rtol=1e-4, atol=1e-4)


def test_convolve_known_sums_at_borders():
    # all ones through an all-ones 3x3 kernel: 9 inside, 6 on edges, 4 in corners ('same' pads zeros)
    y = convolve(np.ones((4, 5)), np.ones((3, 3)))
    expected = np.array([[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]])
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(convolve(np.ones((4, 5)), np.ones((3, 3)), "valid"), np.full((2, 3), 9))


def test_vertical_edge_fires_on_vertical_edges_only():
    img = np.zeros((6, 6), dtype=np.float32)
    img[:, 3:] = 1.0  # dark left half, bright right half
    v = convolve(img, "vertical_edge", "valid")
    h = convolve(img, "horizontal_edge", "valid")
    np.testing.assert_array_equal(v, [[0, 3, 3, 0]] * 4)  # spikes where the window straddles the edge
    np.testing.assert_array_equal(h, np.zeros((4, 4)))


def test_convolve_is_cross_correlation_like_conv2d():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8, 8)).astype(np.float32)
    k = rng.normal(size=(3, 2)).astype(np.float32)
    for padding in ("same", "valid"):
        ref, _ = conv2d_forward(x[..., None], k[:, :, None, None], None, (1, 1), padding)
        np.testing.assert_allclose(convolve(x, k, padding), ref[..., 0], rtol=1e-5, atol=1e-6)


def test_convolve_uint8_does_not_wrap_and_is_not_rescaled():
    x = np.full((1, 5, 5), 255, dtype=np.uint8)
    y = convolve(x, "box_blur", "valid")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 255.0, rtol=1e-6)
    assert convolve(x, np.ones((3, 3)), "valid")[0, 0, 0] == 255 * 9


def test_convolve_keeps_float64():
    assert convolve(np.zeros((2, 4, 4)), "sobel_x").dtype == np.float64


def test_convolve_colour_is_depthwise():
    x = np.zeros((1, 5, 5, 3), dtype=np.float32)
    x[0, 2, 2, 1] = 1.0  # one green pixel
    y = convolve(x, "box_blur")
    np.testing.assert_allclose(y[0, 1:4, 1:4, 1], 1 / 9, rtol=1e-6)
    assert not y[..., 0].any() and not y[..., 2].any()


@pytest.mark.parametrize(
    "images, error, fragment",
    [
        (np.zeros((5,)), ValueError, "(H, W), (N, H, W) or (N, H, W, C)"),
        (np.zeros((1, 2, 5, 5, 1)), ValueError, "got shape (1, 2, 5, 5, 1)"),
        (np.zeros((0, 5, 5)), ValueError, "empty"),
        (np.array([["a"]]), TypeError, "numeric"),
    ],
)
def test_convolve_rejects_bad_images(images, error, fragment):
    with pytest.raises(error) as info:
        convolve(images, "sobel_x")
    assert fragment in str(info.value)


def test_convolve_kernel_larger_than_image_with_valid_says_everything():
    with pytest.raises(ValueError) as info:
        convolve(np.zeros((2, 4, 6)), np.ones((5, 5)), "valid")
    msg = str(info.value)
    assert "(5, 5)" in msg and "4x6" in msg and "(2, 4, 6)" in msg and "'same'" in msg
    assert convolve(np.zeros((2, 4, 6)), np.ones((5, 5)), "same").shape == (2, 4, 6)


def test_convolve_rejects_unknown_padding():
    with pytest.raises(ValueError, match="padding"):
        convolve(np.zeros((4, 4)), "sobel_x", padding="full")


def test_gaussian_kernel():
    k = gaussian_kernel(5, 1.0)
    assert k.shape == (5, 5) and k.dtype == np.float32
    assert abs(float(k.sum()) - 1) < 1e-6
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    assert k[2, 2] == k.max()
    # sigma ~0.85 makes the classic 3x3 [1, 2, 1] binomial kernel
    np.testing.assert_allclose(gaussian_kernel(3, 0.8493), get_kernel("gaussian_blur"), atol=2e-3)
    for size, sigma in [(4, 1.0), (0, 1.0), (3, 0.0), (3, -1.0), (2.5, 1.0)]:
        with pytest.raises(ValueError):
            gaussian_kernel(size, sigma)
