"""fit(): the training loop, with History, callbacks, progress output and divergence checks.

::

    history = fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=20,
                         validation_data=(X_val, y_val))
    history.history["val_accuracy"][-1]

Each step is exactly the PyTorch loop ``optimizer.zero_grad(); loss =
loss_fn(model(xb), yb); loss.backward(); optimizer.step()``, with two checks
in between: a non-finite loss (after the forward pass) or a non-finite gradient
(after backward) raises ``fastnn.DivergenceError`` before ``optimizer.step()``,
so the model keeps the last finite parameters.

The loop here is the same whichever stepper (steppers.py) runs the steps: the eager
PyTorch-style loop, or a compiled plan one step, one epoch or many epochs per C call.

Epochs are numbered from 1 everywhere (printed lines, ``History.epoch``,
callbacks, ``DivergenceError.epoch``); ``step`` counts optimizer steps from 1
across epochs.
"""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np

from ..data import Batches, num_batches, resolve_batch_size
from ..distributed import _fit_context as _mpi_context, fit_params as _mpi_params  # [mpi]
from ..errors import DivergenceError
from ..nn.module import Module
from ..random import draw_seed
from .callbacks import Callback, needs_python_between_epochs, needs_python_between_steps
from .divergence import Diverged, divergence_error
from .history import History
from .inputs import lrs, per_sample_weight, prepare, set_modes, wants_metric
from .interrupt import DeferredInterrupt
from .metrics import accuracy_counter
from .progress import ProgressBar, end_live_line
from .steppers import EpochResult, make_stepper

__all__ = ["fit"]


