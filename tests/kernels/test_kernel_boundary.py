"""The checked boundary in front of the compiled kernels, and the defects it was built for.

Every kernel takes raw pointers and trusts its integer arguments; ``convolab.kernels`` checks
each array against them before the call. These tests hand each entry point arrays that are
too small, of the wrong dtype, non-contiguous, read-only or overlapping, and require a
``KernelArgumentError`` (and an untouched output) instead of a call.
"""

import numpy as np
import pytest

from convolab import kernels
from convolab.kernels import KernelArgumentError
from convolab.nn import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward

needs_c = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")
needs_fused = pytest.mark.skipif(not kernels.fused_isa()[0], reason="the fused convolutions cannot run here")


def _reference_avg_pool_grad(x_shape, dy, pool, strides):
    """d/dx of valid average pooling, written as a loop (independent of convolab)."""
    dx = np.zeros(x_shape)
    n, ho, wo, c = dy.shape
    for i in range(ho):
        for j in range(wo):
            r, s = i * strides[0], j * strides[1]
            dx[:, r : r + pool[0], s : s + pool[1], :] += dy[:, i : i + 1, j : j + 1, :] / (pool[0] * pool[1])
    return dx


@pytest.mark.parametrize(
    "shape,pool,strides",
    [
        ((2, 4, 4, 3), (2, 2), (2, 2)),
        ((2, 24, 24, 10), (2, 2), (2, 2)),  # the MNIST convnet of the report
        ((1, 7, 6, 5), (3, 2), (2, 1)),
        ((3, 8, 8, 1), (2, 2), (2, 2)),
    ],
)
def test_avg_pool_backward_float32_equals_reference(shape, pool, strides):
    """Defect 1: the float32 backward (C col2im) spread gradients with the wrong row length."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y, cache = avg_pool_forward(x, pool, strides, "valid")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = avg_pool_backward(dy, cache)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(
        dx, _reference_avg_pool_grad(shape, dy.astype(np.float64), pool, strides), rtol=1e-5, atol=1e-6
    )


def test_average_pooling_layer_trains_like_float64():
    """Defect 1 through the public API: one SGD step in float32 equals the float64 step."""
    from convolab import keras

    rng = np.random.default_rng(1)
    x = rng.random((8, 12, 12, 1))
    y = rng.integers(0, 3, 8)
    results = []
    for dtype in ("float32", "float64"):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.layers.Conv2D(4, 3, activation="relu", input_shape=(12, 12, 1), dtype=dtype),
                keras.layers.AveragePooling2D(dtype=dtype),
                keras.layers.Flatten(dtype=dtype),
                keras.layers.Dense(3, dtype=dtype),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        before = model.get_weights()
        model.train_on_batch(x.astype(dtype), y)
        results.append([b - a for a, b in zip(model.get_weights(), before)])  # = the gradients
    for g32, g64 in zip(*results):
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5)


@needs_c
def test_max_pool_same_all_neg_inf_window_backward_stays_in_bounds():
    """A window of only -inf under 'same' padding keeps arg 0, a padded pixel outside the image
    (a 3x3 window pads one row and column before the image): the backward kernel used to write
    there, before the array. Now it drops that gradient, as the NumPy path does."""
    x = np.full((1, 4, 4, 2), -np.inf, dtype=np.float32)
    x[0, 3, 3, :] = 1.0
    y, cache = max_pool_forward(x, (3, 3), (1, 1), "same")
    dy = np.ones_like(y)
    dx = max_pool_backward(dy, cache)
    y64, cache64 = max_pool_forward(x.astype(np.float64), (3, 3), (1, 1), "same")
    dx64 = max_pool_backward(dy.astype(np.float64), cache64)
    np.testing.assert_array_equal(dx, dx64)


def _im2col_args(x, k=(3, 3)):
    n, h, w, c = x.shape
    ho, wo = h - k[0] + 1, w - k[1] + 1
    return (n, h, w, c, k[0], k[1], 1, 1, 0, 0, ho, wo, k[0] * k[1] * c)


@needs_c
class TestRejectsBadArrays:
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(np.float32)

    def test_im2col_output_too_small(self):
        args = _im2col_args(self.x)
        cols = np.full((args[0] * args[10] * args[11] - 1, args[-1]), 7.0, dtype=np.float32)
        with pytest.raises(KernelArgumentError, match="cols has"):
            kernels.im2col_f32(self.x, cols, *args)
        assert np.all(cols == 7.0)

    def test_im2col_wrong_row_length(self):
        args = list(_im2col_args(self.x))
        args[-1] = 5
        cols = np.empty(2 * 16 * 5, dtype=np.float32)
        with pytest.raises(KernelArgumentError, match="row length"):
            kernels.im2col_f32(self.x, cols, *args)

    def test_col2im_rows_of_the_wrong_width(self):
        """What defect 1 did: a 6-D array whose shape[1] is not the row length."""
        args = list(_im2col_args(self.x, (2, 2)))
        args[6:8] = [2, 2]
        args[10:12] = [3, 3]
        d6 = np.zeros((2, 3, 3, 2, 2, 3), dtype=np.float32)
        args[-1] = d6.shape[1]
        with pytest.raises(KernelArgumentError):
            kernels.col2im_f32(d6, np.empty(self.x.shape, np.float32), *args)

    def test_wrong_dtype_and_layout(self):
        args = _im2col_args(self.x)
        cols = np.empty((2 * 16, 27), dtype=np.float32)
        with pytest.raises(KernelArgumentError, match="float32"):
            kernels.im2col_f32(self.x.astype(np.float64), cols, *args)
        with pytest.raises(KernelArgumentError, match="contiguous"):
            kernels.im2col_f32(np.asfortranarray(self.x), cols, *args)
        with pytest.raises(KernelArgumentError, match="NumPy array"):
            kernels.im2col_f32(self.x.tolist(), cols, *args)

    def test_read_only_output(self):
        args = _im2col_args(self.x)
        cols = np.empty((2 * 16, 27), dtype=np.float32)
        cols.flags.writeable = False
        with pytest.raises(KernelArgumentError, match="read-only"):
            kernels.im2col_f32(self.x, cols, *args)

    def test_overlapping_output(self):
        buf = np.zeros(1000, dtype=np.float32)
        with pytest.raises(KernelArgumentError, match="overlaps"):
            kernels.relu_bwd_f32(buf[:100], buf[100:200], buf[50:150])

    def test_negative_and_oversized_ints(self):
        args = list(_im2col_args(self.x))
        args[2] = -6
        with pytest.raises(KernelArgumentError, match="`W`"):
            kernels.im2col_f32(self.x, np.empty(1, np.float32), *args)
        args[2] = 2**31
        with pytest.raises(KernelArgumentError, match="`W`"):
            kernels.im2col_f32(self.x, np.empty(1, np.float32), *args)

    def test_window_past_the_image(self):
        args = list(_im2col_args(self.x))
        args[10] = 9  # Ho = 9 windows cannot start inside a 6-row image
        with pytest.raises(KernelArgumentError, match="starts past"):
            kernels.im2col_f32(self.x, np.empty(2 * 9 * 4 * 27, np.float32), *args)

    def test_max_pool_arg_must_be_int32(self):
        y = np.empty((2, 3, 3, 3), np.float32)
        arg = np.empty((2, 3, 3, 3), np.int64)
        with pytest.raises(KernelArgumentError, match="int32"):
            kernels.maxpool_fwd_f32(self.x, y, arg, 2, 6, 6, 3, 2, 2, 2, 2, 0, 0, 3, 3)

    @pytest.mark.parametrize("name", ["adam", "rmsprop"])
    def test_optimizer_state_of_another_size(self, name):
        """Defect 2's crash site: state built for a larger weight paired with a smaller one."""
        p = np.zeros(10, np.float32)
        g = np.ones(10, np.float32)
        big = np.zeros(100, np.float32)
        with pytest.raises(KernelArgumentError, match="the arguments need 10"):
            if name == "adam":
                kernels.adam_f32(p, g, big, big.copy(), 0.1, 0.9, 0.999, 1e-7)
            else:
                kernels.rmsprop_f32(p, g, big, 0.1, 0.9, 1e-7)
        assert np.all(p == 0)

    @needs_fused
    def test_fused_conv_refuses_too_many_filters_and_padded_windows(self):
        x = self.x
        limit = kernels.fused_isa()[1]  # 32 on AVX2, 4096 on AVX-512
        f = limit + 1
        wp = np.zeros((27, kernels.fused_width(f)), np.float32)
        y = np.empty((2, 4, 4, f), np.float32)
        with pytest.raises(KernelArgumentError, match=f"at most {limit}"):
            kernels.conv_fwd_f32(x, wp, None, y, 2, 6, 6, 3, 3, 3, 1, 1, f, 4, 4)
        wp = np.zeros((27, 16), np.float32)
        y = np.empty((2, 7, 6, 8), np.float32)
        with pytest.raises(KernelArgumentError, match="starts past"):  # windows 6 and 7 start below the image
            kernels.conv_fwd_f32(x, wp, None, y, 2, 6, 6, 3, 3, 3, 1, 1, 8, 7, 6, 0, 0)
        with pytest.raises(KernelArgumentError, match="as large as the window"):
            kernels.conv_fwd_f32(x, wp, None, y, 2, 6, 6, 3, 3, 3, 1, 1, 8, 7, 6, 3, 0)
        with pytest.raises(KernelArgumentError, match="`pt` must be an int"):
            kernels.conv_fwd_f32(x, wp, None, y, 2, 6, 6, 3, 3, 3, 1, 1, 8, 7, 6, -1, 0)

    @needs_fused
    def test_fused_conv_bias_and_dw_sizes(self):
        x = self.x
        wp = np.zeros((27, 16), np.float32)
        y = np.empty((2, 4, 4, 5), np.float32)
        with pytest.raises(KernelArgumentError, match="bp has"):
            kernels.conv_fwd_f32(x, wp, np.zeros(8, np.float32), y, 2, 6, 6, 3, 3, 3, 1, 1, 5, 4, 4)
        with pytest.raises(KernelArgumentError, match="wp has"):  # 8 columns: the padding is 16 wide now
            kernels.conv_fwd_f32(x, np.zeros((27, 8), np.float32), None, y, 2, 6, 6, 3, 3, 3, 1, 1, 5, 4, 4)
        dy = np.zeros((2 * 16, 5), np.float32)
        with pytest.raises(KernelArgumentError, match="dwp has"):
            kernels.conv_dw_f32(x, dy, np.zeros((27, 5), np.float32), None, 2, 6, 6, 3, 3, 3, 1, 1, 5, 4, 4)

    def test_fused_isa_choice_is_checked(self):
        before = kernels.fused_isa()
        with pytest.raises(ValueError, match="not available here"):
            kernels.set_fused_isa("avx1024")
        if "avx512" not in kernels.available_isas():
            with pytest.raises(ValueError, match="not available here"):
                kernels.set_fused_isa("avx512")
        with pytest.raises(TypeError):
            kernels.lib.set_fused_isa(2)
        assert kernels.fused_isa() == before  # a refused choice changes nothing


@needs_c
def test_every_entry_point_is_behind_the_boundary():
    """The ops reach C only through the checked functions: no module calls ``kernels.lib.<fn>``."""
    import pathlib
    import re

    import convolab

    root = pathlib.Path(convolab.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.parent.name == "kernels":
            continue
        for name in kernels.ENTRY_POINTS:
            if re.search(rf"\blib\.{name}\b", path.read_text()):
                offenders.append(f"{path.relative_to(root)}: lib.{name}")
    assert not offenders
    for name in kernels.ENTRY_POINTS:
        assert callable(getattr(kernels, name)) and hasattr(kernels.lib, name)
