"""A few seeded training steps of every layer type, shaped to reach every compiled kernel.

In the normal suite this is a quick smoke test of training in float32 (the dtype the C
kernels serve). Its real job is in ``.ci/sanitize``, which runs it against a build of the
kernels (``src/convolab/kernels/*.c``) with AddressSanitizer and UndefinedBehaviorSanitizer
(``CONVOLAB_CKERNELS_LIB``): there any out-of-bounds read or write, in any kernel and any
of its variants, aborts the run. So the last test requires that these models alone called
every entry point and every variant that ``convolab.kernels`` counts.

Shapes are tiny on purpose (the sanitized build is several times slower); each case names
the kernel paths it is there for.
"""

from __future__ import annotations

import collections
import contextlib

import numpy as np
import pytest

from convolab import keras, kernels
from convolab.models import parallel
from convolab.nn import threads
from support.kernel_paths import ISAS, expected_calls, fused_isa

L = keras.layers
O = keras.optimizers


def _case_pixels_and_fast_pool():
    # conv_fwd_f32[pixels]: <= 6 filters, stride 1, <= 4 channels, output width >= 16 ('valid')
    # conv_dw_f32 (first layer: no dx); MaxPooling2D 2x2/2 on an even image: both 2x2 paths;
    # Conv2D with 12 filters: conv_fwd_f32[filters], and its dx through col2im_f32[valid]
    return [
        keras.Input(shape=(20, 20, 2)),
        L.Conv2D(4, 5, activation="relu"),  # 20x20x2 -> 16x16x4, relu_bwd_f32
        L.MaxPooling2D(),  # -> 8x8x4
        L.Conv2D(12, (3, 2), strides=(2, 1), activation="relu"),  # -> 3x7x12
        L.Flatten(),
        L.Dropout(0.25, seed=3),
        L.Dense(3, activation="softmax"),
    ], O.Adam(1e-3)  # adam_f32


def _case_pixels_no_bias():
    # the pixel path without a bias, with 1 filter and a 1x1 kernel; 3x3 pixels with 6 filters
    return [
        L.Conv2D(1, 1, use_bias=False, input_shape=(5, 17, 3)),  # -> 5x17x1
        L.Conv2D(6, 3, use_bias=False),  # -> 3x15x6 (width < 16: filters)
        L.Conv2D(5, (1, 3), padding="valid"),  # C = 6 > 4: filters
        L.ReLU(),
        L.Flatten(),
        L.Dense(2),
    ], O.RMSprop(1e-3)  # rmsprop_f32


def _case_fused_wide():
    # the fused kernels' other register blockings: 8 filters (no padding columns), 17-24 and
    # 25-32 filters (3 and 4 vectors), a tap count that is not a multiple of the block
    return [
        L.Conv2D(8, 2, input_shape=(6, 7, 2)),  # -> 5x6x8
        L.Conv2D(20, 2, activation="relu"),  # -> 4x5x20
        L.Conv2D(32, (2, 3), strides=(1, 2), use_bias=False),  # -> 3x2x32
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ], O.Adam(1e-3, beta_1=0.8)


def _case_many_filters_and_same():
    # > 32 filters and 'same' padding take im2col + BLAS: im2col_f32[valid] / [padded],
    # col2im_f32[padded]; max pooling 3x3/2 'same' and 2x2/2 on an odd image: general paths
    return [
        L.Conv2D(40, 1, input_shape=(7, 7, 3)),  # >32 filters, 1x1, ones column
        L.Conv2D(8, 3, strides=2, padding="same", use_bias=False),  # -> 4x4x8, dx via col2im padded
        L.Activation("relu"),
        L.Conv2D(33, 5, padding="same", activation="relu"),  # 5x5 'same', > 32 filters
        L.MaxPooling2D(3, strides=2, padding="same"),  # -> 2x2x33 general
        L.Flatten(),
        L.Dense(4, use_bias=False),
        L.Softmax(),
    ], O.SGD(0.05)


def _case_odd_pools():
    # MaxPooling2D 2x2/2 on an odd image (fast forward, general backward), overlapping and
    # non-square windows; AveragePooling2D valid, overlapping and 'same' (col2im both ways)
    return [
        L.Conv2D(3, 2, strides=2, input_shape=(15, 15, 1)),  # stride 2 with <= 6 filters: [filters]
        L.MaxPooling2D(),  # 7x7 -> 3x3, general backward
        L.Conv2D(7, 1, padding="same", activation="relu"),
        L.AveragePooling2D(pool_size=(2, 1), strides=1, padding="same"),
        L.MaxPool2D(pool_size=(2, 3), strides=(1, 2)),  # -> 2x1
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ], O.SGD(0.05, momentum=0.9)


def _case_avg_pools():
    return [
        L.Conv2D(9, 3, padding="same", input_shape=(8, 9, 2)),
        L.AveragePooling2D(),  # 2x2/2 valid -> 4x4
        L.ReLU(max_value=6.0, negative_slope=0.1),
        L.AvgPool2D(3, strides=2, padding="same"),  # -> 2x2
        L.Conv2D(2, 2, padding="same"),
        L.MaxPooling2D(padding="same"),
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ], O.SGD(0.05, momentum=0.5, nesterov=True)


