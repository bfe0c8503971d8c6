"""The one place that imports mpi4py: ``init``, ``rank``, ``size``, ``local_rank`` (Horovod's names).

mpi4py is optional (``pip install "convolab[distributed]"``): ``import convolab`` never
touches it; the first call here does.
"""

from __future__ import annotations

import sys
import time

_INSTALL = 'pip install "convolab[distributed]"  (mpi4py and the mpich wheel)'
_state = {"comm": None, "local": None}


def mpi():
    """The ``mpi4py.MPI`` module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            f"convolab.distributed needs mpi4py, which could not be imported ({exc}); install it with: {_INSTALL}"
        ) from exc
    return MPI


def init(abort_on_error=True):
    """Start MPI (once; later calls do nothing) and return ``COMM_WORLD``.

    Args:
        abort_on_error: an exception that nobody catches on one rank calls ``MPI Abort``
            after printing its traceback, which ends every rank; otherwise the other ranks
            would wait in the next allreduce for ever (``python -m mpi4py`` does the same).
    """
    if _state["comm"] is None:
        MPI = mpi()
        comm = MPI.COMM_WORLD
        _state["comm"] = comm
        _state["local"] = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        if abort_on_error and comm.Get_size() > 1:
            _install_abort_hook(comm)
    return _state["comm"]


def _install_abort_hook(comm):
    previous = sys.excepthook

    def abort(kind, value, tb):
        previous(kind, value, tb)  # the traceback first, so the job log says why
        sys.stderr.flush()
        time.sleep(0.2)  # Abort kills at once: give mpiexec time to forward the traceback
        comm.Abort(1)

    sys.excepthook = abort


def comm():
    """``COMM_WORLD`` once :func:`init` has run."""
    if _state["comm"] is None:
        raise ValueError("convolab.distributed has not been initialized; call convolab.distributed.init() first")
    return _state["comm"]


def rank() -> int:
    """This process's index among all processes, 0 to ``size() - 1``."""
    return comm().Get_rank()


def size() -> int:
    """How many processes train together."""
    return comm().Get_size()


def local_rank() -> int:
    """This process's index among the processes on its own machine."""
    comm()
    return _state["local"].Get_rank()


def local_size() -> int:
    """How many processes run on this machine."""
    comm()
    return _state["local"].Get_size()
