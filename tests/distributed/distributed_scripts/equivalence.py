"""Two ranks with batch 16 against one process with batch 32 on the same data order.

Run as ``mpiexec -n 2 python equivalence.py OUT.npz``. Each rank starts from different random
weights, so matching the reference also shows the broadcast. Rank 0 writes, per optimizer:
both ranks' final weights, the single-process reference's, and the metric logs before and after
MetricAverageCallback.
"""

import sys

import numpy as np

import convolab.distributed as hvd
from convolab import keras
from common import data, model

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01),
}


class LocalLogs(keras.callbacks.Callback):
    """Keeps this rank's epoch logs as they were before MetricAverageCallback."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(dict(logs))


class StartWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = self.model.get_weights()


def main(out):
    comm = hvd.init()
    x, y = data()
    xs, ys = hvd.shard(x, y, seed=7)
    result = {}
    for name, make in OPTIMIZERS.items():
        m = model(hvd.DistributedOptimizer(make()), seed=100 + hvd.rank())  # different start on each rank
        start_local = m.get_weights()
        local, start = LocalLogs(), StartWeights()
        hist = m.fit(
            xs,
            ys,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[
                hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                start,
                local,
                hvd.callbacks.MetricAverageCallback(),
            ],
        )
        gathered = comm.gather(
            {"weights": m.get_weights(), "start": start.weights, "local": local.epochs, "start_local": start_local},
            root=0,
        )
        if hvd.rank() != 0:
            continue
        ref = model(make(), seed=100)
        ref.set_weights(gathered[0]["start_local"])
        order = hvd.shard_indices(len(x), seed=7, rank=0, size=1)
        ref.fit(x[order], y[order], batch_size=32, epochs=2, shuffle=False, verbose=0)
        for r, g in enumerate(gathered):
            for i, w in enumerate(g["weights"]):
                result[f"{name}/rank{r}/w{i}"] = w
            for i, w in enumerate(g["start"]):
                result[f"{name}/start{r}/w{i}"] = w
            for key in ("loss", "accuracy"):
                result[f"{name}/local{r}/{key}"] = np.array([e[key] for e in g["local"]])
        for i, w in enumerate(ref.get_weights()):
            result[f"{name}/ref/w{i}"] = w
        for i, w in enumerate(gathered[0]["start_local"]):
            result[f"{name}/root_start/w{i}"] = w
        for key in ("loss", "accuracy"):
            result[f"{name}/history/{key}"] = np.array(hist.history[key])
    if hvd.rank() == 0:
        np.savez(out, **result)


if __name__ == "__main__":
    main(sys.argv[1])