def fit(model: Module, loss_fn, optimizer, X, y, epochs: int = 10, batch_size: Optional[int] = 32,
        shuffle: bool = True, validation_data=None, scheduler=None, callbacks=(), seed: Optional[int] = None,
        verbose: int = 1, metrics="auto", scheduler_interval: str = "epoch", plan="auto") -> History:
    """Train ``model`` on (X, y) with mini-batch gradient descent; returns a :class:`History`.

    model: a fastnn Module; trained in train mode, validated in eval mode; each
        module's mode is restored when fit returns.
    loss_fn: a loss module (``nn.MSELoss()``, ``nn.CrossEntropyLoss()``, …).
    optimizer: a fastnn optimizer over the model's parameters.
    X: (n, …) numeric inputs, converted once to the model's dtype. y: (n, …) targets
        (integer labels for CrossEntropyLoss, converted to the model's dtype otherwise).
    epochs: passes over the data (0 trains nothing).
    batch_size: samples per step; 1 = online learning, None or ≥ n = full batch.
        The last batch of an epoch holds the remainder.
    shuffle: reshuffle the samples every epoch. seed: the shuffling seed; None draws
        one from fastnn's global generator (``fastnn.manual_seed`` makes runs reproducible).
    validation_data: an ``(X_val, y_val)`` pair evaluated after every epoch → ``val_*`` metrics.
    scheduler: an lr scheduler stepped once after every epoch (``scheduler_interval="epoch"``)
        or after every optimizer step (``"batch"``, e.g. OneCycleLR). ReduceLROnPlateau-style
        schedulers (``step(metrics)``) get val_loss if there is validation data, else loss.
    callbacks: :class:`Callback` instances. verbose: 0 silent, 1 progress (one line per
        epoch), 2 one line per epoch plus diagnostics.
    metrics: "auto" (accuracy for CrossEntropyLoss — argmax —, BCELoss — output > 0.5 —
        and BCEWithLogitsLoss — output > 0), ["accuracy"], or None.
    plan: "auto" (default) trains through a compiled plan (``fastnn.plan``) whenever the
        model, loss and optimizer are supported and the backend is "c", and through the
        PyTorch-style loop otherwise; False always uses the loop; True requires a plan
        (``PlanUnsupported`` otherwise, also under ``use_backend("reference")``). With a plan,
        loss sums, accuracy and validation metrics are computed in C; when no callback or
        scheduler needs Python between epochs, all epochs run in C calls of a few ms each
        (one epoch per call when epoch-level callbacks or schedulers run between them, one
        step per call when a per-batch callback or scheduler does). All give the same
        parameters and history; verbose=2 and ``fastnn.plan.explain`` say which path ran and
        why. The compiled plan is cached on the optimizer and rebuilt when the model, loss,
        parameter groups, batch size or dtype change.

    Raises ``fastnn.DivergenceError`` (with ``epoch``, ``step`` (global, 1-based),
    ``batch`` (within the epoch, 1-based), ``loss``, ``lr`` and ``history``) when a loss or
    gradient is not finite, before that step's update, so the model keeps the last finite
    parameters. (If finite gradients overflow in the update itself, |lr·g| beyond the
    dtype's range, it is raised right after that step and says the parameters are lost.)
    A Ctrl-C stops between steps (a second one at once); the KeyboardInterrupt carries
    ``history`` (the completed epochs). Callbacks' ``on_train_end`` runs only when training
    ends normally (or through ``stop_training``).
    """
    # --- checks, before anything runs ---
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a fastnn.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a loss module or callable, got {type(loss_fn).__name__}")
    if not (hasattr(optimizer, "zero_grad") and hasattr(optimizer, "step") and hasattr(optimizer, "param_groups")):
        raise TypeError(f"optimizer: expected a fastnn optimizer, got {type(optimizer).__name__}")
    if isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, (int, np.integer)):
        raise TypeError(f"epochs: expected a non-negative integer, got {type(epochs).__name__}")
    if epochs < 0:
        raise ValueError(f"epochs: expected a non-negative integer, got {epochs}")
    epochs = int(epochs)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed: expected None or a non-negative integer, got {seed!r}")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval: expected 'epoch' or 'batch', got {scheduler_interval!r}")
    if not (plan is True or plan is False or plan == "auto"):
        raise ValueError(f"plan: expected 'auto', True or False, got {plan!r}")
    X, y = prepare(X, y, loss_fn, model)
    batch_size = resolve_batch_size(batch_size, len(X))
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = (f"a {type(validation_data).__name__} of length {len(validation_data)}"
                   if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
            raise TypeError(f"validation_data: expected an (X_val, y_val) pair, got {got}")
        X_val, y_val = prepare(*validation_data, loss_fn, model, names=("validation_data[0]", "validation_data[1]"))
        if X_val.shape[1:] != X.shape[1:]:
            raise ValueError(f"validation_data[0]: expected samples of shape {X.shape[1:]} like X, "
                             f"got {X_val.shape[1:]}")
    counter = accuracy_counter(loss_fn, metrics)
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks: expected fastnn.train.Callback instances, got {type(cb).__name__}")
    if scheduler is not None:
        if not hasattr(scheduler, "step"):
            raise TypeError(f"scheduler: expected an lr scheduler with step(), got {type(scheduler).__name__}")
        plateau = wants_metric(scheduler)
        if plateau and scheduler_interval == "batch":
            raise ValueError("scheduler_interval: a ReduceLROnPlateau-style scheduler steps per epoch, not per batch")
    dist = _mpi_context()  # [mpi] None in a single process
    if verbose and (dist is None or dist.is_main) and not any(isinstance(cb, ProgressBar) for cb in callbacks):
        callbacks.append(ProgressBar(verbose=verbose))

    stepper = make_stepper(model, loss_fn, optimizer, plan, batch_size, counter)
    stepper.dist = dist  # [mpi]
    X, y = stepper.inputs(X, y)
    if validation_data is not None and stepper.kind == "plan":
        stepper.set_validation(X_val, y_val)
    run = _Run(stepper, model, optimizer, X, y, epochs, batch_size, shuffle, seed, scheduler, scheduler_interval,
               callbacks, validation_data is not None and (X_val, y_val), verbose, counter, dist)
    if dist is not None:  # [mpi] same data everywhere (checked), rank 0's parameters, the plan's allreduce hook
        dist.begin(loss_fn, optimizer, stepper.plan if stepper.kind == "plan" else None, X, y, batch_size)
    return run.fit()


def choose_path(stepper, callbacks, scheduler, scheduler_interval, validation: bool):
    """("steps" | "epochs" | "runs", why): one C call (or eager step) per step, one per epoch,
    or runs of many epochs per call."""
    if stepper.kind != "plan":
        return "steps", ""
    if scheduler is not None and scheduler_interval == "batch":
        return "steps", "a per-batch scheduler runs between steps"
    busy = [type(cb).__name__ for cb in callbacks if needs_python_between_steps(cb)]
    if busy:
        return "steps", f"{busy[0]}.on_batch_end runs between steps"
    if scheduler is not None:
        return "epochs", f"the scheduler {type(scheduler).__name__} steps between epochs"
    busy = [type(cb).__name__ for cb in callbacks if needs_python_between_epochs(cb)]
    if busy:
        return "epochs", f"{busy[0]} runs between epochs"
    if validation and not stepper.validates_in_c:
        return "epochs", "validation of batch norm / dropout models runs the model in eval mode"
    return "runs", ""


def describe_path(model, loss_fn, optimizer, callbacks=(), scheduler=None, scheduler_interval: str = "epoch",
                  validation_data=None) -> str:
    """The line fit(..., verbose=2) prints for a compilable combination (fastnn.plan.explain)."""
    from types import SimpleNamespace
    callbacks = list(callbacks or ())
    in_c = not any(type(m).__name__ in ("BatchNorm1d", "Dropout") for m in model._modules.values())
    path, why = choose_path(SimpleNamespace(kind="plan", validates_in_c=in_c), callbacks, scheduler,
                            scheduler_interval, validation_data is not None)
    return "fit: compiled plan" + _NOTES[path].format(why=why)


_NOTES = {"steps": " (one C call per step: {why}; metrics and validation in C)",
          "epochs": " (whole epochs in C) one epoch per C call: {why}; metrics and validation in C",
          "runs": " (whole epochs in C) many epochs per C call: no callback or scheduler runs between "
                  "epochs; metrics and validation in C"}


def _modes(model: Module):
    """(modes, modules, all training): (module, training) for every module of model.modules(),
    walked once without a generator per module (fit does it on every call, to restore the modes
    when it returns)."""
    modes, modules, todo, training = [], [], [model], True
    while todo:
        m = todo.pop()
        modules.append(m)
        modes.append((m, m.training))
        training = training and m.training
        todo.extend(reversed(m._modules.values()))
    return modes, modules, training


class _Run:
    """One call of fit: the state the loop shares between epochs."""

    def __init__(self, stepper, model, optimizer, X, y, epochs, batch_size, shuffle, seed, scheduler,
                 scheduler_interval, callbacks, validation, verbose, counter, dist=None):
        self.dist = dist  # [mpi]
        self.stepper, self.model, self.optimizer, self.X, self.y = stepper, model, optimizer, X, y
        self.epochs, self.batch_size, self.scheduler, self.callbacks = epochs, batch_size, scheduler, callbacks
        self.per_batch_scheduler = scheduler is not None and scheduler_interval == "batch"
        self.plateau = scheduler is not None and wants_metric(scheduler)
        self.validation, self.verbose, self.counter = validation, verbose, counter
        self.path, self._why = choose_path(stepper, callbacks, scheduler, scheduler_interval, bool(validation))
        n = len(X)
        if dist is not None:  # [mpi] the same path on every rank
            self.path, self._why = dist.agree_path(self.path, self._why, n, batch_size)
        # drawn even when unused: later draws stay the same; [mpi] rank 0's on every rank
        s = (draw_seed() if seed is None else int(seed)) if dist is None else dist.agree_seed(seed)
        self.shuffling = shuffle and batch_size < n  # one full batch: the order changes nothing
        self.rng = np.random.default_rng(s) if self.shuffling else None
        self._batches = None
        self.steps = num_batches(n, batch_size)
        self.history = History()
        names = ["loss"] + (["accuracy"] if counter else [])
        if validation:
            names += ["val_" + k for k in names]
        self.history.params = dict(epochs=epochs, steps=self.steps, samples=n, batch_size=batch_size,
                                   metrics=names + ["lr"], verbose=verbose, steps_done=0)
        self.history.params.update(_mpi_params(dist, n, batch_size))  # [mpi] world_size, rank, local_samples
        for cb in callbacks:
            cb._set_context(model, optimizer, self.history, self.history.params)
        self.step = 0
        self.feeds = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]

    @property
    def note(self) -> str:
        """The line verbose=2 prints: which path runs and why."""
        stepper = self.stepper
        note = stepper.note + (_NOTES[self.path].format(why=self._why) if stepper.kind == "plan" else "")
        if stepper.kind == "plan" and self.batch_size:
            steps = -(-len(self.X) // self.batch_size)
            bs = min(self.batch_size, len(self.X))
            team = stepper.plan.team_threads(bs, steps)
            how = ", each step split by hidden units" if team > 1 and stepper.plan.splits_by_units(bs) else ""
            note += (f"; each C call on one team of {team} threads{how}" if team > 1 else
                     "; no persistent team (steps too small to share between cores)")
        return note + ("; plan reused from the last fit" if getattr(stepper, "reused", False) else "")

    @property
    def batches(self) -> Batches:
        if self._batches is None:  # made when first needed: runs in C draw their orders themselves
            self._batches = Batches(self.X, self.y, batch_size=self.batch_size, shuffle=self.shuffling, rng=self.rng)
        return self._batches

    def _train_mode(self, modules) -> None:
        if self.path == "runs" and type(self.model).train is Module.train:
            if self.all_training and not self.callbacks:  # nothing can change a mode: fit leaves them as they are
                self.modes_kept = True
            else:
                for m in modules:  # what Module.train does, without walking the tree again
                    object.__setattr__(m, "training", True)
        else:
            self.model.train()

    # --- the loop ---
    def fit(self) -> History:
        model, callbacks, history = self.model, self.callbacks, self.history
        modes, modules, self.all_training = _modes(model)
        self.modes_kept = False
        try:
            with DeferredInterrupt() as interrupt:
                self.interrupt = interrupt
                for cb in callbacks:
                    cb.on_train_begin({})
                if self.verbose == 2:
                    for cb in callbacks:
                        if isinstance(cb, ProgressBar):
                            cb._write(self.note + "\n")
                            break
                epoch = 1
                while epoch <= self.epochs:
                    self._train_mode(modules)
                    lr_epoch = lrs(self.optimizer)[0]
                    if self.path == "runs":
                        span = min(self.epochs - epoch + 1, self.stepper.max_span(len(self.X), self.shuffling))
                        results, pending = self._run_in_c(epoch, span)
                    else:
                        for cb in callbacks:
                            cb.on_epoch_begin(epoch, {})
                        if self.path == "epochs":
                            results, pending = self._run_in_c(epoch, 1)
                        else:
                            results, pending = [self._run_steps(epoch)], None
                    stop = False
                    if self.path == "runs":  # nothing runs between these epochs: record them at once
                        results.record(history, lr_epoch, self.stepper.metric)
                        if len(results):
                            last = epoch + len(results) - 1
                            if interrupt.pending:  # the message is formatted only when needed
                                interrupt.check(f"after epoch {last} (step {self._steps_through(last)})")
                    else:
                        for r in results:
                            stop = self._end_epoch(r, lr_epoch)
                            if stop:
                                break
                    if pending is not None:
                        if isinstance(pending, Diverged):
                            raise pending
                        _, e, b = pending
                        if interrupt.pending:  # the message is formatted only when needed
                            interrupt.check(f"after step {self.step} (epoch {e}, batch {b}/{self.steps})")
                    if interrupt.pending:  # the message is formatted only when needed
                        interrupt.check(f"after epoch {epoch + len(results) - 1} (step {self.step})")
                    if stop:
                        break
                    epoch += len(results)
                for cb in callbacks:
                    cb.on_train_end({"epochs": len(history.epoch), "steps": self.step})
                interrupt.check("at the end of training")  # a Ctrl-C during on_train_end is not lost
        except Diverged as d:
            exc = divergence_error(d, self.epochs, self.steps, self.optimizer)
            exc.history = history
            end_live_line(callbacks)
            raise exc from None
        except (KeyboardInterrupt, DivergenceError) as exc:
            exc.history = history
            end_live_line(callbacks)
            raise
        finally:
            if not self.modes_kept:
                set_modes(modes)
            if self.stepper.kind == "plan":
                self.stepper.X_val = self.stepper.y_val = None  # the cached stepper keeps no data
            if self.dist is not None:  # [mpi] left by an exception: abort unless every rank left too
                self.stepper.dist = None
                self.dist.end(sys.exc_info()[1])
        return history

    def _run_steps(self, epoch: int) -> EpochResult:
        """One epoch, one step per call, Python between steps (callbacks, schedulers)."""
        stepper, callbacks, interrupt, steps = self.stepper, self.callbacks, self.interrupt, self.steps
        weight, dist = self._weight, self.dist
        loss_sum = 0.0
        seen = correct = counted = 0
        stop = False
        for b, (xb, yb) in enumerate(self.batches):
            if interrupt.pending:  # the message is formatted only when needed
                interrupt.check(f"before step {self.step + 1} (epoch {epoch}, batch {b + 1}/{steps})")
            if dist is not None:  # [mpi] this rank's share of the global batch
                xb, yb, n_local = dist.shard(xb, yb)
            value, c, k = stepper.step(xb, yb, epoch, b + 1)
            self.step += 1
            self.history.params["steps_done"] = self.step
            if self.per_batch_scheduler:
                self.scheduler.step()
            n = len(xb) if dist is None else n_local  # [mpi] 0: a weightless stand-in row
            loss_sum += value * weight(n)
            seen += n
            if n:  # [mpi]
                correct += c
                counted += k
            logs = {"loss": value, "size": n, "step": self.step, "epoch": epoch, "epoch_loss": loss_sum / seen}
            for cb in callbacks:
                cb.on_batch_end(b, logs)
            stop = any(cb.stop_training for cb in callbacks)
            if stop:
                break
            if interrupt.pending:  # the message is formatted only when needed
                interrupt.check(f"after step {self.step} (epoch {epoch}, batch {b + 1}/{steps})")
        if dist is not None:  # [mpi] global sums, once per epoch
            loss_sum, seen, correct, counted = dist.reduce_sums([loss_sum, seen, correct, counted])
        return EpochResult(epoch, loss_sum, seen, correct, counted, None, stop)

    def _weight(self, n: int) -> float:
        return per_sample_weight(self.stepper.loss_fn, n) if n else 0.0  # [mpi] n=0: a stand-in row

    def _run_in_c(self, epoch: int, span: int):
        """Epochs epoch .. epoch+span-1 through the plan's C runs: (results, pending)."""
        feed = self._feed if self.feeds else None
        results, done, pending = self.stepper.run(self.X, self.y, epoch, span, self.batch_size, self.rng, feed,
                                                  self.interrupt, bool(self.validation))
        self.step += done
        self.history.params["steps_done"] = self.step
        return results, pending

    def _feed(self, epoch: int, batch: int, value: float, epoch_loss: float) -> None:
        n = len(self.X)
        logs = {"loss": value, "size": min(self.batch_size, n - batch * self.batch_size),
                "step": (epoch - 1) * self.steps + batch + 1, "epoch": epoch, "epoch_loss": epoch_loss}
        for cb in self.feeds:
            cb.on_batch_end(batch, logs)

    def _end_epoch(self, r: EpochResult, lr_epoch: float) -> bool:
        """Metrics, validation, scheduler and callbacks at the end of epoch r; True to stop."""
        logs = {"loss": r.loss_sum / r.seen}
        if self.counter is not None and r.counted:
            logs["accuracy"] = r.correct / r.counted
        if self.validation:
            val = r.val if r.val is not None else self.stepper.validate(*self.validation, self.batch_size)
            logs.update({"val_" + k: v for k, v in val.items()})
        logs["lr"] = lr_epoch
        self.history._record(r.epoch, logs)
        scheduler = self.scheduler
        if scheduler is not None and not self.per_batch_scheduler:
            if self.plateau:
                scheduler.step(logs.get("val_loss", logs["loss"]))
            else:
                scheduler.step()
        for cb in self.callbacks:
            cb.on_epoch_end(r.epoch, dict(logs))
        if self.interrupt.pending:  # the message is formatted only when needed
            self.interrupt.check(f"after epoch {r.epoch} (step {self._steps_through(r.epoch)})")
        return r.stop or any(cb.stop_training for cb in self.callbacks)

    def _steps_through(self, epoch: int) -> int:
        return min(self.step, epoch * self.steps)
