"""What one hand-off to the op threads costs, the fixed price every split op pays on top of
its work, both ways nn/threads.py splits an op:

- Python threads: ``threads.run`` of an empty task over two slices;
- the kernels' own threads (kernels/pool.h): a compiled kernel call on a tiny array with
  ``threads=2`` against the same call with ``threads=1``;

and how many hand-offs of each kind a ResNet-20 training step makes (batch 32, 2 threads).

    python benchmarks/handoff.py
"""

from __future__ import annotations

import time

import numpy as np

from convolab import kernels
from convolab.nn import threads


def _per_call(fn, calls):
    fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def main(calls=10000):
    with threads.batch_threads(2):
        parts = [(0, 1), (1, 2)]
        per = _per_call(lambda: threads.run(lambda lo, hi: None, parts), calls)
    print(f"threads.run of an empty task on 2 Python threads: {per * 1e6:.1f} us a hand-off (mean of {calls:,})")
    if not kernels.available():
        print("the compiled kernels are not built: no kernel-thread figure")
        return
    x = np.ones(64, np.float32)
    y = np.empty_like(x)
    one = min(_per_call(lambda: kernels.relu_fwd_f32(x, y, threads=1), calls) for _ in range(3))
    two = min(_per_call(lambda: kernels.relu_fwd_f32(x, y, threads=2), calls) for _ in range(3))
    print(
        f"a kernel call on 64 floats: {one * 1e6:.2f} us on 1 thread, {two * 1e6:.2f} us split over 2 of the "
        f"kernels' threads: {(two - one) * 1e6:.2f} us a hand-off (best of 3 means of {calls:,})"
    )
    count_per_step()


def count_per_step(steps=8, batch=32):
    """Hand-offs a ResNet-20 training step makes at batch 32 on 2 threads: kernel calls split over
    the kernels' threads (kernels.pool_counts) and splits on Python threads (threads.run)."""
    from convolab import keras, zoo

    keras.utils.set_random_seed(0)
    model = zoo.get("resnet20")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, steps * batch)
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # build and warm up
    python_runs = []
    real_run = threads.run
    threads.run = lambda fn, parts: python_runs.append(1) or real_run(fn, parts)
    try:
        before = kernels.pool_counts()["jobs"]
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        jobs = kernels.pool_counts()["jobs"] - before
    finally:
        threads.run = real_run
    from convolab.models import parallel

    print(
        f"ResNet-20, batch {batch}, {parallel.default_num_threads()} threads: {jobs / steps:.0f} kernel "
        f"calls split over the kernels' threads and {len(python_runs) / steps:.0f} splits on Python threads a step"
    )


if __name__ == "__main__":
    main()
