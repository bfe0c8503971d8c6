"""What one hand-off to the op threads costs, the fixed price every split op pays on top of
its work, both ways ops/threads.py splits an op:

- Python threads: ``threads.run`` of an empty task over two slices;
- the kernels' own threads (kernels/pool.h): a compiled kernel call on a tiny array with
  ``threads=2`` against the same call with ``threads=1``.

    python benchmarks/handoff.py
"""
from __future__ import annotations

import time

import numpy as np

from convolab import kernels
from convolab.ops import threads


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
    print(f"a kernel call on 64 floats: {one * 1e6:.2f} us on 1 thread, {two * 1e6:.2f} us split over 2 of the "
          f"kernels' threads: {(two - one) * 1e6:.2f} us a hand-off (best of 3 means of {calls:,})")


if __name__ == "__main__":
    main()
