"""A functional model (trained on the tape path) with a branch: 2 ranks of batch 16 against 1 of 32.

Run as ``mpiexec -n 2 python functional.py OUT.npz``. Rank 0 writes both ranks' final weights
and the single-process reference's, per optimizer, as equivalence.py does for Sequential.
"""

import sys

import numpy as np

import convolab.distributed as hvd
from convolab import keras
from common import data

OPTIMIZERS = {"sgd": lambda: keras.optimizers.SGD(0.1, momentum=0.9), "adam": lambda: keras.optimizers.Adam(0.01)}


def functional_model(optimizer, seed):
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inputs = keras.Input((8, 8, 1))
    x = L.Conv2D(4, (3, 3), activation="relu")(inputs)
    x = L.Add()([x, L.Conv2D(4, (1, 1))(x)])  # a branch: only the graph, not a stack, can say this
    outputs = L.Dense(3, activation="softmax")(L.Flatten()(x))
    m = keras.Model(inputs, outputs)
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def main(out):
    comm = hvd.init()
    x, y = data()
    xs, ys = hvd.shard(x, y, seed=7)
    result = {}
    for name, make in OPTIMIZERS.items():
        m = functional_model(hvd.DistributedOptimizer(make()), seed=100 + hvd.rank())
        assert not isinstance(m, keras.models.Sequential), type(m)
        m.fit(
            xs,
            ys,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()],
        )
        gathered = comm.gather(m.get_weights(), root=0)
        if hvd.rank() != 0:
            continue
        ref = functional_model(make(), seed=100)  # rank 0's start, as the broadcast gave every rank
        start = [w.copy() for w in ref.get_weights()]
        order = hvd.shard_indices(len(x), seed=7, rank=0, size=1)
        ref.fit(x[order], y[order], batch_size=32, epochs=2, shuffle=False, verbose=0)
        for r, weights in enumerate(gathered):
            result.update({f"{name}/rank{r}/w{i}": w for i, w in enumerate(weights)})
        result.update({f"{name}/ref/w{i}": w for i, w in enumerate(ref.get_weights())})
        result.update({f"{name}/start/w{i}": w for i, w in enumerate(start)})
    if hvd.rank() == 0:
        np.savez(out, **result)


if __name__ == "__main__":
    main(sys.argv[1])
