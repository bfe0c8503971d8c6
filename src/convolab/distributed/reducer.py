"""Average a list of gradients over every rank with ONE allreduce of one flat buffer."""

from __future__ import annotations

import time

import numpy as np

from . import _mpi


class GradientAverager:
    """Packs gradients into one preallocated contiguous buffer, allreduces it in place, divides
    by the number of ranks and hands back views of the buffer, shaped as the gradients.

    One call per step instead of one per tensor: a small model has dozens of tensors and each
    call pays MPI's latency. The buffer is made again only when the gradients' shapes change.
    The views are overwritten by the next call; the optimizer reads them at once.

    Args:
        comm: an mpi4py communicator (``init()``'s ``COMM_WORLD`` by default).
        timeout: seconds to wait for the other ranks before ``MPI Abort`` ends the job; None
            waits for ever (a blocking ``Allreduce``, the fastest). With a timeout the call is an
            ``Iallreduce`` polled until it completes: a rank that stopped stepping (a loss that
            became NaN there only, a rank stuck in I/O) ends the job instead of hanging it.
    """

    def __init__(self, comm=None, timeout=None):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"GradientAverager: `timeout` must be None or a number of seconds > 0; got {timeout!r}")
        self.comm = comm if comm is not None else _mpi.init()
        self.timeout = timeout
        self._layout = None
        self._buffer = None
        self._views = []

    def _prepare(self, grads):
        layout = tuple((g.shape, np.dtype(g.dtype).str) for g in grads)
        if layout == self._layout:
            return
        dtype = np.result_type(*[g.dtype for g in grads]) if grads else np.float32
        total = sum(int(np.prod(s)) for s, _ in layout)
        self._buffer = np.empty(total, dtype=dtype)
        self._views, start = [], 0
        for g in grads:
            self._views.append(self._buffer[start : start + g.size].reshape(g.shape))
            start += g.size
        self._layout = layout

    def __call__(self, grads):
        """``grads`` averaged over every rank: one view of the shared buffer per gradient."""
        grads = list(grads)
        self._prepare(grads)
        for view, g in zip(self._views, grads):
            np.copyto(view, g)
        self._allreduce(self._buffer)
        self._buffer /= self._buffer.dtype.type(self.comm.Get_size())
        return list(self._views)

    def _allreduce(self, buf):
        MPI = _mpi.mpi()
        if self.timeout is None:
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            return
        request = self.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        deadline, pause = time.monotonic() + self.timeout, 1e-5
        while not request.Test():
            if time.monotonic() > deadline:
                import sys

                print(
                    f"convolab.distributed: rank {self.comm.Get_rank()} waited {self.timeout} s for the other "
                    "ranks' gradients; expected every rank to step; aborting the job",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(0.2)  # Abort kills at once: give mpiexec time to forward the message
                self.comm.Abort(1)
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)
