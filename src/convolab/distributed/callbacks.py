"""Callbacks for training on several ranks (Horovod's names): start equal, report one number."""

from __future__ import annotations

import numpy as np

from ..callbacks import Callback
from . import _mpi


class BroadcastGlobalVariablesCallback(Callback):
    """At ``on_train_begin``, give every rank ``root_rank``'s weights and optimizer state.

    Ranks that start from different random weights would average gradients of different
    models. The optimizer state (slots, ``iterations``, its own scalars) matters when training
    resumes from a file that only the root rank loaded. Sent once per ``fit``, as Python objects.
    """

    def __init__(self, root_rank=0):
        super().__init__()
        self.root_rank = root_rank

    def on_train_begin(self, logs=None):
        comm = _mpi.init()
        if not 0 <= self.root_rank < comm.Get_size():
            raise ValueError(
                f"BroadcastGlobalVariablesCallback: `root_rank` must be in [0, {comm.Get_size() - 1}]; "
                f"got {self.root_rank!r}"
            )
        model, opt = self.model, self.model.optimizer
        root = comm.Get_rank() == self.root_rank
        payload = None
        if root:
            states = [opt.get_state(w) for w in model.weights]
            payload = {
                "weights": model.get_weights(),
                "iterations": int(opt.iterations),
                "globals": opt.get_global_state(),
                "states": [None if s is None else {k: np.array(v) for k, v in s.items()} for s in states],
            }
        payload = comm.bcast(payload, root=self.root_rank)
        if root:
            return
        model.set_weights(payload["weights"])  # in place: the optimizer's slots stay keyed to the same arrays
        for w, state in zip(model.weights, payload["states"]):
            if state is not None:
                opt.set_state(w, state)
        opt.iterations = payload["iterations"]
        opt.set_global_state(payload["globals"])


class MetricAverageCallback(Callback):
    """At ``on_epoch_end``, replace each number in the epoch's logs by its mean over the ranks.

    Put it first in ``callbacks``: the callbacks after it (EarlyStopping, ModelCheckpoint,
    History, the progress bar) then see the averages. A mean of per-rank means equals the mean
    over all samples when every rank holds as many samples, as :func:`shard` arranges.
    """

    def on_epoch_end(self, epoch, logs=None):
        if not logs:
            return
        comm = _mpi.init()
        keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
        values = np.array([logs[k] for k in keys], dtype=np.float64)
        total = np.empty_like(values)
        comm.Allreduce(values, total, op=_mpi.mpi().SUM)
        for k, v in zip(keys, total / comm.Get_size()):
            logs[k] = float(v)
