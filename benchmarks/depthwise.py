"""Depthwise convolution: the C kernels against the NumPy reference, on MobileNet's shapes.

    python benchmarks/depthwise.py               # per-op medians, forward and backward
    python benchmarks/depthwise.py --step        # also MobileNet's training step (256 images)

For each depthwise layer of ``zoo.mobilenet()`` at batch 32 (3x3, 'same', stride 1 or 2), the
forward and the backward (input and kernel gradient) run ``--repeat`` times each way and the
median is reported, with the ratio reference / C. "reference" is the grouped im2col path that
float64 (and float32 before the kernels) takes, with the im2col/col2im kernels on, as it was;
"C" the depthwise kernels. The step timing trains the whole model for one epoch of 256 random
images at batch 32 with either path. A shared machine inflates both sides: read the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from convolab import keras, kernels, zoo
from convolab.nn import depthwise_conv

#: (H, W, C, stride) of the depthwise layers of zoo.mobilenet() on 32x32 images
SHAPES = [(32, 32, 32, 1), (32, 32, 64, 2), (16, 16, 128, 1), (16, 16, 128, 2), (8, 8, 256, 1)]


def median_ms(fn, repeat):
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def op_table(repeat, batch=32):
    rng = np.random.default_rng(0)
    print(
        f"{'shape (N,H,W,C) stride':28s} {'fwd ref':>9s} {'fwd C':>8s} {'ratio':>6s} "
        f"{'bwd ref':>9s} {'bwd C':>8s} {'ratio':>6s}   (ms, median of {repeat})"
    )
    for h, w, c, s in SHAPES:
        x = rng.standard_normal((batch, h, w, c)).astype(np.float32)
        k = (rng.standard_normal((3, 3, c, 1)) / 3).astype(np.float32)
        args = (None, (s, s), "same", (1, 1))
        y, c_cache = depthwise_conv.depthwise_conv2d_forward(x, k, *args)
        _, ref_cache = depthwise_conv._reference_forward(x, k, *args)
        assert c_cache[0] == "c" and ref_cache[0][0] == "grouped"
        dy = rng.standard_normal(y.shape).astype(np.float32)
        f_ref = median_ms(lambda: depthwise_conv._reference_forward(x, k, *args), repeat)
        f_c = median_ms(lambda: depthwise_conv.depthwise_conv2d_forward(x, k, *args), repeat)
        b_ref = median_ms(lambda: depthwise_conv.depthwise_conv2d_backward(dy, ref_cache), repeat)
        b_c = median_ms(lambda: depthwise_conv.depthwise_conv2d_backward(dy, c_cache), repeat)
        print(
            f"{str((batch, h, w, c)) + ' s' + str(s):28s} {f_ref:9.2f} {f_c:8.2f} {f_ref / f_c:5.1f}x "
            f"{b_ref:9.2f} {b_c:8.2f} {b_ref / b_c:5.1f}x"
        )


def step_times(repeat, images=256, batch=32):
    rng = np.random.default_rng(0)
    x = rng.random((images, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, images)
    saved = kernels.lib
    results = {}
    for label, lib in (("reference", None), ("C", saved)):
        kernels.lib = lib
        try:
            keras.utils.set_random_seed(0)
            model = zoo.mobilenet()
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            results[label] = median_ms(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), repeat) / 1e3
        finally:
            kernels.lib = saved
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--step", action="store_true", help="also time MobileNet's training epoch of 256 images")
    parser.add_argument("--step-repeat", type=int, default=5)
    args = parser.parse_args()
    if not kernels.available():
        raise SystemExit("the compiled kernels are not built")
    op_table(args.repeat)
    if args.step:
        r = step_times(args.step_repeat)
        print(
            f"MobileNet fit, 256 images at batch 32 (median of {args.step_repeat}): "
            f"all kernels off {r['reference']:.2f} s, on {r['C']:.2f} s"
        )


if __name__ == "__main__":
    main()
