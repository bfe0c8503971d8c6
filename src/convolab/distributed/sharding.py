"""Which samples each rank trains on: a seeded permutation, dealt out like cards."""

from __future__ import annotations

import numpy as np

from . import _mpi


def shard_indices(n, seed=0, rank=None, size=None):
    """This rank's sample indices out of ``n``: every ``size``-th entry of a seeded permutation.

    The same ``seed`` gives every rank the same permutation, so the shards never overlap and a
    run can be repeated. Every rank gets ``n // size`` indices (the ``n % size`` left over are
    dropped): each rank must take as many steps, since every step waits for all ranks.
    Dealing out (rank ``r`` takes positions ``r, r + size, ...``) means that with ``shuffle=False``
    the ``b``-th batches of the ranks together are the ``b``-th batch of one process with
    ``size`` times the batch size over the permutation.

    Args:
        n: number of samples.
        seed: the permutation's seed; None keeps the original order.
        rank, size: default to this process's (``rank()``, ``size()``).

    Returns:
        An int64 array of ``n // size`` indices; read only these rows (e.g. from
        ``np.load(path, mmap_mode='r')``) and a rank never loads the others' data.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"shard_indices: `n` must be an int >= 0; got {n!r}")
    rank = _mpi.rank() if rank is None else rank
    size = _mpi.size() if size is None else size
    if not 0 <= rank < size:
        raise ValueError(f"shard_indices: expected 0 <= rank < size; got rank={rank!r}, size={size!r}")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    return order[: n - n % size][rank::size].astype(np.int64)


def shard(x, y=None, seed=0):
    """This rank's shard of ``x`` (and ``y``): ``x[shard_indices(len(x), seed)]``.

    Returns:
        ``x_shard`` or ``(x_shard, y_shard)``; every rank gets ``len(x) // size()`` samples.
    """
    if y is not None and len(y) != len(x):
        raise ValueError(f"shard: x and y must hold as many samples; got {len(x)} and {len(y)}")
    index = shard_indices(len(x), seed)
    return x[index] if y is None else (x[index], y[index])
