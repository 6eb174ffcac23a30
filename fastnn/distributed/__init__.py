"""Data-parallel training over MPI (mpi4py): one allreduce of the gradient arena per step.

::

    # mpiexec -n 4 python train.py      (pip install "fastnn-cpu[mpi]")
    import fastnn, fastnn.distributed as dist
    dist.init()                          # a no-op in a single process
    fastnn.manual_seed(0)                # the same model on every rank (rank 0's is broadcast anyway)
    history = fastnn.fit(model, loss_fn, opt, X, y, batch_size=256, seed=0)
    fastnn.save(model, "model.fnn")      # written by rank 0 only

Under more than one rank, :func:`fastnn.fit` (which calls :func:`init` itself when launched
by ``mpiexec``) splits every global batch of ``batch_size`` samples into disjoint contiguous
shares, one per rank (every rank draws the same seeded permutation, so every rank knows the
global batches), computes its share's gradient, scales it by ``local_n / global_n`` (for
``reduction="mean"`` losses; 1 for ``"sum"``) and sums the gradient arena across ranks with
ONE ``MPI_Allreduce`` per step. Every rank then applies the same update to the same
parameters, so training equals one process's with the same seed and global batch to float
rounding. In a compiled plan the allreduce runs inside the plan's step (a C hook between
backward and update).

- Every rank passes the same full (X, y) and batch_size (checked: a ValueError everywhere
  otherwise); batch_size >= the number of ranks.
- Initial parameters: broadcast from rank 0 (one ``Bcast`` of each parameter arena).
- ``History``: global means (the epoch's sums are reduced once per epoch); validation runs
  on a disjoint contiguous shard of the validation set on each rank and its sums are reduced.
  ``History.params`` gains ``world_size``, ``rank`` and ``local_samples``.
- Only rank 0 prints progress; ``fastnn.save`` writes on rank 0 only (``all_ranks=True``
  to write everywhere). Per-batch callback logs hold this rank's local loss.
- Divergence: a non-finite local loss joins the step's allreduce with a NaN gradient, so
  every rank sees a non-finite gradient and raises ``DivergenceError`` at the same step,
  before the update.
- Faults: :func:`init` installs an excepthook that prints the error and calls
  ``MPI_Abort``, so an exception on one rank ends the job instead of leaving the others
  waiting; a rank that is killed is detected by the MPI launcher, which ends the job; a fit
  left by an exception (caught, or a SystemExit) waits at most ``FASTNN_MPI_AGREE_TIMEOUT``
  seconds (10) for the other ranks to leave it too, then aborts the job.
- Not equal to one process: BatchNorm1d (statistics of the local share, running
  statistics per rank) and Dropout (masks drawn per rank).

mpi4py is imported only by :func:`init` under a multi-process launch (or when asked).
"""
from ._comm import barrier, init, is_initialized, is_main, rank, world_size, writes_checkpoints
from ._fit import _fit_context, fit_params

__all__ = ["init", "rank", "world_size", "is_initialized", "is_main", "barrier"]
