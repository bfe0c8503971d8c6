"""The broadcast carries the optimizer's state: rank 0 resumes with Adam slots, rank 1 has none.

Run as ``mpiexec -n 2 python broadcast_state.py OUT.npz``; rank 0 writes what each rank holds
after ``on_train_begin`` (``fit(epochs=0)`` runs it and takes no step).
"""

import sys

import numpy as np

import convolab.distributed as hvd
from convolab import keras
from common import data, model


def main(out):
    comm = hvd.init()
    x, y = data()
    m = model(hvd.DistributedOptimizer(keras.optimizers.Adam(0.01)), seed=5 + hvd.rank())
    m.build((None, 8, 8, 1))
    opt = m.optimizer
    if hvd.rank() == 0:  # as if loaded from a checkpoint: state for the first weight only
        w = m.weights[0]
        opt.set_state(w, {"momentum": np.full(w.shape, 0.25, w.dtype), "velocity": np.full(w.shape, 0.5, w.dtype)})
        opt.iterations = 3
    m.fit(x, y, epochs=0, verbose=0, callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)])
    state = opt.get_state(m.weights[0])
    mine = {
        "iterations": np.array(opt.iterations),
        "m": state["momentum"],
        "v": state["velocity"],
        "w0": m.weights[0].numpy(),
        "has_state_w1": np.array(opt.get_state(m.weights[1]) is not None),
    }
    gathered = comm.gather(mine, root=0)
    if hvd.rank() == 0:
        np.savez(out, **{f"rank{r}/{k}": v for r, g in enumerate(gathered) for k, v in g.items()})


if __name__ == "__main__":
    main(sys.argv[1])
