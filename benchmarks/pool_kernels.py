"""Max pooling's 2x2 forward kernel, one thread, on the lesson's and the zoo's shapes.

    python benchmarks/pool_kernels.py

Prints the best and median of 30 calls of ``ops.pool.max_pool_forward`` (the compiled kernel for
float32) per batch shape. The figures in ``_ckernels.c``'s comments on ``maxpool2x2_fwd8`` come
from this script. Run on a quiet machine.
"""

from __future__ import annotations

import time

import numpy as np

from convolab.nn import pool

#: (name, shape): a batch of 128, NHWC
SHAPES = [
    ("LeNet pool 1", (128, 28, 28, 6)),
    ("LeNet pool 2", (128, 10, 10, 16)),
    ("32 channels", (128, 32, 32, 32)),
    ("VGG 64 channels", (128, 16, 16, 64)),
]


def main(calls=30):
    rng = np.random.default_rng(0)
    print("| input | best ms | median ms |")
    print("|---|---|---|")
    for name, shape in SHAPES:
        x = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)  # a ReLU's output: ties at 0
        pool.max_pool_forward(x)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            pool.max_pool_forward(x)
            times.append(time.perf_counter() - t0)
        print(f"| {name} {shape} | {min(times) * 1e3:.3f} | {np.median(times) * 1e3:.3f} |")


if __name__ == "__main__":
    main()