def _case_batchnorm_split():
    # BatchNormalization (statistics, affine and backward kernels); its model runs each op on
    # slices of the batch (nn/threads.py, every op split here): the fused and the im2col
    # convolutions write their slices of y and dx in place
    return [
        L.Conv2D(6, 3, padding="same", input_shape=(6, 6, 2)),  # fused, padded first
        L.BatchNormalization(),
        L.ReLU(),
        L.Conv2D(34, 3, padding="same", use_bias=False),  # im2col + GEMM into y's slice
        L.BatchNormalization(center=False),
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ], O.Adam(1e-3)


def _case_depthwise():
    # depthwise_fwd/dx/dw_f32, [dm=1] and [dm>1]: MobileNet's 3x3 'same' at strides 1 and 2
    # (19 channels: a 16-channel block and three single ones; an odd image at stride 2), a
    # depth multiplier of 2, a dilated separable conv with 3, a 1x3 window; the first layer
    # needs no dx
    return [
        L.DepthwiseConv2D(3, padding="same", input_shape=(9, 11, 19)),
        L.ReLU(6.0),
        L.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False),  # -> 5x6x19
        L.DepthwiseConv2D(2, depth_multiplier=2, activation="relu"),  # -> 4x5x38
        L.SeparableConv2D(7, 2, dilation_rate=2, depth_multiplier=3),  # -> 2x3x7
        L.DepthwiseConv2D((1, 3), padding="same"),
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ], O.Adam(1e-3)


def _case_dense_only(optimizer):
    def make():
        return [
            L.Flatten(input_shape=(3, 4, 2)),
            L.Dense(10, activation="relu"),
            L.Dropout(0.5),
            L.Dense(6, activation="tanh"),
            L.Dense(3, activation="softmax"),
        ], optimizer()

    return make


CASES = {
    "pixels_fast_pool_adam": _case_pixels_and_fast_pool,
    "pixels_no_bias_rmsprop": _case_pixels_no_bias,
    "fused_wide_adam": _case_fused_wide,
    "many_filters_same_sgd": _case_many_filters_and_same,
    "odd_pools_momentum": _case_odd_pools,
    "avg_pools_nesterov": _case_avg_pools,
    "batchnorm_split_adam": _case_batchnorm_split,
    "depthwise_adam": _case_depthwise,
    "dense_rmsprop_momentum": _case_dense_only(lambda: O.RMSprop(1e-3, momentum=0.9)),
    "dense_rmsprop_centered": _case_dense_only(lambda: O.RMSprop(1e-3, centered=True)),
    "dense_adam_amsgrad": _case_dense_only(lambda: O.Adam(1e-3, amsgrad=True)),
    "dense_sgd": _case_dense_only(lambda: O.SGD()),
}

#: kernel calls made by this module's training runs (not by other test modules)
_calls: collections.Counter = collections.Counter()
_ran: set = set()


@contextlib.contextmanager
def _split_every_op():
    """Ops that can split their batch over threads do so however small (two threads)."""
    old = threads.MIN_SLICE_FLOPS, threads.CHUNK_BYTES
    threads.MIN_SLICE_FLOPS = 0
    threads.CHUNK_BYTES = 1  # and into chunks of one image: window matrices built again in backward
    parallel.set_num_threads(2)
    try:
        yield
    finally:
        threads.MIN_SLICE_FLOPS, threads.CHUNK_BYTES = old
        parallel.set_num_threads(None)


def _train(name, isa):
    with fused_isa(isa):
        return _train_on(name, isa)


def _train_on(name, isa):
    keras.utils.set_random_seed(0)
    layers, optimizer = CASES[name]()
    model = keras.Sequential(layers)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(list(CASES).index(name))
    in_shape = model.input_shape[1:]
    classes = model.output_shape[-1]
    x = rng.standard_normal((6,) + tuple(in_shape)).astype(np.float32)
    y = rng.integers(0, classes, len(x))
    before = kernels.calls.copy()
    losses = [model.train_on_batch(x, y) for _ in range(2)]
    with _split_every_op():
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)  # a partial last batch
        losses += history.history["loss"]
        assert model.predict(x, verbose=0).dtype == np.float32
    _calls.update(kernels.calls - before)
    _ran.add((name, isa))
    assert all(np.isfinite(v) for v in losses), losses
    assert all(np.isfinite(w).all() for w in model.get_weights())
    return losses


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(CASES))
def test_short_training_run(name, isa):
    _train(name, isa)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")
def test_every_kernel_and_variant_was_reached():
    for name in CASES:  # any case deselected with -k still has to run for this check
        for isa in ISAS:
            if (name, isa) not in _ran:
                _train(name, isa)
    missing = sorted(expected_calls() - set(_calls))
    assert not missing, f"no training case reached {missing}; calls: {dict(_calls)}"
