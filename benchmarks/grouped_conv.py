"""Grouped convolution: convolab's fast path against its NumPy reference, and PyTorch/Keras if installed.

    python benchmarks/grouped_conv.py                  # per-op medians, forward and backward
    python benchmarks/grouped_conv.py --batch 32       # ConvMixer's batch (the reference's 9x9 window matrices: about 8 GB)
    python benchmarks/grouped_conv.py --step           # also a small ConvMixer's training epoch, both paths

Each shape runs ``Conv2D(filters, kernel, padding='same', groups=groups)``'s op, float32, NHWC:
"reference" is :mod:`convolab.nn.grouped_conv` (one im2col window matrix of all channels, a
transposing regroup, a batched matmul), which every grouped convolution took before;
"fast" is :mod:`convolab.nn.grouped_conv_fast` (the depthwise C kernels for ``groups == C``,
one fused or im2col convolution per group otherwise). The backward is the input and kernel
gradients together. PyTorch (``F.conv2d(groups=...)``, NCHW, forward and autograd backward on
the same sizes) and Keras (TensorFlow's backend, ``layer(x)`` and a GradientTape) are timed where
they import; otherwise their columns say "missing". On a shared machine read the ratios, not the
times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from convolab.nn import grouped_conv_fast

#: (H, W, C, filters, kernel, groups): ConvMixer-256/9's depthwise layer, then 3x3 layers with 4 and 8 groups
SHAPES = [
    (32, 32, 256, 256, 9, 256),
    (32, 32, 64, 64, 3, 4),
    (32, 32, 64, 64, 3, 8),
    (32, 32, 256, 256, 3, 8),
    (16, 16, 128, 256, 3, 4),
]


def median_ms(fn, repeat):
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def convolab_times(x, w, b, groups, repeat, fast):
    """Forward and backward medians (ms) of one path."""
    saved = grouped_conv_fast.use_fast
    grouped_conv_fast.use_fast = fast
    try:
        args = (x, w, b, (1, 1), "same", (1, 1), groups)
        y, cache = grouped_conv_fast.grouped_conv2d_forward_fast(*args)
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
        fwd = median_ms(lambda: grouped_conv_fast.grouped_conv2d_forward_fast(*args), repeat)
        bwd = median_ms(lambda: grouped_conv_fast.grouped_conv2d_backward_fast(dy, cache), repeat)
        return fwd, bwd, y
    finally:
        grouped_conv_fast.use_fast = saved


def torch_times(x, w, b, groups, repeat):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)  # (F, C // groups, kh, kw)
    bt = torch.tensor(b, requires_grad=True)

    def forward():
        with torch.no_grad():
            return F.conv2d(xt, wt, bt, padding="same", groups=groups)

    def backward():
        y = F.conv2d(xt, wt, bt, padding="same", groups=groups)
        y.backward(torch.ones_like(y))

    return median_ms(forward, repeat), median_ms(backward, repeat) - median_ms(forward, repeat)


def keras_times(x, w, b, groups, repeat):
    try:
        import tensorflow as tf
    except ImportError:
        return None
    layer = tf.keras.layers.Conv2D(w.shape[3], w.shape[:2], padding="same", groups=groups)
    xt = tf.constant(x)
    layer(xt)
    layer.set_weights([w, b])

    def backward():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
        tape.gradient(y, [xt] + layer.trainable_variables)

    forward = median_ms(lambda: layer(xt), repeat)
    return forward, median_ms(backward, repeat) - forward


def _cell(times, i):
    return f"{'missing':>8s}" if times is None else f"{times[i]:8.1f}"


def op_table(batch, repeat):
    rng = np.random.default_rng(0)
    print(
        f"{'(N, H, W, C) F k groups':32s} {'fwd ref':>8s} {'fwd fast':>8s} {'ratio':>6s} {'bwd ref':>8s} "
        f"{'bwd fast':>8s} {'ratio':>6s} {'torch f':>8s} {'torch b':>8s} {'keras f':>8s} {'keras b':>8s}"
        f"   (ms, median of {repeat})"
    )
    for h, wd, c, f, k, groups in SHAPES:
        x = rng.standard_normal((batch, h, wd, c)).astype(np.float32)
        w = (rng.standard_normal((k, k, c // groups, f)) / np.sqrt(k * k * c // groups)).astype(np.float32)
        b = rng.standard_normal(f).astype(np.float32)
        f_ref, b_ref, y_ref = convolab_times(x, w, b, groups, repeat, fast=False)
        f_fast, b_fast, y_fast = convolab_times(x, w, b, groups, repeat, fast=True)
        err = float(np.max(np.abs(y_fast - y_ref)) / max(float(np.max(np.abs(y_ref))), 1.0))
        if err > 1e-5:
            raise SystemExit(f"the paths disagree on {(batch, h, wd, c)} groups={groups}: relative error {err:.1e}")
        tt, kt = torch_times(x, w, b, groups, repeat), keras_times(x, w, b, groups, repeat)
        name = f"{(batch, h, wd, c)} {f} {k}x{k} g{groups}"
        print(
            f"{name:32s} {f_ref:8.1f} {f_fast:8.1f} {f_ref / f_fast:5.1f}x {b_ref:8.1f} {b_fast:8.1f} "
            f"{b_ref / b_fast:5.1f}x {_cell(tt, 0)} {_cell(tt, 1)} {_cell(kt, 0)} {_cell(kt, 1)}"
        )


def convmixer(dim=64, depth=2, kernel_size=5, patch_size=2, classes=10):
    """A small ConvMixer (Trockman and Kolter) with Conv2D(groups=dim) as its depthwise layer."""
    from convolab import keras

    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(dim, patch_size, strides=patch_size, activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    for _ in range(depth):
        y = layers.Conv2D(dim, kernel_size, padding="same", groups=dim, activation="relu")(x)
        x = layers.Add()([layers.BatchNormalization()(y), x])
        x = layers.Conv2D(dim, 1, activation="relu")(x)
        x = layers.BatchNormalization()(x)
    outputs = layers.Dense(classes, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def step_times(repeat, images=256, batch=32):
    from convolab import keras

    rng = np.random.default_rng(0)
    x = rng.random((images, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, images)
    results = {}
    saved = grouped_conv_fast.use_fast
    for label, fast in (("reference", False), ("fast", True)):
        grouped_conv_fast.use_fast = fast
        try:
            keras.utils.set_random_seed(0)
            model = convmixer()
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            results[label] = median_ms(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), repeat) / 1e3
        finally:
            grouped_conv_fast.use_fast = saved
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="images a call (ConvMixer trains at 32)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--step", action="store_true", help="also time a small ConvMixer's epoch of 256 images")
    parser.add_argument("--step-repeat", type=int, default=3)
    args = parser.parse_args()
    op_table(args.batch, args.repeat)
    if args.step:
        r = step_times(args.step_repeat)
        print(
            f"ConvMixer-64/2 (5x5) fit, 256 images at batch 32 (median of {args.step_repeat}): "
            f"reference {r['reference']:.2f} s, fast {r['fast']:.2f} s"
        )


if __name__ == "__main__":
    main()
