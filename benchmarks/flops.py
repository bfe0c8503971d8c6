"""How far from the limit: FLOPs per epoch, the machine's sgemm peak, and the fraction each framework reaches.

    python benchmarks/run.py --batch-sizes 32,64,128,256 --json bench.json
    python benchmarks/flops.py bench.json

FLOPs count the multiply-adds (x2) of every convolution and Dense layer: the forward pass, the
kernel gradient (as many as the forward) and the input gradient (as many again, except for the
first layer, which needs none): ``3 x forward - first layer``. Pooling, activations, the loss and
the optimizer are left out (a few percent). Two ceilings are measured here and now: NumPy's
sgemm (the best of 2048 x 2048 float32 products, on one thread and on every core: what an
im2col + BLAS path can reach), and the CPU's FMA throughput (``fma_peak.c``, compiled with the
system's C compiler, run on every core at once: what any code can reach). The percentages are
of the FMA ceiling where it could be measured, else of sgemm's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def sgemm_peak(threads, n=2048, repeat=5):
    """GFLOP/s of an ``n x n`` float32 product on ``threads`` BLAS threads (best of ``repeat``)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    with threadpool_limits(threads, "blas"):
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(repeat))
    return 2.0 * n**3 / best / 1e9


def fma_ceiling():
    """``{'avx2': GFLOP/s, 'avx512': GFLOP/s}`` summed over one process per core, or ``{}``
    without a C compiler."""
    import os
    import shutil
    import subprocess
    import tempfile

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return {}
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fma_peak.c")
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "fma_peak")
        if subprocess.run([cc, "-O3", src, "-o", exe], capture_output=True).returncode:
            return {}
        procs = [subprocess.Popen([exe], stdout=subprocess.PIPE, text=True) for _ in range(os.cpu_count() or 1)]
        for p in procs:
            out, _ = p.communicate()
            for line in out.splitlines():
                name, value = line.split()
                totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def training_flops_per_image(name):
    """``3 x forward - first layer`` FLOPs of one training image through the model ``name``."""
    from convolab.layers.base_conv import BaseConv
    from convolab.layers.dense import Dense
    from convolab.models.parallel import forward_flops_per_sample

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from run import SHAPES, convolab_model, ZOO  # noqa: E402

    if name in ZOO:
        from convolab import zoo

        model = zoo.get(name)
        layers = [l for l in model.layers if isinstance(l, (BaseConv, Dense))]
        forward = sum(_layer_flops(l) for l in layers)
    else:
        model = convolab_model(name, SHAPES[name])
        forward = forward_flops_per_sample(model)
        layers = [l for l in model.layers if isinstance(l, (BaseConv, Dense))]
    first = _layer_flops(layers[0])
    return 3.0 * forward - first


def _layer_flops(layer):
    from convolab.layers.base_conv import BaseConv

    if isinstance(layer, BaseConv):
        _, ho, wo, _ = layer.output_shape
        return 2.0 * sum(p.size for key, p in layer.params.items() if key != "bias") * ho * wo
    rows = int(np.prod(layer.input_shape[1:-1])) if len(layer.input_shape) > 2 else 1
    return 2.0 * layer.input_shape[-1] * layer.units * rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", help="the --json file of benchmarks/run.py")
    args = ap.parse_args(argv)
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from run import EPOCH_SIZE  # noqa: E402

    results = [r for r in json.load(open(args.bench)) if "epoch_s" in r]
    one, every = sgemm_peak(1), sgemm_peak(None)
    print(f"sgemm peak: {one:.0f} GFLOP/s on one thread, {every:.0f} on every core")
    fma = fma_ceiling()
    if fma:
        print("FMA ceiling on every core: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in fma.items()))
    peak = max(fma.values()) if fma else every
    print(f"percentages below: of {peak:.0f} GFLOP/s ({'FMA ceiling' if fma else 'sgemm'})\n")
    models = list(dict.fromkeys(r["model"] for r in results))
    frameworks = list(dict.fromkeys(r["framework"] for r in results))
    per_image = {m: training_flops_per_image(m) for m in models}
    head = ["model", "batch", "GFLOP/epoch"] + [f"{f} GFLOP/s (% of peak)" for f in frameworks]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for m in models:
        for b in sorted({r["batch"] for r in results if r["model"] == m}):
            gflop = per_image[m] * EPOCH_SIZE[m] / 1e9
            row = [m, str(b), f"{gflop:.1f}"]
            for f in frameworks:
                r = next((r for r in results if r["model"] == m and r["batch"] == b and r["framework"] == f), None)
                row.append(
                    "n/a" if r is None else f"{gflop / r['epoch_s']:.0f} ({100 * gflop / r['epoch_s'] / peak:.0f}%)"
                )
            print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
