"""Where convolab's training time goes: im2col, GEMM, col2im, pooling, activations, optimiser.

The op functions are wrapped with timers from the outside (nothing in the engine changes),
then each lesson model trains 300 batches of 32 on random data, on one thread (with shards
on several threads the timers would add up the threads' time). "conv GEMM/fused kernels" is the
conv time not spent in a separate im2col/col2im: BLAS products, or the fused C kernels
that do im2col and the product in one pass.
"""

from __future__ import annotations

import time
from collections import defaultdict


TOTALS: dict = defaultdict(float)


def _wrap(module, name, label):
    fn = getattr(module, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TOTALS[label] += time.perf_counter() - t0

    setattr(module, name, timed)
    return fn


def profile_model(name, steps=300):
    from convolab.layers import base_activated as activated, conv, dense, pooling
    from convolab.nn import conv as conv_ops
    from convolab.optimizers import base as opt_base
    from run import convolab_model, make_data

    from peers import SHAPES

    originals = [
        (conv_ops, "im2col", _wrap(conv_ops, "im2col", "im2col")),
        (conv_ops, "col2im", _wrap(conv_ops, "col2im", "col2im")),
        (conv, "conv2d_forward", _wrap(conv, "conv2d_forward", "conv total")),
        (conv, "conv2d_backward", _wrap(conv, "conv2d_backward", "conv total")),
        (dense, "dense_forward", _wrap(dense, "dense_forward", "dense")),
        (dense, "dense_backward", _wrap(dense, "dense_backward", "dense")),
        (activated, "activation_forward", _wrap(activated, "activation_forward", "activations")),
        (activated, "activation_backward", _wrap(activated, "activation_backward", "activations")),
        (opt_base.Optimizer, "apply", _wrap(opt_base.Optimizer, "apply", "optimiser")),
    ]
    pool_orig = (pooling._Pooling2D.call, pooling._Pooling2D.backward)
    _wrap(pooling._Pooling2D, "call", "pooling")
    _wrap(pooling._Pooling2D, "backward", "pooling")
    from convolab.models import parallel

    parallel.set_num_threads(1)
    TOTALS.clear()
    try:
        x, y = make_data(name, 32 * steps)
        model = convolab_model(name, SHAPES[name])
        model.fit(x[:640], y[:640], batch_size=32, epochs=1, verbose=0)
        TOTALS.clear()
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
        total = time.perf_counter() - t0
    finally:
        parallel.set_num_threads(None)
        for module, attr, fn in originals:
            setattr(module, attr, fn)
        pooling._Pooling2D.call, pooling._Pooling2D.backward = pool_orig
    t = dict(TOTALS)
    t["conv GEMM/fused kernels"] = t.pop("conv total", 0.0) - t.get("im2col", 0.0) - t.get("col2im", 0.0)
    t["everything else"] = total - sum(t.values())
    return total, t


def profile_all():
    out = []
    for name in ("simple", "multi", "lenet"):
        total, parts = profile_model(name)
        out.append(
            f"{name}: {total / 300 * 1e6:.0f} us per batch of 32, mean of 300 "
            "(a ReLU forward runs in place inside its layer and counts under 'everything else')"
        )
        for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
            out.append(f"  {k:24s} {v / 300 * 1e6:7.0f} us  {100 * v / total:5.1f}%")
    return "\n".join(out)
