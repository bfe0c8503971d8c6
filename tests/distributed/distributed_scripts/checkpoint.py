"""A checkpoint that rank 0 wrote resumes on any number of ranks.

``mpiexec -n N python checkpoint.py save CKPT OUT.npz``: 2 epochs, ModelCheckpoint on rank 0 only.
``mpiexec -n M python checkpoint.py resume CKPT OUT.npz``: rank 0 alone loads CKPT, the others build
the model afresh; the broadcast hands them its weights and optimizer state; 1 more epoch.
Rank 0 writes each rank's optimizer iterations and weights to OUT.npz.
"""

import sys

import numpy as np

import convolab.distributed as hvd
from convolab import keras
from common import data, model


def main(mode, ckpt, out):
    comm = hvd.init()
    x, y = hvd.shard(*data(), seed=1)
    callbacks = [hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()]
    loaded_iterations = -1
    if mode == "save":
        m = model(hvd.DistributedOptimizer(keras.optimizers.Adam(0.01)), seed=0)
        if hvd.rank() == 0:
            callbacks.append(keras.callbacks.ModelCheckpoint(ckpt))
        epochs, initial = 2, 0
    else:
        if hvd.rank() == 0:
            m = keras.models.load_model(ckpt)
            hvd.DistributedOptimizer(m.optimizer)  # a loaded optimizer is a plain one: wrap it again
            loaded_iterations = int(m.optimizer.iterations)
        else:
            m = model(hvd.DistributedOptimizer(keras.optimizers.Adam(0.01)), seed=50 + hvd.rank())
        epochs, initial = 3, 2
    hist = m.fit(
        x, y, batch_size=8, epochs=epochs, initial_epoch=initial, shuffle=False, verbose=0, callbacks=callbacks
    )
    mine = {"iterations": int(m.optimizer.iterations), "weights": m.get_weights(), "loss": hist.history["loss"]}
    gathered = comm.gather(mine, root=0)
    if hvd.rank() == 0:
        result = {"loaded_iterations": np.array(loaded_iterations), "ranks": np.array(hvd.size())}
        for r, g in enumerate(gathered):
            result[f"rank{r}/iterations"] = np.array(g["iterations"])
            result[f"rank{r}/loss"] = np.array(g["loss"])
            for i, w in enumerate(g["weights"]):
                result[f"rank{r}/w{i}"] = w
        np.savez(out, **result)


if __name__ == "__main__":
    main(*sys.argv[1:4])
