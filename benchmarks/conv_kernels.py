"""Convolution throughput per code path, one thread: im2col + BLAS, the AVX2 and the AVX-512
fused kernels, on the lesson's and the zoo's layer shapes.

    python benchmarks/conv_kernels.py

For each layer it times the forward (``y``) and the backward (``dx``, ``dW``, ``db``) through
``convolab.nn.conv`` and prints GFLOP/s (2 multiply-adds per tap per output; the backward
counts twice the forward's FLOPs). The best of 5 calls after a warm-up. The AVX2 loops take at
most 32 filters; where a layer has more, its column is empty. Run on a quiet machine. The
figures in ``nn/conv.py``'s comments come from this script.

A second table times the two routes to a stride-1 input gradient on the fused kernels (the
best instruction set), 128 images: as a convolution of the padded ``dy`` with the flipped kernel,
and as a 1x1 convolution (``dy @ W.T``) followed by col2im (``nn/conv.py``, ``_mostly_padding``).
"""

from __future__ import annotations

import time

import numpy as np

from convolab import kernels
from convolab.nn import conv

#: (name, N, H, W, C, k, F): 'valid' stride-1 layers for the input-gradient routes
DX_SHAPES = [
    ("LeNet conv 1", 128, 32, 32, 3, 5, 6),
    ("LeNet conv 2", 128, 14, 14, 6, 5, 16),
    ("two-conv model, conv 2", 128, 12, 12, 10, 5, 20),
    ("3x3, 16x16x8, 16 filters", 128, 16, 16, 8, 3, 16),
    ("3x3, 16x16x32, 32 filters", 128, 16, 16, 32, 3, 32),
]

#: (name, N, H, W, C, k, F, stride, padding): one thread's share of a batch
SHAPES = [
    ("one-conv model, conv 1", 64, 28, 28, 1, 5, 9, 1, "valid"),
    ("two-conv model, conv 2", 64, 12, 12, 10, 5, 20, 1, "valid"),
    ("LeNet conv 1", 64, 32, 32, 3, 5, 6, 1, "valid"),
    ("LeNet conv 2", 64, 14, 14, 6, 5, 16, 1, "valid"),
    ("ResNet-20 stage 1", 32, 32, 32, 16, 3, 16, 1, "same"),
    ("ResNet-20 stage 2", 32, 16, 16, 32, 3, 32, 1, "same"),
    ("ResNet-20 stage 3", 32, 8, 8, 64, 3, 64, 1, "same"),
    ("ResNet-20 stride 2", 32, 32, 32, 16, 3, 32, 2, "same"),
    ("VGG 128 filters", 32, 8, 8, 128, 3, 128, 1, "same"),
    ("VGG 64 filters", 32, 16, 16, 64, 3, 64, 1, "same"),
    ("MobileNet pointwise", 32, 16, 16, 64, 1, 128, 1, "same"),
]


def best_of(fn, repeat=5):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    from threadpoolctl import threadpool_limits

    if kernels.lib is None:
        raise SystemExit("the compiled kernels are not built")
    isas = kernels.available_isas()
    paths = ["im2col"] + list(isas)[::-1]
    rng = np.random.default_rng(0)
    print(f"GFLOP/s, forward / backward, one thread; fused kernels here: {', '.join(isas) or 'none'}")
    print(f"| layer | {' | '.join(paths)} |")
    print("|---|" + "---|" * len(paths))
    with threadpool_limits(1):
        for name, n, h, w_, c, k, f, s, pad in SHAPES:
            x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
            w = rng.standard_normal((k, k, c, f)).astype(np.float32)
            b = np.zeros(f, np.float32)
            cells = []
            for path in paths:
                if path == "avx2" and f > 32:
                    cells.append("-")
                    continue
                kernels.lib.fused_conv = path != "im2col"
                if path != "im2col":
                    kernels.set_fused_isa(path)
                try:

                    def fwd():
                        return conv._conv2d_forward_one(x, w, b, (s, s), pad, (1, 1), None)

                    y, cache = fwd()
                    dy = rng.standard_normal(y.shape).astype(np.float32)
                    flops = 2.0 * y.size * k * k * c
                    tf = best_of(fwd)
                    tb = best_of(lambda: conv.conv2d_backward(dy, cache))
                finally:
                    kernels.lib.fused_conv = True
                    kernels.set_fused_isa("best")
                cells.append(f"{flops / tf / 1e9:.0f} / {2 * flops / tb / 1e9:.0f}")
            print(f"| {name} | {' | '.join(cells)} |")
        if isas:
            input_gradient_routes(rng)


def input_gradient_routes(rng):
    """ms for the stride-1 input gradient as a convolution and as a 1x1 product + col2im."""
    from convolab.nn.im2col import col2im

    print("\nstride-1 input gradient, ms, one thread (area ratio: input pixels / output pixels)")
    print("| layer | area ratio | as a convolution | 1x1 product + col2im |")
    print("|---|---|---|---|")
    for name, n, h, w_, c, k, f in DX_SHAPES:
        x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
        w = (rng.standard_normal((k, k, c, f)) * 0.1).astype(np.float32)
        ho, wo = h - k + 1, w_ - k + 1
        dy = rng.standard_normal((n, ho, wo, f)).astype(np.float32)
        wt = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))
        wk = np.ascontiguousarray(w.reshape(-1, f).T).reshape(1, 1, f, -1)

        def by_product():
            cols = conv._fused_forward(dy.reshape(n, 1, ho * wo, f), wk, None, (1, 1), ((0, 0), (0, 0)), (1, ho * wo))
            return col2im(cols.reshape(n * ho * wo, -1), x.shape, (k, k), (1, 1), "valid")

        t_conv = best_of(lambda: conv._input_gradient_stride1(dy, wt, ((0, 0), (0, 0))))
        t_prod = best_of(by_product)
        print(f"| {name} | {h * w_ / (ho * wo):.2f} | {t_conv * 1e3:.2f} | {t_prod * 1e3:.2f} |")


if __name__ == "__main__":
    main()
