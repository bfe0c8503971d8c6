"""Data parallelism inside one batch: shards of the batch run forward and backward on threads.

On a CPU the lesson's models are small, and one thread leaves the other cores idle: NumPy's
element-wise work and the compiled kernels run on one core, and BLAS splits these skinny
matrix products badly. So a batch of 32 is cut into ``n`` contiguous shards; each thread runs
the whole network on its shard with its own *replica* of every layer (a shallow copy sharing
the weight arrays but keeping its own caches and gradients). NumPy, BLAS and the ctypes
kernels release the GIL, so the shards run at the same time. The shard gradients are summed
in a fixed order and the optimiser takes one step: the same update as the whole batch at once,
up to float rounding, and bitwise repeatable for a given thread count.

A layer computing statistics over the batch (BatchNormalization in training) breaks that
equivalence: on a shard it would normalise with the shard's mean and variance and update the
moving averages once per shard. Keras computes them over the whole batch on a device, so a
model holding such a layer is never sharded (:func:`worth_sharding` says no; the runner refuses
it): the batch runs whole, on the calling thread. Combining shard statistics exactly would
need a barrier between the shards in the middle of the forward pass and another in backward.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..layers.augmentation.base import AugmentationLayer
from ..layers.dropout import Dropout
from . import stack_step

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


#: a shard must carry this much arithmetic (about 100 us on one core) to pay for its hand-off
MIN_SHARD_FLOPS = 10e6


def forward_flops_per_sample(model) -> float:
    """Multiply-adds (x2) of one sample's forward pass through the model's convolution and Dense layers."""
    from ..layers.base_conv import BaseConv
    from ..layers.dense import Dense

    total = 0.0
    for layer in model.layers:
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


def worth_sharding(model, batch_size, n_threads) -> bool:
    """Shards pay when there are cores for them and each carries enough work.

    Measured on the lesson's models at batch 32 on 2 cores: the two-conv CNN (0.93 MFLOP a
    sample) and LeNet (1.30) ran 3-10% faster on shards, the one-conv CNN (0.36) 14% slower,
    the hand-off costing more than its shard's 5.8 MFLOP; at batch 128 all three ran faster.
    """
    if n_threads < 2 or batch_size < 2 * ShardRunner.min_shard or has_batch_statistics(model):
        return False
    if any(getattr(layer, "activity_regularizer", None) for layer in model.layers):
        return False  # the penalty is per whole batch: its gradient would need rescaling per shard
    if getattr(model.loss, "reduction", "sum_over_batch_size") not in ("sum_over_batch_size", "mean"):
        return False  # shards combine as means of the batch; 'sum' and the weighted mean do not
    per_shard = forward_flops_per_sample(model) * batch_size / min(n_threads, batch_size // ShardRunner.min_shard)
    return per_shard >= MIN_SHARD_FLOPS


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


def _replica(layer):
    r = copy.copy(layer)  # shares layer.params (the same dict and arrays)
    r.grads = {}
    return r


class ShardRunner:
    """Runs a model's batches as ``n_threads`` shards on a thread pool."""

    #: below this many samples per shard, threads cost more than they save
    min_shard = 4

    def __init__(self, model, n_threads):
        if has_batch_statistics(model):
            names = [l.describe() for l in model.layers if getattr(l, "batch_statistics", False)]
            raise ValueError(
                f"ShardRunner: {model.describe()} holds {', '.join(names)}, whose batch statistics "
                "a shard cannot compute; run its batches whole"
            )
        self.model = model
        self.n = n_threads
        self.replicas = [[_replica(layer) for layer in model.layers] for _ in range(n_threads)]
        self.pool = ThreadPoolExecutor(max_workers=max(1, n_threads - 1), thread_name_prefix="convolab")
        # layers drawing random numbers in training: each shard's replica gets its own generator
        self._random = [i for i, l in enumerate(model.layers) if isinstance(l, (Dropout, AugmentationLayer))]

    def _run(self, fn, k):
        """``[fn(0), ..., fn(k - 1)]``, shard 0 on the calling thread, the rest on the pool
        (one hand-off fewer per batch than sending every shard away)."""
        futures = [self.pool.submit(fn, t) for t in range(1, k)]
        first = fn(0)
        return [first] + [f.result() for f in futures]

    def close(self):
        self.pool.shutdown(wait=True)

    def shards(self, n):
        k = min(self.n, max(1, n // self.min_shard))
        bounds = np.linspace(0, n, k + 1).astype(int)
        return [slice(bounds[i], bounds[i + 1]) for i in range(k)]

    def _seed_shards(self, shards):
        """Give each shard's Dropout and augmentation replicas their own stream, drawn from the
        layer's generator (its ``seed=``) or convolab's global one, so a seeded run stays
        repeatable: one generator shared by the shards' threads would hand out its numbers in
        whichever order the threads happen to ask."""
        if not self._random:
            return
        from ..random import get_generator

        for i in self._random:
            source = self.model.layers[i]._rng or get_generator()
            seeds = source.integers(0, 2**63, size=len(shards))
            for t in range(len(shards)):
                self.replicas[t][i]._rng = np.random.default_rng(int(seeds[t]))

    def train_step(self, x, y, sample_weight=None):
        """Forward and backward on shards, one optimiser step.

        Returns:
            ``(loss, output)``: the batch loss (``sum(w_i * loss_i) / N`` over the whole batch) and
            the whole batch's output as metrics see it (probabilities), for the caller's metrics.
        """
        model = self.model
        n = len(x)
        shards = self.shards(n)
        self._seed_shards(shards)
        fused = stack_step.fused_softmax(model)

        def work(t):
            s = shards[t]
            layers = self.replicas[t]
            sw = None if sample_weight is None else sample_weight[s]
            out, loss, dout = stack_step.loss_and_grad(layers, model.loss, x[s], y[s], True, fused, sw)
            dout *= dout.dtype.type((s.stop - s.start) / n)  # shard mean -> whole-batch mean
            out = stack_step.metric_output(out, fused)
            if np.isfinite(loss):
                stack_step.backward(layers, dout, model._first_trainable, fused)
            return loss * (s.stop - s.start), out

        results = self._run(work, len(shards))
        loss = float(sum(r[0] for r in results) / n) + stack_step.weight_penalty(model.layers)
        out = np.concatenate([r[1] for r in results], axis=0)
        if not np.isfinite(loss):
            return loss, out
        params, grads = [], []
        for li, layer in enumerate(model.layers):
            penalties = dict(layer.weight_regularizers())
            for key in layer.trainable_keys():
                params.append(layer.params[key])
                g = self.replicas[0][li].grads[key]
                for t in range(1, len(shards)):
                    g = g + self.replicas[t][li].grads[key]
                if key in penalties:
                    g = g + penalties[key].gradient(layer.params[key])
                grads.append(g)
        model.optimizer._apply_arrays(params, grads)  # the engine's raw arrays: no public-API checks per step
        stack_step.apply_constraints(model.layers)
        return loss, out

    def forward(self, x, training=False, logits=False):
        """Model output for a batch, shards computed on threads."""
        shards = self.shards(len(x))
        if len(shards) == 1:
            return stack_step.forward(self.replicas[0], x, training, logits)
        outs = self._run(lambda t: stack_step.forward(self.replicas[t], x[shards[t]], training, logits), len(shards))
        return np.concatenate(outs, axis=0)
