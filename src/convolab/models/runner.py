"""The one runner: it runs a model's compiled :class:`~convolab.models.plan.Plan` batch by batch
and owns every per-call cache.

``fit``, ``evaluate``, ``predict`` and ``train_on_batch`` each run inside :func:`running`, which
marks the model busy on this thread (``thread_use.py``: which calls may share a model) and gives
the thread a :class:`Runner`. A direct ``model(x)`` on NumPy data gets a runner of its own. A call
made inside another on the same thread (the validation pass inside ``fit``, a callback's
``predict``) shares the outer call's runner.

The runner compiles the plan at its first batch, when the model has been built from the data,
and then, for the stack engine, makes its *replicas*: a shallow copy of each layer per shard,
sharing the weight arrays but holding its own caches and gradients. The user's layers never hold
a batch's caches, and two threads predicting with one model never share one.

Shards (on a CPU, when the work pays, see ``parallel.py``): a batch is cut into ``n`` contiguous
shards run on a thread pool, each through its own replicas; NumPy, BLAS and the compiled kernels
release the GIL, so they run at once. Shard gradients are summed in a fixed order and the
optimizer takes one step: the whole batch's update, up to float rounding, repeatable for a given
thread count. A model whose plan says ``why_whole`` (batch statistics, an activity penalty, a loss
reduction that is not a mean) runs its batches whole; with batch statistics the large ops split
their work over the cores instead (``nn/threads.py``). The tape engine runs the model through
``__call__`` under a GradientTape (``tape_step.py``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..autodiff.tensor import unwrap
from ..nn import threads
from . import parallel, stack_step, tape_step, thread_use
from .plan import compile_plan, shards_pay


def _replica(layer, need_input_grad):
    r = copy.copy(layer)  # shares layer.params (the same dict and arrays)
    r.grads = {}
    r.need_input_grad = need_input_grad
    return r


class Runner:
    """Runs one model's batches on this thread; see the module docstring.

    Args:
        model: the model.
        n_threads: the most shards a batch is cut into (1: whole batches on the calling thread).
        batch_size: the pass's batch size, to judge whether shards pay.
        plan: a compiled plan (default: compiled from the model at the first batch).
        shards: cut every batch into this many shards whether or not it pays (tests compare
            shards with whole batches); a model whose batches must run whole is refused.
        one_blas_thread: on the stack engine, BLAS runs on one thread for the runner's life even
            when the batches run whole (fit/evaluate/predict: the lesson models' small products
            lose more to BLAS's thread hand-offs than they gain; measured 15% on LeNet's predict).
    """

    #: below this many samples per shard, threads cost more than they save
    min_shard = parallel.MIN_SHARD

    def __init__(self, model, n_threads=1, batch_size=32, plan=None, shards=None, one_blas_thread=False):
        self.model = model
        self._one_blas_thread = one_blas_thread
        self.n_threads = n_threads if shards is None else shards
        self._forced = shards
        self.batch_size = batch_size
        self.plan = plan
        self._set_up = False
        self.n = 1
        self.replicas = None
        self.pool = None
        self._contexts = contextlib.ExitStack()
        if plan is not None or shards is not None:
            self._setup()

    # -- set up at the first batch ---------------------------------------------------------
    def _setup(self):
        self._set_up = True
        plan = self.plan = self.plan or compile_plan(self.model)
        if self._forced is not None and self._forced > 1 and (not plan.stack or plan.why_whole):
            holders = [l.describe() for l in plan.layers if getattr(l, "batch_statistics", False)]
            raise ValueError(
                f"Runner: {self.model.describe()} "
                + (f"holds {', '.join(holders)}, whose batch statistics a shard cannot compute" if holders else "")
                + (f"runs its batches whole: {plan.why_whole or plan.why_tape}" if not holders else "")
                + "; run its batches whole"
            )
        on_gpu = backend.on_gpu()
        if not plan.stack or any(getattr(l, "batch_statistics", False) for l in plan.layers):
            if not on_gpu and self.n_threads > 1:  # the large ops split their batch over the cores
                self._contexts.enter_context(threads.batch_threads(self.n_threads))
        elif not on_gpu and (self.n_threads > 1 or self._one_blas_thread):
            self._contexts.enter_context(parallel.blas_single_threaded())  # the shards are the parallelism
            if self._forced is not None or shards_pay(plan, self.batch_size, self.n_threads):
                self.n = self.n_threads
        if not plan.stack:
            return
        if on_gpu:  # a seeded Dropout's GPU stream is made on the layer itself, so the next pass goes on with it
            for i in plan.random_layers:
                layer = plan.layers[i]
                if getattr(layer, "seed", None) is not None and getattr(layer, "_device_rng", False) is None:
                    from .. import random as random_mod

                    layer._device_rng = random_mod.device_generator(layer.seed)
        need = [i > plan.first_trainable for i in range(len(plan.layers))]
        self.replicas = [[_replica(l, g) for l, g in zip(plan.layers, need)] for _ in range(self.n)]
        if self.n > 1:
            self.pool = ThreadPoolExecutor(max_workers=self.n - 1, thread_name_prefix="convolab")

    def compiled(self):
        """The plan this runner runs (compiled now if no batch has run yet)."""
        return self._ready()

    def _ready(self):
        if not self._set_up:
            self._setup()
        return self.plan

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        self._contexts.close()

    # -- shards ------------------------------------------------------------------------------
    def shards(self, n):
        """``n`` samples as at most ``self.n`` contiguous slices of near-equal size."""
        k = min(self.n, max(1, n // self.min_shard))
        if k == 1:
            return [slice(0, n)]
        bounds = [i * n // k for i in range(k + 1)]  # linspace's integer bounds, exactly
        return [slice(bounds[i], bounds[i + 1]) for i in range(k)]

    def _run(self, fn, k):
        """``[fn(0), ..., fn(k - 1)]``, shard 0 on the calling thread, the rest on the pool
        (one hand-off fewer per batch than sending every shard away)."""
        futures = [self.pool.submit(fn, t) for t in range(1, k)]
        first = fn(0)
        return [first] + [f.result() for f in futures]

    def _seed_shards(self, k):
        """Give each shard's Dropout and augmentation replicas their own stream, drawn from the
        layer's generator (its ``seed=``) or convolab's global one, so a seeded run stays
        repeatable: one generator shared by the shards' threads would hand out its numbers in
        whichever order the threads happen to ask."""
        if k < 2 or not self.plan.random_layers:
            return
        from ..random import get_generator

        for i in self.plan.random_layers:
            source = self.plan.layers[i]._rng or get_generator()
            seeds = source.integers(0, 2**63, size=k)
            for t in range(k):
                self.replicas[t][i]._rng = np.random.default_rng(int(seeds[t]))

    def _check_input(self, x):
        """A functional chain's data against its Input (a Sequential checked it when it built)."""
        t = self.plan.input_tensor
        if t is not None:
            return self.model._conform(t, x)
        return x

    # -- running ------------------------------------------------------------------------------
    def forward(self, x, training=False, logits=False):
        """The model's output on one batch (logits, when ``logits`` and the plan fuses its softmax)."""
        plan = self._ready()
        if not plan.stack:
            return unwrap(self.model._tape_forward(x, training))
        x = self._check_input(x)
        folds = None if training else (plan.folds_logits if logits else plan.folds)
        shards = self.shards(len(x))
        if len(shards) == 1:
            return stack_step.forward(self.replicas[0], x, training, logits, folds)
        outs = self._run(
            lambda t: stack_step.forward(self.replicas[t], x[shards[t]], training, logits, folds), len(shards)
        )
        return get_array_module(outs[0]).concatenate(outs, axis=0)

    def train_step(self, x, y, sample_weight=None, tape=False):
        """One optimizer step on one batch.

        Returns:
            ``(output, loss, per-output losses or None)``: the output as metrics see it
            (probabilities), the batch loss (``sum(w_i * loss_i) / N`` plus the penalties).
            ``tape``: on the tape whatever the plan (the model's own loss: its ``compute_loss``).
        """
        plan = self._ready()
        if tape or not plan.stack or plan.loss_on_tape:
            return tape_step.tape_train_step(self.model, x, y, sample_weight)
        x = self._check_input(x)
        model = self.model
        fused = plan.fused_softmax
        n = len(x)
        shards = self.shards(n)
        self._seed_shards(len(shards))

        def work(t):
            s = shards[t]
            layers = self.replicas[t]
            sw = None if sample_weight is None else sample_weight[s]
            whole = len(shards) == 1
            xs, ys = (x, y) if whole else (x[s], y[s])
            out, loss, dout = stack_step.loss_and_grad(layers, model.loss, xs, ys, True, fused, sw)
            if whole:  # an activity penalty is on the whole batch (such plans are never sharded)
                loss = loss + stack_step.activity_penalty(layers)
            else:
                dout *= dout.dtype.type((s.stop - s.start) / n)  # shard mean -> whole-batch mean
            out = stack_step.metric_output(out, fused)
            if math.isfinite(float(loss)):
                stack_step.backward(layers, dout, plan.first_trainable, fused, plan.relu_pool)
            return loss, out

        if len(shards) == 1:
            loss, out = work(0)
        else:
            results = self._run(work, len(shards))
            loss = sum(r[0] * (s.stop - s.start) for r, s in zip(results, shards)) / n
            outs = [r[1] for r in results]
            out = get_array_module(outs[0]).concatenate(outs, axis=0)
        loss = float(loss) + stack_step.weight_penalty(plan.layers)
        if not math.isfinite(loss):
            return out, loss, None
        params, grads = [], []
        for li, layer in enumerate(plan.layers):
            keys = layer.trainable_keys()
            if not keys:
                continue
            penalties = dict(layer.weight_regularizers()) if layer._regularizers else {}
            for key in keys:
                params.append(layer.params[key])
                g = self.replicas[0][li].grads[key]
                for t in range(1, len(shards)):
                    g = g + self.replicas[t][li].grads[key]
                if key in penalties:
                    g = g + penalties[key].gradient(layer.params[key])
                grads.append(g)
        model.optimizer._apply_arrays(params, grads)  # raw arrays: no public-API checks per step
        stack_step.apply_constraints(plan.layers)
        return out, loss, None


@contextlib.contextmanager
def running(model, what, batch_size=32, n_threads=None):
    """Run ``what`` (``'fit'``, ``'evaluate'``, ``'predict'``) on ``model`` on this thread.

    Marks the model busy (raising ``RuntimeError`` beside a call it cannot share the model
    with, see ``thread_use.py``) and gives this thread a :class:`Runner` for the pass, or
    shares the one an outer call on this thread made. ``n_threads``: the most threads it may
    use (default ``parallel.default_num_threads()``).
    """
    with thread_use.running(model, what):
        runners = model.__dict__.setdefault("_runners", {})
        me = threading.get_ident()
        if me in runners:
            yield runners[me]
            return
        runner = runners[me] = Runner(
            model, n_threads or parallel.default_num_threads(), batch_size, one_blas_thread=n_threads is None
        )
        try:
            yield runner
        finally:
            del runners[me]
            runner.close()


def current(model):
    """This thread's runner for ``model``, or a new one (whole batches) for one direct call."""
    runner = model.__dict__.get("_runners", {}).get(threading.get_ident())
    return runner if runner is not None else Runner(model)
