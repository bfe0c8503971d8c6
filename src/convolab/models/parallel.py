"""Threads for one model's work on a CPU: how many, whether shards of a batch pay, BLAS's own.

On a CPU the lesson's models are small, and one thread leaves the other cores idle: NumPy's
element-wise work and the compiled kernels run on one core, and BLAS splits these skinny
matrix products badly. So the runner (``runner.py``) cuts a batch of 32 into ``n`` contiguous
shards, each run through its own replicas of the layers on a thread. This module holds the
policy: how many threads (:func:`default_num_threads`), whether a shard carries enough work to
pay for its hand-off (``plan.worth_sharding``), and one BLAS thread while shards run.

A layer computing statistics over the batch (BatchNormalization in training) breaks the
equivalence of shards with the whole batch: on a shard it would normalise with the shard's mean
and variance and update the moving averages once per shard. Keras computes them over the whole
batch on a device, so such a model is never sharded (its plan says why, ``plan.why_whole``).
Combining shard statistics exactly would need a barrier between the shards in the middle of the
forward pass and another in backward.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading


_num_threads = None


def default_num_threads() -> int:
    """``CONVOLAB_NUM_THREADS`` if set, else the number of usable cores, at most 4."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("CONVOLAB_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"CONVOLAB_NUM_THREADS must be an integer; got {env!r}") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def set_num_threads(n) -> None:
    """Threads that train and predict on shards of each batch (``None``: back to the default)."""
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads expects an int >= 1 or None; got {n!r}")
    _num_threads = n


#: below this many samples per shard, threads cost more than they save
MIN_SHARD = 4

#: a shard must carry this much arithmetic (about 100 us on one core) to pay for its hand-off
MIN_SHARD_FLOPS = 10e6


def forward_flops_per_sample(model) -> float:
    """Multiply-adds (x2) of one sample's forward pass through the model's convolution and Dense layers."""
    return flops_per_sample(model.layers)


def flops_per_sample(layers) -> float:
    """Multiply-adds (x2) of one sample's forward pass through ``layers``' convolutions and Dense layers."""
    from ..layers.base_conv import BaseConv
    from ..layers.dense import Dense

    total = 0.0
    for layer in layers:
        if isinstance(layer, BaseConv):
            # every kernel weight (grouped, depthwise or pointwise) is one multiply-add per output pixel
            _, ho, wo, _ = layer.output_shape
            if ho is None or wo is None:
                # built for any image size (keras.Input((None, None, C))): the work per sample is
                # unknown until the data comes; count it as enough to shard, as large images are
                return math.inf
            total += 2.0 * sum(p.size for key, p in layer.params.items() if key != "bias") * ho * wo
        elif isinstance(layer, Dense):
            if any(d is None for d in layer.input_shape[1:]):
                return math.inf
            rows = math.prod(layer.input_shape[1:-1])
            total += 2.0 * layer.input_shape[-1] * layer.units * rows
    return total


def has_batch_statistics(model) -> bool:
    """True when a layer normalises with statistics of the whole batch (see the module docstring)."""
    return any(getattr(layer, "batch_statistics", False) for layer in model.layers)


_blas = {"users": 0, "limits": None}
_blas_lock = threading.Lock()


@contextlib.contextmanager
def blas_single_threaded():
    """A context in which BLAS uses one thread (our shards are the parallelism).

    BLAS's thread count is one setting for the whole process. With several threads inside at
    once (concurrent predicts), the first to enter sets it and the last to leave restores it:
    threadpoolctl's own contexts, left in another order than entered, would restore the
    single thread for good.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its own threads
        yield
        return
    with _blas_lock:
        if _blas["users"] == 0:
            _blas["limits"] = threadpool_limits(limits=1, user_api="blas")
        _blas["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                _blas["limits"].restore_original_limits()
                _blas["limits"] = None
