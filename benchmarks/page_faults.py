"""Page faults and time per training step of a zoo model, to check the allocator settings.

    python benchmarks/page_faults.py                       # ResNet-20, batch 128, one thread
    python benchmarks/page_faults.py --batch 32 --threads 2
    CONVOLAB_MALLOC_TUNING=0 python benchmarks/page_faults.py   # glibc's defaults, to compare

A step that frees more than glibc's trim threshold hands that memory back to the kernel and
faults it in again on the next step (see ``convolab/allocator.py``). Reports the minor page
faults, the system time and the wall time per step of the second epoch (the first warms up).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from convolab import allocator, zoo
    from convolab.models import parallel

    parallel.set_num_threads(args.threads)
    model = zoo.get(args.model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    x = rng.random((n,) + tuple(model.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], n)
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    print(f"{args.model} batch {args.batch}, {args.threads} thread(s), allocator tuned: {allocator.tuned}")
    print(f"  minor page faults per step: {(r1.ru_minflt - r0.ru_minflt) / args.steps:,.0f}")
    print(f"  system time per step:       {(r1.ru_stime - r0.ru_stime) / args.steps * 1e3:.1f} ms")
    print(f"  wall time per step:         {(t1 - t0) / args.steps * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
