"""What fit needs under more than one rank: sharding, the weighted gradient allreduce, the
parameter broadcast and the reduction of metrics. fit calls these hooks (lines marked
``[mpi]`` in fastnn/train/loop.py and fastnn/train/steppers.py); nothing here runs in a single
process."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from . import _comm
from ._comm import abort_job


def _fit_context() -> Optional["FitContext"]:
    """None in a single process; under an MPI launch of more than one rank, the job's FitContext
    (calling init() first if the script did not)."""
    state = _comm._state
    if not state.initialized and _comm.launched_size() > 1:
        _comm.init()
    if state.comm is None:
        return None
    if not isinstance(_context.get(id(state.comm)), FitContext):
        _context[id(state.comm)] = FitContext(state.comm, state.MPI)
    return _context[id(state.comm)]


_context: Dict[int, "FitContext"] = {}


def fit_params(ctx: Optional["FitContext"], n: int, batch_size: int) -> Dict[str, Any]:
    """History.params' world_size, rank and local_samples (this rank's samples per epoch)."""
    if ctx is None:
        return {"world_size": 1, "rank": 0, "local_samples": n}
    if batch_size < ctx.size:
        raise ValueError(f"batch_size: under {ctx.size} MPI ranks a global batch needs at least one sample per "
                         f"rank, got {batch_size}")
    full, last = divmod(n, batch_size)
    local = full * ctx.share(batch_size)[2] + (ctx.share(last)[2] if last else 0)
    return {"world_size": ctx.size, "rank": ctx.rank, "local_samples": local}


class FitContext:
    """The distributed side of one fit (see fastnn.distributed).

    Each step's weight (local_n / global_n for mean losses, 1 for sum losses, 0 for a rank with
    no sample in this batch, which computes a weightless stand-in row so that every rank runs
    the same steps) is queued by shard()/shard_epoch() and consumed by the allreduce.
    """

    def __init__(self, comm, MPI):
        self.comm, self.MPI = comm, MPI
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_main = self.rank == 0
        self._weights = np.ones(1)
        self._k = 0
        self.mean = True
        self.allreduce_seconds = 0.0  # time inside the gradient allreduce (benchmarks read it)
        self.allreduce_calls = 0
        self._agree = comm.Dup()  # end()'s barrier, matched apart from any collective left pending

    # --- set-up ---------------------------------------------------------------------------
    def begin(self, loss_fn, optimizer, plan=None, X=None, y=None, batch_size=None) -> None:
        """Start of fit: the same data and batch size on every rank (checked: otherwise the ranks
        would run different step counts and wait for each other forever), the loss's reduction,
        rank 0's parameters everywhere, the plan's hook."""
        if X is not None:
            self.check_same_data(X, y, batch_size)
        self.mean = getattr(loss_fn, "reduction", "mean") != "sum"
        self.allreduce_seconds, self.allreduce_calls = 0.0, 0
        self.broadcast_params(optimizer)
        self._plan = plan
        if plan is not None:
            # Once per step from C, between backward and the update: every group's gradient
            # arena (a plan may train several parameter groups), all with this step's weight.
            grads = [arena.grad for gi in range(len(optimizer.param_groups))
                     for arena in optimizer.group_arenas(gi)]
            plan.set_grad_hook(lambda batch: self._allreduce_next(grads))

    def check_same_data(self, X, y, batch_size) -> None:
        """ValueError on every rank unless all ranks pass the same (n, batch_size) and the same
        samples (a fingerprint of up to 1024 evenly spaced rows)."""
        rows = np.linspace(0, len(X) - 1, min(len(X), 1024)).astype(np.int64)
        with np.errstate(all="ignore"):
            fx = float(np.sum(X[rows], dtype=np.float64))
            fy = float(np.sum(y[rows], dtype=np.float64))
        mine = (len(X), int(batch_size), fx, fy)
        everyone = self.comm.allgather(mine)
        if any(other != everyone[0] for other in everyone):
            first = next(r for r, other in enumerate(everyone) if other != everyone[0])
            what = ("X has a different number of samples" if everyone[first][0] != everyone[0][0] else
                    "batch_size differs" if everyone[first][1] != everyone[0][1] else "X or y differ")
            raise ValueError(f"fit under {self.size} MPI ranks: {what} on rank {first} than on rank 0; every rank "
                             f"must pass the same full dataset and batch_size (fit shards each batch itself)")

    def end(self, exc: Optional[BaseException]) -> None:
        """End of fit. Left by an exception: wait (bounded) until every rank has left fit; if one
        has not (it waits in a collective this rank will never join: an error on this rank only,
        a SystemExit from a callback), abort the whole job with MPI_Abort instead of hanging.
        Every rank leaves together on a DivergenceError or a Ctrl-C sent to all by mpiexec.
        The plan's hook is removed (plans are cached on the optimizer and may be stepped later)."""
        plan, self._plan = getattr(self, "_plan", None), None
        if plan is not None:
            plan.set_grad_hook(None)
        if exc is None:
            return
        timeout = float(os.environ.get("FASTNN_MPI_AGREE_TIMEOUT", "10"))
        req = self._agree.Ibarrier()
        deadline = time.monotonic() + timeout
        while not req.Test():
            if time.monotonic() > deadline:
                abort_job(self.comm, f"[rank {self.rank}] fastnn.distributed: fit stopped on rank {self.rank} "
                                     f"with {type(exc).__name__}: {exc}; other ranks did not stop within "
                                     f"{timeout:g} s (FASTNN_MPI_AGREE_TIMEOUT): aborting all ranks (MPI_Abort)\n")
            time.sleep(0.002)

    def agree_seed(self, seed: Optional[int]) -> int:
        """The shuffling seed: given, or drawn on rank 0 and broadcast (every rank needs the same batches)."""
        from ..random import draw_seed
        return self.comm.bcast(draw_seed() if seed is None else int(seed), root=0)

    def broadcast_params(self, optimizer) -> None:
        """Rank 0's parameters on every rank: one Bcast per parameter arena."""
        for gi in range(len(optimizer.param_groups)):
            for arena in optimizer.group_arenas(gi):
                self.comm.Bcast(arena.data, root=0)

    # --- sharding -------------------------------------------------------------------------
    def share(self, global_n: int) -> Tuple[int, int, int]:
        """(start, stop, size) of this rank's contiguous share of a global batch of global_n samples:
        sizes differ by at most one, the first global_n % size ranks one larger."""
        q, r = divmod(global_n, self.size)
        start = self.rank * q + min(self.rank, r)
        size = q + (self.rank < r)
        return start, start + size, size

    def _weight(self, local_n: int, global_n: int) -> float:
        if local_n == 0:
            return 0.0
        return local_n / global_n if self.mean else 1.0

    def shard(self, xb, yb):
        """This rank's share of one global batch: (x, y, local_n); queues the step's weight.
        A rank with no sample gets the batch's first row as a weightless stand-in (local_n 0)."""
        g = len(xb)
        start, stop, n = self.share(g)
        self.queue_weights([self._weight(n, g)])
        if n == 0:
            start, stop = 0, 1
        return xb[start:stop], (None if yb is None else yb[start:stop]), n

    def local_indices(self, order: np.ndarray, batch_size: int):
        """This rank's rows of an epoch visited in ``order`` (global sample indices) in batches of
        ``batch_size``: (indices, true local size per batch, weight per batch). Batch b's share
        comes at [b·bs, (b+1)·bs) of the indices, bs = the share of a full batch, so a plan's
        batches of bs line up with the global ones; a rank with no sample in the (last) batch
        gets that batch's first row as a weightless stand-in. No side effects."""
        n = len(order)
        idx, sizes, weights = [], [], []
        for b0 in range(0, n, batch_size):
            chunk = order[b0:b0 + batch_size]
            start, stop, k = self.share(len(chunk))
            idx.append(chunk[start:stop] if k else chunk[:1])
            sizes.append(k)
            weights.append(self._weight(k, len(chunk)))
        return np.concatenate(idx), sizes, np.asarray(weights, dtype=np.float64)

    def local_batch_size(self, batch_size: int, n: int) -> int:
        """The plan batch size of this rank's rows from local_indices (at least 1)."""
        return max(self.share(min(batch_size, n))[2], 1)

    def queue_weights(self, weights) -> None:
        """The weights of the next allreduces, one per step, in order (for C runs of many steps)."""
        self._weights = np.asarray(weights, dtype=np.float64)
        self._k = 0

    def shard_epoch(self, X, y, perm, batch_size: int):
        """One epoch's local data for a plan's whole-epoch run: (X_local, y_local, perm, local
        batch size, true local sizes per batch); queues the epoch's per-step weights."""
        n = len(X)
        idx, sizes, weights = self.local_indices(np.arange(n) if perm is None else np.asarray(perm), batch_size)
        self.queue_weights(weights)
        # An identity perm: without one, Plan.epoch would draw its own shuffle.
        return X[idx], y[idx], np.arange(len(idx), dtype=np.int64), self.local_batch_size(batch_size, n), sizes

    def has_stand_ins(self, n: int, batch_size: int) -> bool:
        """Whether some rank gets a weightless stand-in row in an epoch of n samples (a last batch
        smaller than the number of ranks). fit then runs one C call per step, where the stand-in's
        loss and accuracy are left out of the sums; a multi-epoch C run would add them in."""
        last = n % batch_size if batch_size < n else 0
        return 0 < last < self.size

    def agree_path(self, path: str, why: str, n: int, batch_size: int) -> Tuple[str, str]:
        """fit's path ("steps" | "epochs" | "runs") on every rank: the one needing Python most
        often on any rank (rank 0 alone has the progress bar), "steps" when a rank would get a
        stand-in row. The ranks must run the same C calls: their sums are reduced per call."""
        if path != "steps" and self.has_stand_ins(n, batch_size):
            path, why = "steps", "a rank has no sample in the last batch (MPI)"
        order = ("steps", "epochs", "runs")
        return min(self.comm.allgather((path, why)), key=lambda pw: order.index(pw[0]))

    def shard_run(self, n: int, k: int, perms: Optional[np.ndarray], batch_size: int):
        """A multi-epoch C run's local part (fastnn.train.steppers.PlanStepper.run): k epochs of n
        samples in the global orders ``perms`` (k, n) (None: in order). Returns (rows, local batch
        size): rows (k, m) int64, this rank's rows of X per epoch (EpochRun's perms); queues the
        run's per-step weights. Needs no stand-ins (has_stand_ins false)."""
        orders = np.broadcast_to(np.arange(n, dtype=np.int64), (k, n)) if perms is None else perms
        rows, weights = [], None
        for order in orders:
            idx, _, weights = self.local_indices(order, batch_size)
            rows.append(idx)
        self.queue_weights(np.tile(weights, k))
        return np.ascontiguousarray(np.stack(rows), dtype=np.int64), self.local_batch_size(batch_size, n)

    def shard_rows(self, n: int) -> slice:
        """This rank's contiguous share of n rows (validation data)."""
        start, stop, _ = self.share(n)
        return slice(start, stop)

    # --- per step -------------------------------------------------------------------------
    def _allreduce_next(self, grads) -> None:
        w = self._weights[self._k]
        self._k += 1
        for grad in grads:
            self.allreduce_arena(grad, w)

    def allreduce_arena(self, grad: np.ndarray, weight: float) -> None:
        """grad ← Σ_ranks weight_r · grad_r, in place: one MPI_Allreduce."""
        if weight != 1.0:
            np.multiply(grad, weight, out=grad)
        t0 = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, grad, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - t0
        self.allreduce_calls += 1

    def allreduce_grads(self, optimizer) -> None:
        """The eager loop's allreduce: every gradient arena of the optimizer, weighted by this step's weight."""
        w = self._weights[self._k]
        self._k += 1
        for gi in range(len(optimizer.param_groups)):
            for arena in optimizer.group_arenas(gi):
                self.allreduce_arena(arena.grad, w)

    def join_diverged(self, optimizer) -> None:
        """A non-finite loss here: join this step's allreduce with a NaN gradient, so every rank
        sees a non-finite gradient and stops at this step too."""
        for gi in range(len(optimizer.param_groups)):
            for arena in optimizer.group_arenas(gi):
                arena.grad[0] = np.nan
        self.allreduce_grads(optimizer)

    # --- metrics --------------------------------------------------------------------------
    def reduce_sums(self, values: Sequence[float]) -> np.ndarray:
        """Element-wise sums over the ranks (float64; one small Allreduce)."""
        buf = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return buf

    def reduce_run(self, run) -> None:
        """A multi-epoch C run's per-epoch sums (EpochRun's arrays), summed over the ranks in place:
        one Allreduce per run."""
        arrays = (run.loss_sum, run.correct, run.counted, run.val_loss_sum, run.val_correct, run.val_counted)
        total = self.reduce_sums(np.concatenate([a.astype(np.float64) for a in arrays]))
        k = len(run.loss_sum)
        for i, a in enumerate(arrays):
            a[...] = total[i * k:(i + 1) * k]  # int64 counts are exact in float64 below 2**53

    def evaluate(self, evaluate, model, loss_fn, X, y, batch_size, counter) -> Dict[str, float]:
        """fit's validation over a disjoint contiguous shard per rank, reduced: the global means."""
        start, stop, n = self.share(len(X))
        res = evaluate(model, loss_fn, X[start:stop], y[start:stop], batch_size, counter) if n else {}
        has_acc = "accuracy" in res
        tot = self.reduce_sums([res.get("loss", 0.0) * n, res.get("accuracy", 0.0) * n, n if has_acc else 0, n])
        out = {"loss": tot[0] / tot[3]}
        if tot[2]:
            out["accuracy"] = tot[1] / tot[2]
        return out
