"""Steppers: how fit runs its steps. The loop (loop.py) is the same for both.

EagerStepper: the PyTorch-style loop, ``zero_grad(); loss_fn(model(xb), yb).backward();
    step()``, with the finiteness checks between.
PlanStepper: a compiled plan (fastnn.plan): one C call per step when Python must run between
    steps, else runs of steps, whole epochs or many epochs per C call
    (``fnn_plan_run_epochs``), with loss sums, accuracy counts and validation computed in C.

Both report divergence the same way, by raising ``divergence.Diverged`` (the loop turns it
into DivergenceError).
"""
from __future__ import annotations

import math
import time
from typing import List, Optional

import numpy as np

from .. import _core, _enums
from ..nn.arena import only_padding_nonfinite
from ..nn.loss import CrossEntropyLoss
from .divergence import GRAD, LOSS, UPDATE, Diverged, optimizer_finite
from .evaluate import evaluate_eager, val_batch_size
from .metrics import plan_metric

__all__ = ["EagerStepper", "PlanStepper", "EpochResult", "make_stepper"]



def _what(status: int) -> str:
    """Which divergence a plan status reports (codes from fastnn_enums.h, read lazily so that
    importing fastnn works without the compiled core)."""
    codes = _enums.PlanStatus
    return {codes.NONFINITE_LOSS: LOSS, codes.NONFINITE_GRAD: GRAD, codes.NONFINITE_PARAM: UPDATE}[status]
_CHUNK_SECONDS = 0.002   # C runs of about this long: Ctrl-C stays responsive
_FEED_SECONDS = 0.1      # the progress bar is fed at most ~10 times a second
_PERM_ELEMENTS = 1 << 18  # per-epoch orders generated for at most this many samples × epochs at once
_MPI_RUN_SAMPLES = 1 << 16  # [mpi] samples × epochs per C run under fastnn.distributed


_NONFINITE_PARAM = 0  # _enums.PlanStatus.NONFINITE_PARAM, read once from the compiled core


def _plan_status_nonfinite_param() -> int:
    global _NONFINITE_PARAM
    _NONFINITE_PARAM = int(_enums.PlanStatus.NONFINITE_PARAM)
    return _NONFINITE_PARAM


class EpochResult:
    """One epoch's sums: loss (Σ batch loss × samples, or × 1 for sum reduction), samples seen,
    accuracy counts, and the validation metrics when the stepper computed them (else None)."""

    __slots__ = ("epoch", "loss_sum", "seen", "correct", "counted", "val", "stop")

    def __init__(self, epoch, loss_sum, seen, correct=0, counted=0, val=None, stop=False):
        self.epoch, self.loss_sum, self.seen, self.correct, self.counted = epoch, loss_sum, seen, correct, counted
        self.val, self.stop = val, stop


def _as_model_float(value: float, f32: bool) -> float:
    with np.errstate(over="ignore"):  # as fit reports it: the loss in the model's dtype
        return float(np.float32(value)) if f32 else float(value)


class EagerStepper:
    """The PyTorch-style loop."""

    kind = "eager"
    runs_epochs_in_c = False
    dist = None  # [mpi] fastnn.distributed's FitContext under more than one rank

    def __init__(self, model, loss_fn, optimizer, counter, note):
        self.model, self.loss_fn, self.optimizer, self.counter, self.note = model, loss_fn, optimizer, counter, note

    def inputs(self, X, y, names=("X", "y")):
        return X, y

    def step(self, xb, yb, epoch: int, batch: int):
        """One step; (loss, correct, counted). Raises Diverged before a non-finite update."""
        optimizer = self.optimizer
        optimizer.zero_grad()
        out = self.model(xb)
        loss = self.loss_fn(out, yb)
        value = float(loss)
        if not math.isfinite(value):
            if self.dist is not None:  # [mpi] the other ranks wait in this step's allreduce
                self.dist.join_diverged(optimizer)
            raise Diverged(LOSS, value, epoch, batch)
        if not hasattr(loss, "backward"):
            raise TypeError(f"loss_fn: expected it to return a fastnn Tensor with backward(), "
                            f"got {type(loss).__name__}")
        loss.backward()
        if self.dist is not None:  # [mpi] the global batch's gradient on every rank
            self.dist.allreduce_grads(optimizer)
        if not optimizer_finite(optimizer, "grad"):
            raise Diverged(GRAD, value, epoch, batch)
        optimizer.step()
        if not optimizer_finite(optimizer, "data") and not only_padding_nonfinite(optimizer):
            # Finite gradients times the lr overflowed. Rare (|lr·g| > ~3e38 in float32), and
            # the one case where the parameters can no longer be the last finite ones.
            raise Diverged(UPDATE, value, epoch, batch)
        c = self.counter(out, yb) if self.counter is not None else None
        return (value, 0, 0) if c is None else (value, c[0], c[1])

    def validate(self, X_val, y_val, batch_size):
        if self.dist is not None:  # [mpi] a shard per rank, reduced
            return self.dist.evaluate(evaluate_eager, self.model, self.loss_fn, X_val, y_val,
                                      val_batch_size(batch_size), self.counter)
        return evaluate_eager(self.model, self.loss_fn, X_val, y_val, val_batch_size(batch_size), self.counter)


