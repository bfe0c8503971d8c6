"""Data-parallel training on MPI, shaped like Horovod's Keras API.

    from convolab import keras, distributed as hvd
    hvd.init()
    x, y = hvd.shard(x, y, seed=0)
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.Adam(1e-3 * hvd.size())), loss=...)
    model.fit(x, y, batch_size=32, verbose=1 if hvd.rank() == 0 else 0,
              callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()])

Run with ``mpiexec -n 4 python train.py``. Needs ``pip install "convolab[distributed]"``;
importing this module does not (only ``init()`` and what follows import mpi4py).
"""

from . import callbacks
from ._mpi import init, local_rank, local_size, rank, size
from .optimizer import DistributedOptimizer
from .reducer import GradientAverager
from .sharding import shard, shard_indices

__all__ = [
    "DistributedOptimizer",
    "GradientAverager",
    "callbacks",
    "init",
    "local_rank",
    "local_size",
    "rank",
    "shard",
    "shard_indices",
    "size",
]
