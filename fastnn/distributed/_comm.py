"""The communicator: init(), rank(), world_size(), barrier(), and the abort-on-error hook."""
from __future__ import annotations

import os
import sys
import time
import traceback

# Environment variables MPI launchers set for each process: (size variable, rank variable).
_LAUNCH_VARS = (("PMI_SIZE", "PMI_RANK"),                           # MPICH (hydra), Intel MPI
                ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),   # Open MPI
                ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"),     # MVAPICH2
                ("PMIX_SIZE", "PMIX_RANK"))


class _State:
    initialized = False
    comm = None          # an mpi4py communicator with more than one rank, or None
    MPI = None           # the mpi4py.MPI module, once imported
    rank = 0
    size = 1


_state = _State()


def launched_size() -> int:
    """The world size an MPI launcher announced to this process (1 when not launched by one).

    Read once: a launcher sets it before the process starts, and fit asks on every call."""
    global _launched_size
    if _launched_size is None:
        _launched_size = next((int(v) for v in (os.environ.get(size_var) for size_var, _ in _LAUNCH_VARS)
                               if v and v.isdigit()), 1)
    return _launched_size


_launched_size = None


def init(comm=None) -> None:
    """Join the MPI job this process was launched in (``MPI.COMM_WORLD``); a no-op in a single process.

    comm: an mpi4py communicator to use instead of COMM_WORLD (mpi4py is then already imported).
    Idempotent. Under a launch of more than one process, needs mpi4py (``pip install
    "fastnn-cpu[mpi]"``) and installs an excepthook that aborts the whole job (``MPI_Abort``)
    when this rank ends with an uncaught exception, so no other rank waits forever.
    """
    if _state.initialized:
        return
    if comm is None and launched_size() <= 1 and "mpi4py.MPI" not in sys.modules:
        _state.initialized = True  # a single process: nothing to join
        return
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(f"fastnn.distributed.init: this process was launched as one of {launched_size()} MPI "
                           f"ranks, but mpi4py is not importable ({e}); pip install \"fastnn-cpu[mpi]\"") from None
    comm = MPI.COMM_WORLD if comm is None else comm
    _state.MPI = MPI
    _state.rank, _state.size = comm.Get_rank(), comm.Get_size()
    _state.comm = comm if _state.size > 1 else None
    _state.initialized = True
    if _state.comm is not None:
        _install_abort_hook()


def is_initialized() -> bool:
    """True once :func:`init` has run (in a single process too)."""
    return _state.initialized


def rank() -> int:
    """This process's rank (0 in a single process or before init)."""
    return _state.rank


def world_size() -> int:
    """Number of ranks (1 in a single process or before init)."""
    return _state.size


def is_main() -> bool:
    """Rank 0: the one that prints and writes checkpoints."""
    return _state.rank == 0


def writes_checkpoints() -> bool:
    """Rank 0 of the job, as the launcher numbered it even before init(): fastnn.save's default."""
    if _state.initialized:
        return _state.rank == 0
    for _, rank_var in _LAUNCH_VARS:
        v = os.environ.get(rank_var)
        if v and v.isdigit():
            return int(v) == 0
    return True


def barrier() -> None:
    """Wait until every rank gets here (a no-op in a single process)."""
    if _state.comm is not None:
        _state.comm.Barrier()


# MPI_Abort has the launcher kill every rank at once; mpiexec (hydra) may do so before it has
# forwarded what the aborting rank last wrote, so the rank waits this long after flushing.
_ABORT_GRACE_SECONDS = 1.0


def abort_job(comm, message: str) -> None:
    """Write ``message`` to stderr, give the launcher time to forward it, then MPI_Abort(comm, 1)."""
    try:
        sys.stderr.write(message)
        sys.stderr.flush()
        time.sleep(_ABORT_GRACE_SECONDS)
    finally:
        comm.Abort(1)


def _install_abort_hook() -> None:
    """An uncaught exception on one rank: print it (prefixed with the rank), then MPI_Abort the job.

    Without this the other ranks would wait in their next collective forever.
    """
    previous = sys.excepthook

    def abort_on_error(tp, value, tb):
        text = "".join(traceback.format_exception(tp, value, tb))
        message = ("".join(f"[rank {_state.rank}] {line}\n" for line in text.rstrip().split("\n"))
                   + f"[rank {_state.rank}] fastnn.distributed: rank {_state.rank} of {_state.size} "
                     f"failed with {tp.__name__}; aborting all ranks (MPI_Abort)\n")
        if _state.comm is not None:
            abort_job(_state.comm, message)
        previous(tp, value, tb)

    sys.excepthook = abort_on_error