class PlanStepper:
    """A compiled plan (checks finiteness in C: stops before a non-finite update)."""

    kind = "plan"
    runs_epochs_in_c = True
    dist = None  # [mpi] fastnn.distributed's FitContext under more than one rank (set by fit)

    def __init__(self, plan, model, loss_fn, optimizer, counter, note):
        self.plan, self.model, self.loss_fn, self.optimizer = plan, model, loss_fn, optimizer
        self.counter, self.note = counter, note
        plan.check_finite = True  # DivergenceError semantics: stop before a non-finite update
        self._metric_kind = None
        self.use(loss_fn, counter)
        self.f32 = plan.dtype == np.float32
        # Batch norm and dropout behave differently in eval mode: the model evaluates those.
        self.validates_in_c = plan.ndrop == 0 and not any(
            type(m).__name__ == "BatchNorm1d" for m in model._modules.values())

    def use(self, loss_fn, counter):
        """This fit's loss (an equal one) and accuracy counter."""
        self.loss_fn, self.counter = loss_fn, counter
        kind, threshold = plan_metric(loss_fn, counter)
        if kind != self._metric_kind:
            self.plan.set_metric(_core.PLAN_METRICS[kind], threshold)
            self._metric_kind = kind
        self.metric = kind != "none"
        self.X_val = self.y_val = None

    def inputs(self, X, y, names=("X", "y")):
        """(X, y) as the plan takes them: flattened for a leading Flatten(), labels as int64,
        checked here so that the messages name the model's layer and the user's argument."""
        plan, model = self.plan, self.model
        if plan.flatten_input and X.ndim > 2:
            X = X.reshape(len(X), -1)  # what the model's leading Flatten() does to every batch
        if X.ndim != 2 or X.shape[1] != plan.n_in:
            first = next((m for m in model.modules() if hasattr(m, "in_features")), None)
            raise ValueError(f"{first.describe()} expected input with {first.in_features} features, "
                             f"got array of shape {X.shape}")
        if isinstance(self.loss_fn, CrossEntropyLoss):
            # Labels as the eager loss would take them (integral floats allowed), checked up front.
            from ..ops.losses import _label_error, _labels
            classes = plan.n_out
            y = _labels(y, len(y), classes)
            outside = (y < 0) | (y >= classes)
            if outside.any():
                bad = int(np.argmax(outside))
                raise _label_error(int(y[bad]), bad, classes)
        return np.ascontiguousarray(X), np.ascontiguousarray(y)

    def set_validation(self, X_val, y_val):
        if self.validates_in_c:
            self.X_val, self.y_val = self.inputs(X_val, y_val, ("validation_data[0]", "validation_data[1]"))
            self.n_val = len(self.X_val)  # [mpi] the global count (X_val: this rank's share)
            if self.dist is not None:  # [mpi] a shard per rank, the sums reduced
                rows = self.dist.shard_rows(self.n_val)
                self.X_val, self.y_val = self.X_val[rows], self.y_val[rows]

    # --- one step per call ---
    def step(self, xb, yb, epoch: int, batch: int):
        plan = self.plan
        value = plan.step(xb, yb)
        status = plan.last_status
        if status:
            if status != _enums.PlanStatus.NONFINITE_PARAM or not only_padding_nonfinite(self.optimizer):
                raise Diverged(_what(status), value, epoch, batch)
        c, k = plan.last_count if self.metric else (0, 0)
        return value, c, k

    def validate(self, X_val, y_val, batch_size):
        if not self.validates_in_c:
            if self.dist is not None:  # [mpi] a shard per rank, reduced
                return self.dist.evaluate(evaluate_eager, self.model, self.loss_fn, X_val, y_val,
                                          val_batch_size(batch_size), self.counter)
            return evaluate_eager(self.model, self.loss_fn, X_val, y_val, val_batch_size(batch_size), self.counter)
        total, c, k = (self.plan.evaluate(self.X_val, self.y_val, val_batch_size(batch_size)) if len(self.X_val)
                       else (0.0, 0, 0))  # [mpi] a rank may have no validation rows
        if self.dist is not None:  # [mpi] global sums
            total, c, k = self.dist.reduce_sums([total, c, k])
        return self._val_logs(total, c, k)

    def _val_logs(self, total, c, k):
        logs = {"loss": total / self.n_val}  # [mpi] n_val: len(X_val) on every rank together
        if self.metric and k:
            logs["accuracy"] = c / k
        return logs

    # --- runs of steps in C ---
    def max_span(self, n: int, shuffling: bool) -> int:
        """Most epochs per run (their per-epoch orders are generated up front)."""
        if self.dist is not None:  # [mpi] a Ctrl-C is honoured between runs, by every rank at once
            return max(1, _MPI_RUN_SAMPLES // n)
        return max(1, _PERM_ELEMENTS // n) if shuffling else 1 << 30

    def run(self, X, y, first: int, k: int, batch_size: int, rng, feed, interrupt, validate: bool):
        """Epochs first .. first+k-1 in C. Returns (completed EpochResults, pending) where pending
        is None, a Diverged, or ("interrupt", epoch, batch) for a Ctrl-C inside an epoch.
        ``feed(epoch, batch, loss, epoch_loss)`` (or None) is called at most ~10×/s and at
        the end of each epoch."""
        plan = self.plan
        n = len(X)
        perms = None
        if rng is not None:  # the orders Batches would draw: one rng.permutation(n) per epoch
            perms = _core.epoch_orders(rng, k, n)
        dist = self.dist
        if dist is not None:  # [mpi] this rank's rows of every global batch; the run's allreduce weights
            perms, batch_size = dist.shard_run(n, k, perms, batch_size)
        val = validate and self.validates_in_c
        cval = val and len(self.X_val) > 0  # [mpi] a rank may have no validation rows
        run = _core.EpochRun(plan, X, y, batch_size, k, perms, self.X_val if cval else None,
                             self.y_val if cval else None, val_batch_size(batch_size) if cval else 0, self.metric)
        local_n = n if perms is None else perms.shape[1]  # [mpi] rows per epoch on this rank
        steps, bs, total = run.steps, run.batch_size, run.total
        done, chunk, pending, failed = 0, 1, None, 0
        t_fed = time.perf_counter()
        param_status = _NONFINITE_PARAM or _plan_status_nonfinite_param()
        while done < total:
            end = min(total, done + chunk)
            t0 = time.perf_counter()
            status, ran = plan.run_epochs(run, done, end, plan._draw_seeds(end - done))
            done += ran
            if status == param_status and only_padding_nonfinite(self.optimizer):
                status = plan.last_status = 0  # the update was applied; only padding held 0/0
            if status:
                failed = done - 1 if status == param_status else done
                pending = Diverged(_what(status), _as_model_float(run.last_loss, self.f32),
                                   first + failed // steps, failed % steps + 1)
                break
            now = time.perf_counter()
            if now - t0 < _CHUNK_SECONDS:
                chunk *= 2
            if feed is not None and done and (done % steps == 0 or now - t_fed >= _FEED_SECONDS):
                t_fed = now
                e, b = (done - 1) // steps, (done - 1) % steps
                seen = min((b + 1) * bs, local_n)  # [mpi] local_n: this rank's running mean
                feed(first + e, b, _as_model_float(run.last_loss, self.f32), run.loss_sum[e] / seen)
            if interrupt.pending and done < total and dist is None:  # [mpi] under MPI: after the run
                if done % steps:
                    pending = ("interrupt", first + done // steps, done % steps)
                break
        # Epochs whose every step ran and was accounted; an overflowing update ends its epoch
        # unfinished even when it was the epoch's last step (as in the step-by-step loop).
        complete = (failed if isinstance(pending, Diverged) else done) // steps
        if dist is not None:  # [mpi] global sums, one Allreduce per run (every rank stopped at the same step)
            dist.reduce_run(run)
        return RunResults(first, complete, n, run, val, self), done, pending

    def _val_logs_of(self, run, e):
        return self._val_logs(float(run.val_loss_sum[e]), int(run.val_correct[e]), int(run.val_counted[e]))


class RunResults:
    """The completed epochs of a C run: per-epoch sums from the run's arrays."""

    def __init__(self, first, count, seen, run, val, stepper):
        self.first, self.count, self.seen, self.run, self.val, self.stepper = first, count, seen, run, val, stepper

    def __len__(self):
        return self.count

    def __iter__(self):
        run = self.run
        for e in range(self.count):
            v = self.stepper._val_logs_of(run, e) if self.val else None
            yield EpochResult(self.first + e, float(run.loss_sum[e]), self.seen, int(run.correct[e]),
                              int(run.counted[e]), v)

    def record(self, history, lr: float, metric: bool) -> None:
        """Append every completed epoch to ``history`` at once (no callback runs between them):
        the same numbers, in the same key order, as one History._record per epoch."""
        c, run = self.count, self.run
        if not c:
            return
        if c == 1:  # fit(epochs=1) in a loop: one division per column, appended
            self._record_one(history, lr, metric)
            return
        history.epoch.extend(range(self.first, self.first + c))
        # Python's and NumPy's float64 divisions round alike; Python floats first: cheaper for few epochs
        if c < 16:
            def div(a, b):
                b = b[:c].tolist() if hasattr(b, "tolist") else [b] * c
                return [x / d for x, d in zip(a[:c].tolist(), b)]
        else:
            def div(a, b):
                return (a[:c] / (b[:c] if hasattr(b, "tolist") else b)).tolist()
        cols = {"loss": div(run.loss_sum, self.seen)}
        if metric:
            cols["accuracy"] = div(run.correct, run.counted)
        if self.val:
            cols["val_loss"] = div(run.val_loss_sum, self.stepper.n_val)  # [mpi] global count
            if metric:
                cols["val_accuracy"] = div(run.val_correct, run.val_counted)
        cols["lr"] = [lr] * c
        for k, v in cols.items():
            history.history.setdefault(k, []).extend(v)

    def _record_one(self, history, lr: float, metric: bool) -> None:
        run, h = self.run, history.history
        history.epoch.append(self.first)
        h.setdefault("loss", []).append(run.loss_sum.item(0) / self.seen)
        if metric:
            h.setdefault("accuracy", []).append(run.correct.item(0) / run.counted.item(0))
        if self.val:
            h.setdefault("val_loss", []).append(run.val_loss_sum.item(0) / self.stepper.n_val)
            if metric:
                h.setdefault("val_accuracy", []).append(run.val_correct.item(0) / run.val_counted.item(0))
        h.setdefault("lr", []).append(lr)


_plan_modules = None


def _import_plan_modules():
    """fastnn.backend, fastnn.plan and cached_plan, imported on first use (they import fastnn.nn,
    which imports this package) and kept: fit asks for them on every call."""
    global _plan_modules
    from .. import backend
    from .. import plan as plan_mod
    from .plan_cache import cached_plan
    _plan_modules = (backend, plan_mod, cached_plan)
    return _plan_modules


def make_stepper(model, loss_fn, optimizer, plan, batch_size, counter):
    """The stepper fit uses (and the line verbose=2 prints about it)."""
    if plan is False:
        return EagerStepper(model, loss_fn, optimizer, counter, "fit: PyTorch-style loop (plan=False)")
    backend, plan_mod, cached_plan = _plan_modules or _import_plan_modules()
    if backend.get_backend() == "reference":
        reason = "the reference backend is in use (use_backend('reference') runs NumPy only)"
        if plan is True:
            raise plan_mod.PlanUnsupported(f"plan: a compiled plan was required, but {reason}")
        return EagerStepper(model, loss_fn, optimizer, counter, f"fit: PyTorch-style loop ({reason})")
    reason = []

    def compile_plan():
        why = plan_mod.explain(model, loss_fn, optimizer)
        if why is not None:
            reason.append(why)
            return None
        return plan_mod.compile(model, loss_fn, optimizer, batch_size=batch_size)

    slot, reused = cached_plan(model, loss_fn, optimizer, batch_size, compile_plan)
    if slot is None:
        if plan is True:
            raise plan_mod.PlanUnsupported(f"plan: a compiled plan was required, but {reason[0]}")
        return EagerStepper(model, loss_fn, optimizer, counter, f"fit: PyTorch-style loop (no compiled plan: "
                                                                f"{reason[0]})")
    stepper = slot.stepper
    if stepper is None:
        stepper = slot.stepper = PlanStepper(slot.plan, model, loss_fn, optimizer, counter, "fit: compiled plan")
    else:
        stepper.use(loss_fn, counter)
    stepper.reused = reused
    return stepper
