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

Epochs are numbered from 1 everywhere (printed lines, ``History.epoch``,
callbacks, ``DivergenceError.epoch``); ``step`` counts optimizer steps from 1
across epochs.
"""
from __future__ import annotations

import inspect
import math
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

from . import backend
from .nn.arena import only_padding_nonfinite
from .data import Batches, resolve_batch_size
from .distributed import _fit_context as _mpi_context, fit_params as _mpi_params  # [mpi]
from .errors import DivergenceError
from .nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss
from .nn.module import Module
from .random import draw_seed

__all__ = ["fit", "evaluate", "History", "Callback", "EarlyStopping", "ProgressBar"]


# --- History and callbacks ----------------------------------------------------------------
class History:
    """What ``fit`` returns: per-epoch metrics.

    ``history``: dict of per-epoch lists — ``loss`` (mean over the epoch's
    samples), ``accuracy`` (classification losses), ``val_loss`` and
    ``val_accuracy`` (with validation_data), ``lr`` (first parameter group's
    learning rate at the start of the epoch, i.e. the one its first step used).
    ``epoch``: the epoch numbers (1-based). ``params``: epochs, steps per epoch, …
    """

    def __init__(self):
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []
        self.params: Dict[str, Any] = {}

    def _record(self, epoch: int, logs: Dict[str, float]) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items())
        return f"History({len(self.epoch)} epochs; last: {last})"


class Callback:
    """Hooks into ``fit``. Override what you need; set ``self.stop_training = True`` to stop.

    Before ``on_train_begin``, fit sets ``self.model``, ``self.optimizer``,
    ``self.history`` (the History being filled) and ``self.params`` (``epochs``,
    ``steps`` per epoch, ``samples``, ``batch_size``, ``metrics`` = the names an
    epoch's logs will hold, ``verbose``).

    on_epoch_begin/on_epoch_end get the 1-based epoch; on_batch_end gets the
    0-based batch index within the epoch and logs ``loss`` (this batch), ``size``,
    ``step`` (global, 1-based) and ``epoch_loss`` (the epoch's running mean).
    on_epoch_end's logs are that epoch's entries of ``History.history``.
    Setting stop_training in on_batch_end ends the epoch after that batch (its
    metrics cover the samples seen) and then training.
    """

    stop_training = False

    def _set_context(self, model, optimizer, history, params) -> None:
        self.model, self.optimizer, self.history, self.params = model, optimizer, history, params
        self.stop_training = False

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    An epoch improves on the best so far when ``current < best - min_delta``
    (mode "min") or ``current > best + min_delta`` (mode "max"); "auto" means
    "max" for accuracies and "min" otherwise. With ``restore_best_weights`` the
    model's ``state_dict`` from the best epoch is loaded back when training ends
    normally (not after a DivergenceError or KeyboardInterrupt).
    Afterwards ``best``, ``best_epoch`` and ``stopped_epoch`` (None if it never
    stopped training) tell what happened.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a metric name, got {type(monitor).__name__}")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"patience: expected a non-negative integer, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.number)) \
                or not math.isfinite(min_delta):
            raise ValueError(f"min_delta: expected a finite number, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if monitor.endswith(("accuracy", "acc")) else "min"
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(float(min_delta))
        self.mode, self.restore_best_weights = mode, bool(restore_best_weights)
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.wait = 0
        self._last_epoch = None

    def on_train_begin(self, logs=None):
        self._reset()
        available = self.params.get("metrics", [])
        if self.monitor not in available:
            hint = " (pass validation_data to fit, or monitor='loss')" if self.monitor.startswith("val_") else ""
            raise ValueError(f"monitor: {self.monitor!r} is not among this fit's metrics "
                             f"{', '.join(available)}{hint}")

    def _improved(self, current: float) -> bool:
        if not math.isfinite(current):
            return False
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        current = float(logs[self.monitor])
        if self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch != self._last_epoch:
            self.model.load_state_dict(self.best_weights)


class ProgressBar(Callback):
    """Progress output; ``fit`` adds one automatically when ``verbose`` is 1 or 2.

    On a terminal, verbose=1 keeps one line per epoch updating in place
    (batches done/total, running loss, elapsed time, at most every
    ``min_interval`` seconds); otherwise it prints one line when each epoch
    ends. verbose=2 prints one line per epoch plus diagnostics: learning rate,
    throughput, and the norms of the parameters and of the last batch's gradient.
    ``file`` defaults to ``sys.stdout`` (looked up when training starts);
    ``tty`` overrides terminal detection.
    """

    def __init__(self, verbose: int = 1, file=None, tty: Optional[bool] = None, min_interval: float = 0.1):
        if verbose not in (1, 2):
            raise ValueError(f"verbose: expected 1 or 2, got {verbose!r}")
        self.verbose, self._file, self._tty, self.min_interval = verbose, file, tty, float(min_interval)

    def _write(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()

    def on_train_begin(self, logs=None):
        self.file = self._file if self._file is not None else sys.stdout
        if self._tty is not None:
            self.tty = bool(self._tty)
        else:
            try:
                self.tty = bool(self.file.isatty())
            except (AttributeError, ValueError):
                self.tty = False
        self.live = self.tty and self.verbose == 1
        self.t_train = time.perf_counter()
        self._width = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.t_epoch = self._t_shown = time.perf_counter()
        self._steps_done = 0

    def _head(self, epoch) -> str:
        e = self.params["epochs"]
        return f"Epoch {epoch:>{len(str(e))}}/{e}"

    def on_batch_end(self, batch, logs=None):
        self._steps_done = batch + 1
        if not self.live:
            return
        now = time.perf_counter()
        steps = self.params["steps"]
        if now - self._t_shown < self.min_interval and batch + 1 < steps:
            return
        self._t_shown = now
        line = (f"{self._head(logs['epoch'])} - {batch + 1}/{steps} - "
                f"loss {logs['epoch_loss']:.4f} - {now - self.t_epoch:.1f}s")
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def on_epoch_end(self, epoch, logs=None):
        dt = time.perf_counter() - self.t_epoch
        metrics = " - ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")
        line = f"{self._head(epoch)} - {self._steps_done}/{self.params['steps']} - {dt:.2f}s - {metrics}"
        if self.verbose == 2:
            line += "\n" + self._diagnostics(dt, logs)
        self._write(("\r" + line.ljust(self._width) if self.live else line) + "\n")
        self._width = 0

    def _diagnostics(self, dt, logs) -> str:
        seen = min(self._steps_done * self.params["batch_size"], self.params["samples"])
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        pnorm = math.sqrt(sum(float(np.dot(p.data.ravel(), p.data.ravel())) for p in params))
        gnorm = math.sqrt(sum(float(np.dot(p.grad.ravel(), p.grad.ravel())) for p in params))
        lrs = sorted({g["lr"] for g in self.optimizer.param_groups})
        return (f"    lr {', '.join(f'{lr:g}' for lr in lrs)} - {seen / max(dt, 1e-9):,.0f} samples/s - "
                f"{1e3 * dt / max(self._steps_done, 1):.3f} ms/step - |params| {pnorm:.4g} - "
                f"|grad| (last batch) {gnorm:.4g}")

    def on_train_end(self, logs=None):
        if self.verbose == 2:
            h = self.history
            self._write(f"Trained {len(h.epoch)} epoch(s), {h.params.get('steps_done', 0)} steps, "
                        f"in {time.perf_counter() - self.t_train:.2f}s\n")


# --- helpers ---------------------------------------------------------------------------------
class _DeferredInterrupt:
    """Ctrl-C during fit is acted on between steps, never inside one.

    In the main thread (with Python's default SIGINT handler) a first SIGINT
    only sets a flag that the loop checks before and after each step; a second
    one raises at once. Elsewhere signals cannot be caught and a
    KeyboardInterrupt propagates wherever it lands.
    """

    def __init__(self):
        self.pending = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt("fit: interrupted twice; stopped immediately (possibly inside a step)")
        self.pending = True

    def check(self, where: str) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt(f"fit: interrupted {where}; the model holds the parameters of the last "
                                    f"completed step, exc.history the completed epochs")

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _numeric(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected a numeric array, could not convert ({e})") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name}: expected an array of samples, got a scalar")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
        raise ValueError(f"{name}: contains NaN or infinity (first in sample {bad})")
    return arr


def _model_dtype(model: Module):
    for p in model.parameters():
        return p.dtype
    return None


def _prepare(X, y, loss_fn, model, names=("X", "y")):
    """Checked arrays, X (and float targets) in the model's dtype so batches are not converted each step."""
    X, y = _numeric(X, names[0]), _numeric(y, names[1])
    if len(X) == 0:
        raise ValueError(f"{names[0]}: expected at least one sample, got an empty array")
    if len(y) != len(X):
        raise ValueError(f"{names[1]}: expected {len(X)} samples to match {names[0]}, got {len(y)}")
    dtype = _model_dtype(model)
    if dtype is not None and X.dtype != dtype:
        X = X.astype(dtype)
    if isinstance(loss_fn, CrossEntropyLoss):
        if y.dtype.kind in "iu" and y.dtype != np.int64:
            y = y.astype(np.int64)
    elif dtype is not None and y.dtype != dtype:
        y = y.astype(dtype)
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def _accuracy_counter(loss_fn, metrics):
    """(output, target) -> (correct, counted) for the loss's task, or None."""
    if metrics is None:
        return None
    if metrics == "auto":
        wanted = True
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [m for m in names if m != "accuracy"]
        if unknown:
            raise ValueError(f"metrics: expected 'auto', None or ['accuracy'], got unknown metric(s) {unknown}")
        wanted = bool(names)
        if not wanted:
            return None
    if isinstance(loss_fn, CrossEntropyLoss):
        def count(out, t):
            t = np.asarray(t)
            if t.ndim != 1:
                return None
            return int(np.count_nonzero(np.argmax(out, axis=-1) == t)), t.shape[0]
        return count
    threshold = 0.5 if isinstance(loss_fn, BCELoss) else 0.0 if isinstance(loss_fn, BCEWithLogitsLoss) else None
    if threshold is None:
        if metrics != "auto":
            raise ValueError(f"metrics: 'accuracy' needs CrossEntropyLoss, BCELoss or BCEWithLogitsLoss, "
                             f"got {type(loss_fn).__name__}")
        return None

    def count_binary(out, t):
        out = np.asarray(out)
        t = np.asarray(t)
        if t.size != out.size:
            return None
        return int(np.count_nonzero((out > threshold) == (t.reshape(out.shape) > 0.5))), out.size
    return count_binary


def _per_sample_weight(loss_fn, n: int) -> float:
    """Multiplier turning a batch loss into a sum over its samples (mean vs sum reduction)."""
    return 1.0 if getattr(loss_fn, "reduction", "mean") == "sum" else float(n)


def _all_finite_fn():
    fn = getattr(backend.current(), "all_finite", None)
    return fn if fn is not None else (lambda a: bool(np.isfinite(a).all()))


def _optimizer_finite(optimizer, attr: str) -> bool:
    """All of the optimizer's parameters' ``grad`` (or ``data``) finite: one check per flat arena."""
    check = _all_finite_fn()
    arena_groups = getattr(optimizer, "_arenas", None)
    if arena_groups is not None and all(not a.stale for group in arena_groups for a in group):
        return all(check(getattr(a, attr)) for group in arena_groups for a in group)
    return all(check(getattr(p, attr)) for g in optimizer.param_groups for p in g["params"])


def _lrs(optimizer) -> List[float]:
    return [float(g["lr"]) for g in optimizer.param_groups]


def _divergence(what: str, value: float, epoch: int, epochs: int, batch: int, steps: int, step: int,
                optimizer, applied: bool = False) -> DivergenceError:
    lrs = _lrs(optimizer)
    lr = lrs[0]
    lr_text = f"lr={lr:g}" if len(set(lrs)) == 1 else "lr=" + "/".join(f"{v:g}" for v in lrs)
    advice = (f"The learning rate is probably too high: try lr={lr / 10:g} or smaller."
              if lr > 0 else "Check the inputs and targets for extreme values.")
    outcome = ("The update was applied and the parameters are lost: restore them from a checkpoint."
               if applied else
               "The update was not applied: the model keeps the parameters from before this step.")
    msg = (f"fit: {what} at epoch {epoch}/{epochs}, batch {batch}/{steps} (global step {step}), "
           f"loss={value:g}, {lr_text}. {outcome} {advice}")
    exc = DivergenceError(msg, epoch=epoch, step=step, loss=value, lr=lr)
    exc.batch = batch
    return exc


def _wants_metric(scheduler) -> bool:
    """ReduceLROnPlateau-style: step(metrics) takes the monitored value."""
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        return True
    try:
        sig = inspect.signature(scheduler.step)
    except (TypeError, ValueError):
        return False
    if "metrics" in sig.parameters:
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in sig.parameters.values())


def _set_modes(modes) -> None:
    for m, training in modes:
        object.__setattr__(m, "training", training)


def evaluate(model: Module, loss_fn, X, y, batch_size: Optional[int] = None, metrics="auto") -> Dict[str, float]:
    """Loss (mean over samples) and, for classification losses, accuracy of ``model`` on (X, y).

    Runs in eval mode and restores each module's previous mode. No gradients are computed.
    """
    X, y = _prepare(X, y, loss_fn, model)
    return _evaluate(model, loss_fn, X, y, resolve_batch_size(batch_size, len(X)),
                     _accuracy_counter(loss_fn, metrics))


def _evaluate(model, loss_fn, X, y, batch_size, counter) -> Dict[str, float]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        total = correct = counted = 0.0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            out = model(xb)
            out = out.detach() if hasattr(out, "detach") else out  # no chain: the loss skips its gradient
            total += float(loss_fn(out, yb)) * _per_sample_weight(loss_fn, len(xb))
            if counter is not None:
                c = counter(out, yb)
                if c is not None:
                    correct += c[0]
                    counted += c[1]
        result = {"loss": total / len(X)}
        if counter is not None and counted:
            result["accuracy"] = correct / counted
        return result
    finally:
        _set_modes(modes)

# --- compiled plans -----------------------------------------------------------------------------
_PLAN_NONFINITE_LOSS, _PLAN_NONFINITE_GRAD, _PLAN_NONFINITE_PARAM = 3, 4, 5  # plan.h status codes


def _compile_plan(model, loss_fn, optimizer, plan, batch_size):
    """(Plan or None, a line saying which loop runs and why)."""
    if plan is False:
        return None, "fit: PyTorch-style loop (plan=False)"
    from . import plan as plan_mod
    reason = plan_mod.explain(model, loss_fn, optimizer)
    if reason is not None:
        if plan is True:
            raise plan_mod.PlanUnsupported(f"plan: a compiled plan was required, but {reason}")
        return None, f"fit: PyTorch-style loop (no compiled plan: {reason})"
    p = plan_mod.compile(model, loss_fn, optimizer, batch_size=batch_size)
    p.check_finite = True  # DivergenceError semantics: stop before a non-finite update
    return p, "fit: compiled plan"


def _plan_epoch(plan, X, y, batches, rng, shuffle, batch_size, callbacks, interrupt, history, optimizer,
                weight, epoch, epochs, steps, step):
    """One epoch through plan.epoch (batches in C). Returns (step, loss_sum, seen, stop)."""
    n = len(X)
    # The same permutation Batches would draw (same generator, same call), so both loops agree.
    perm = rng.permutation(n) if shuffle and batch_size < n else None
    sizes = [min(batch_size, n - b * batch_size) for b in range(steps)]
    dist = _mpi_context()  # [mpi]
    if dist is not None:  # [mpi] this rank's shares of the epoch's global batches
        X, y, perm, batch_size, sizes = dist.shard_epoch(X, y, perm, batch_size)
    state = {"sum": 0.0, "seen": 0, "counted": 0}
    f32 = plan.dtype == np.float32

    def account(losses, upto):
        for b in range(state["counted"], upto):
            with np.errstate(over="ignore"):
                v = float(np.float32(losses[b])) if f32 else float(losses[b])
            state["sum"] += v * weight(sizes[b])
            state["seen"] += sizes[b]
        state["counted"] = upto

    def progress(done, total, losses):
        account(losses, done)
        with np.errstate(over="ignore"):
            v = float(np.float32(losses[done - 1])) if f32 else float(losses[done - 1])
        logs = {"loss": v, "size": sizes[done - 1], "step": step + done, "epoch": epoch,
                "epoch_loss": state["sum"] / state["seen"]}
        for cb in callbacks:
            cb.on_batch_end(done - 1, logs)

    every = max(1, steps // 50) if callbacks else 0
    losses = plan.epoch(X, y, batch_size=batch_size, perm=perm, callback=progress if every else None,
                        every=every, stop=lambda: interrupt.pending)
    done = len(losses)
    account(losses, done)
    step += done
    history.params["steps_done"] = step
    status = plan.last_status
    if status in (_PLAN_NONFINITE_LOSS, _PLAN_NONFINITE_GRAD, _PLAN_NONFINITE_PARAM):
        applied = status == _PLAN_NONFINITE_PARAM
        b = done if applied else done + 1
        with np.errstate(over="ignore"):  # as fit reports it: the loss in the model's dtype
            value = float(np.float32(plan.last_losses[b - 1])) if f32 else float(plan.last_losses[b - 1])
        what = ("the loss became non-finite" if status == _PLAN_NONFINITE_LOSS else
                "a gradient became non-finite" if status == _PLAN_NONFINITE_GRAD else
                "the update overflowed: the parameters are no longer finite")
        raise _divergence(what, value, epoch, epochs, b, steps, b + step - done, optimizer, applied=applied)
    if done < steps:
        interrupt.check(f"after step {step} (epoch {epoch}, batch {done}/{steps})")
    return step, state["sum"], state["seen"], any(cb.stop_training for cb in callbacks)


# --- fit ---------------------------------------------------------------------------------------
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
    plan: "auto" (default) trains through a compiled plan (``fastnn.plan``: each step one C
        call, and whole epochs in C when no metric, per-batch callback or per-batch scheduler
        needs Python between steps) whenever the model, loss and optimizer are supported, and
        through the PyTorch-style loop otherwise; False always uses the loop; True requires a
        plan (``PlanUnsupported`` otherwise). Both give the same parameters; verbose=2 says
        which one ran and why.

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
    if not all(hasattr(optimizer, a) for a in ("zero_grad", "step", "param_groups")):
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
    X, y = _prepare(X, y, loss_fn, model)
    batch_size = resolve_batch_size(batch_size, len(X))
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = (f"a {type(validation_data).__name__} of length {len(validation_data)}"
                   if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
            raise TypeError(f"validation_data: expected an (X_val, y_val) pair, got {got}")
        X_val, y_val = _prepare(*validation_data, loss_fn, model, names=("validation_data[0]", "validation_data[1]"))
        if X_val.shape[1:] != X.shape[1:]:
            raise ValueError(f"validation_data[0]: expected samples of shape {X.shape[1:]} like X, "
                             f"got {X_val.shape[1:]}")
    counter = _accuracy_counter(loss_fn, metrics)
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks: expected fastnn.train.Callback instances, got {type(cb).__name__}")
    if scheduler is not None:
        if not hasattr(scheduler, "step"):
            raise TypeError(f"scheduler: expected an lr scheduler with step(), got {type(scheduler).__name__}")
        plateau = _wants_metric(scheduler)
        if plateau and scheduler_interval == "batch":
            raise ValueError("scheduler_interval: a ReduceLROnPlateau-style scheduler steps per epoch, not per batch")
    dist = _mpi_context()  # [mpi] None in a single process
    if verbose and (dist is None or dist.is_main) and not any(isinstance(cb, ProgressBar) for cb in callbacks):  # [mpi]
        callbacks.append(ProgressBar(verbose=verbose))

    # --- set-up ---
    step_plan, plan_note = _compile_plan(model, loss_fn, optimizer, plan, batch_size)
    if step_plan is not None:
        if step_plan.flatten_input and X.ndim > 2:
            X = X.reshape(len(X), -1)  # what the model's leading Flatten() does to every batch
        # The plan checks shapes too, but the first layer's own words are clearer to a user.
        first = next((m for m in model.modules() if hasattr(m, "in_features")), None)
        if first is not None and (X.ndim != 2 or X.shape[1] != first.in_features):
            raise ValueError(f"{first.describe()} expected input with {first.in_features} features, "
                             f"got array of shape {X.shape}")
        if isinstance(loss_fn, CrossEntropyLoss):
            # Labels as the eager loss would take them (integral floats allowed), checked up front.
            from .ops.losses import _label_error, _labels
            last = [m for m in model.modules() if hasattr(m, "out_features")]
            classes = last[-1].out_features if last else np.iinfo(np.int64).max
            y = _labels(y, len(y), classes)
            outside = (y < 0) | (y >= classes)
            if outside.any():
                bad = int(np.argmax(outside))
                raise _label_error(int(y[bad]), bad, classes)
    whole_epochs = (step_plan is not None and counter is None
                    and not (scheduler is not None and scheduler_interval == "batch")
                    and all(type(cb).on_batch_end in (Callback.on_batch_end, ProgressBar.on_batch_end)
                            for cb in callbacks))
    if step_plan is not None:
        plan_note += (" (whole epochs in C)" if whole_epochs else
                      " (one C call per step; Python between steps for metrics/callbacks/schedulers)")
    if dist is not None:  # [mpi] every rank needs the same global batches
        seed = dist.agree_seed(seed)
    rng = np.random.default_rng(draw_seed() if seed is None else int(seed))
    batches = Batches(X, y, batch_size=batch_size, shuffle=shuffle, rng=rng)
    steps = len(batches)
    history = History()
    names = ["loss"] + (["accuracy"] if counter else [])
    if validation_data is not None:
        names += ["val_" + k for k in names]
    history.params = dict(epochs=epochs, steps=steps, samples=len(X), batch_size=batch_size,
                          metrics=names + ["lr"], verbose=verbose, steps_done=0)
    history.params.update(_mpi_params(dist, len(X), batch_size))  # [mpi] world_size, rank, local_samples
    for cb in callbacks:
        cb._set_context(model, optimizer, history, history.params)
    modes = [(m, m.training) for m in model.modules()]
    weight = lambda n: _per_sample_weight(loss_fn, n) if n else 0.0  # noqa: E731  [mpi] n=0: a stand-in row
    if dist is not None:  # [mpi] rank 0's parameters everywhere; the plan's allreduce hook
        dist.begin(loss_fn, optimizer, step_plan, X, y, batch_size)
    step = 0
    epoch = 0
    finite = math.isfinite

    try:
        with _DeferredInterrupt() as interrupt:
            for cb in callbacks:
                cb.on_train_begin({})
            if verbose == 2:
                for cb in callbacks:
                    if isinstance(cb, ProgressBar):
                        cb._write(plan_note + "\n")
                        break
            for epoch in range(1, epochs + 1):
                model.train()
                lr_epoch = _lrs(optimizer)[0]
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                loss_sum = 0.0
                seen = correct = counted = 0
                stop = False
                if whole_epochs:
                    step, loss_sum, seen, stop = _plan_epoch(
                        step_plan, X, y, batches, rng, shuffle, batch_size, callbacks, interrupt, history,
                        optimizer, weight, epoch, epochs, steps, step)
                for b, (xb, yb) in enumerate(() if whole_epochs else batches):
                    interrupt.check(f"before step {step + 1} (epoch {epoch}, batch {b + 1}/{steps})")
                    if dist is not None:  # [mpi] this rank's share of the global batch
                        xb, yb, n_local = dist.shard(xb, yb)
                    if step_plan is not None:
                        # zero_grad, forward, loss, backward and step in one C call, which stops
                        # before the update on a non-finite loss or gradient
                        value = step_plan.step(xb, yb)
                        out = step_plan.output(len(xb)) if counter is not None else None
                        status = step_plan.last_status
                        if status in (_PLAN_NONFINITE_LOSS, _PLAN_NONFINITE_GRAD):
                            raise _divergence("the loss became non-finite" if status == _PLAN_NONFINITE_LOSS
                                              else "a gradient became non-finite", value, epoch, epochs,
                                              b + 1, steps, step + 1, optimizer)
                        diverged = status == _PLAN_NONFINITE_PARAM and not only_padding_nonfinite(optimizer)
                    else:
                        optimizer.zero_grad()
                        out = model(xb)
                        loss = loss_fn(out, yb)
                        value = float(loss)
                        if not finite(value):
                            if dist is not None:  # [mpi] the other ranks wait in this step's allreduce
                                dist.join_diverged(optimizer)
                            raise _divergence("the loss became non-finite", value, epoch, epochs, b + 1, steps,
                                              step + 1, optimizer)
                        if not hasattr(loss, "backward"):
                            raise TypeError(f"loss_fn: expected it to return a fastnn Tensor with backward(), "
                                            f"got {type(loss).__name__}")
                        loss.backward()
                        if dist is not None:  # [mpi] the global batch's gradient on every rank
                            dist.allreduce_grads(optimizer)
                        if not _optimizer_finite(optimizer, "grad"):
                            raise _divergence("a gradient became non-finite", value, epoch, epochs, b + 1, steps,
                                              step + 1, optimizer)
                        optimizer.step()
                        diverged = (not _optimizer_finite(optimizer, "data")
                                    and not only_padding_nonfinite(optimizer))
                    if diverged:
                        # Finite gradients times the lr overflowed. Rare (|lr·g| > ~3e38 in float32), and
                        # the one case where the parameters can no longer be the last finite ones.
                        raise _divergence("the update overflowed: the parameters are no longer finite",
                                          value, epoch, epochs, b + 1, steps, step + 1, optimizer,
                                          applied=True)
                    step += 1
                    history.params["steps_done"] = step
                    if scheduler is not None and scheduler_interval == "batch":
                        scheduler.step()
                    n = len(xb) if dist is None else n_local  # [mpi]
                    loss_sum += value * weight(n)
                    seen += n
                    if counter is not None and n:  # [mpi] n=0: a stand-in row
                        c = counter(out, yb)
                        if c is not None:
                            correct += c[0]
                            counted += c[1]
                    logs = {"loss": value, "size": n, "step": step, "epoch": epoch,
                            "epoch_loss": loss_sum / seen}
                    for cb in callbacks:
                        cb.on_batch_end(b, logs)
                    stop = any(cb.stop_training for cb in callbacks)
                    if stop:
                        break
                    interrupt.check(f"after step {step} (epoch {epoch}, batch {b + 1}/{steps})")
                if dist is not None:  # [mpi] global sums, once per epoch
                    loss_sum, seen, correct, counted = dist.reduce_sums([loss_sum, seen, correct, counted])
                logs = {"loss": loss_sum / seen}
                if counter is not None and counted:
                    logs["accuracy"] = correct / counted
                if validation_data is not None:
                    val = (_evaluate(model, loss_fn, X_val, y_val, max(batch_size, 256), counter) if dist is None
                           else dist.evaluate(_evaluate, model, loss_fn, X_val, y_val, max(batch_size, 256),
                                              counter))  # [mpi] a shard per rank, reduced
                    logs.update({"val_" + k: v for k, v in val.items()})
                logs["lr"] = lr_epoch
                history._record(epoch, logs)
                if scheduler is not None and scheduler_interval == "epoch":
                    if plateau:
                        scheduler.step(logs.get("val_loss", logs["loss"]))
                    else:
                        scheduler.step()
                for cb in callbacks:
                    cb.on_epoch_end(epoch, dict(logs))
                interrupt.check(f"after epoch {epoch} (step {step})")
                if stop or any(cb.stop_training for cb in callbacks):
                    break
            for cb in callbacks:
                cb.on_train_end({"epochs": len(history.epoch), "steps": step})
            interrupt.check("at the end of training")  # a Ctrl-C during on_train_end is not lost
    except (KeyboardInterrupt, DivergenceError) as exc:
        exc.history = history
        _end_live_line(callbacks)
        raise
    finally:
        _set_modes(modes)
        if dist is not None:  # [mpi] fit left by an exception: abort unless every rank left it too
            dist.end(sys.exc_info()[1])
    return history


def _end_live_line(callbacks) -> None:
    """Leave the terminal on a fresh line if a progress line was being updated."""
    for cb in callbacks:
        if isinstance(cb, ProgressBar) and getattr(cb, "live", False) and getattr(cb, "_width", 0):
            cb._write("\n")
            cb._width = 0
