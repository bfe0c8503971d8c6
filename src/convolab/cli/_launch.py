"""``convolab train --processes N``: start this same command under ``mpiexec -n N`` and wait for it.

The parent process only launches; the N ranks it starts see ``CONVOLAB_RANKS`` (and MPI's own
variables) and train. Each rank gets an equal share of the cores for its threads unless the
user set ``CONVOLAB_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` already.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ._common import CommandError

CHILD = "CONVOLAB_RANKS"  # set by the launcher: the number of ranks the children must find
_MPI_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", CHILD)
INSTALL = 'pip install "convolab[distributed]"'


def under_mpi() -> bool:
    """True inside a process that mpiexec started (ours or the user's own ``mpiexec -n N convolab ...``)."""
    return any(v in os.environ for v in _MPI_VARS)


def find_mpiexec():
    """The mpiexec next to this Python (the mpich wheel puts it in the venv's bin), else on PATH, else None."""
    local = Path(sys.executable).parent / "mpiexec"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("mpiexec")


def _check_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise CommandError(f"--processes needs mpi4py, which is not installed; install it with: {INSTALL}") from None


def relaunch(argv, processes):
    """Run ``convolab <argv>`` on ``processes`` ranks under mpiexec; returns its exit code."""
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise CommandError(
            f"--processes {processes} needs mpiexec, found neither next to {sys.executable} nor "
            f"on PATH; install it with: {INSTALL}"
        )
    _check_mpi4py()
    cmd = [mpiexec, "-n", str(processes), sys.executable, "-m", "convolab.cli", *argv]
    return subprocess.run(cmd, env=rank_env(processes)).returncode


def rank_env(processes):
    """The environment for ``processes`` ranks on this machine: each an equal share of the cores for its threads."""
    env = dict(os.environ, **{CHILD: str(processes)})
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    share = str(max(1, cores // processes))
    for var in ("CONVOLAB_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, share)
    return env
