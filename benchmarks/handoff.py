"""What one hand-off to the op threads costs (ops/threads.py): ``threads.run`` of an empty task
over two slices, the fixed price every split op pays on top of its work.

    python benchmarks/handoff.py
"""
from __future__ import annotations

import time

from convolab.ops import threads


def main(calls=10000):
    with threads.batch_threads(2):
        parts = [(0, 1), (1, 2)]
        threads.run(lambda lo, hi: None, parts)
        t0 = time.perf_counter()
        for _ in range(calls):
            threads.run(lambda lo, hi: None, parts)
        per = (time.perf_counter() - t0) / calls
    print(f"threads.run of an empty task on 2 threads: {per * 1e6:.1f} us a hand-off (mean of {calls:,})")


if __name__ == "__main__":
    main()
