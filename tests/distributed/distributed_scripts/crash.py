"""One rank raises (or stalls) mid-epoch; the job must end with an error, not hang.

``mpiexec -n 2 python crash.py raise``: rank 1 raises at its second batch; init()'s hook
calls MPI Abort. ``... crash.py stall``: rank 1 sleeps instead; rank 0's allreduce times out.
``... crash.py kill``: rank 1 dies by SIGKILL (no Python left to abort); mpiexec must end rank 0.
"""

import os
import signal
import sys
import time

import convolab.distributed as hvd
from convolab import keras
from common import data, model


class Fail(keras.callbacks.Callback):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def on_train_batch_begin(self, batch, logs=None):
        if hvd.rank() == 1 and batch == 1:
            if self.how == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(600)


def main(how):
    hvd.init()
    x, y = hvd.shard(*data())
    m = model(hvd.DistributedOptimizer("sgd", timeout=3 if how == "stall" else None), seed=0)
    m.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[Fail(how)])
    print("finished without error", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
