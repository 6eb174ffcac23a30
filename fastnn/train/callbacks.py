"""Callbacks: hooks into ``fit`` (the base class and EarlyStopping)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Callback", "EarlyStopping", "needs_python_between_epochs", "needs_python_between_steps"]


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


def _overrides(cb, name: str) -> bool:
    return getattr(type(cb), name) is not getattr(Callback, name)


def needs_python_between_steps(cb) -> bool:
    """A callback whose on_batch_end does something (the progress bar's is fed from C runs)."""
    from .progress import ProgressBar
    return type(cb).on_batch_end not in (Callback.on_batch_end, ProgressBar.on_batch_end)


def needs_python_between_epochs(cb) -> bool:
    """A callback with epoch or batch hooks: epochs then run one C call at a time."""
    return any(_overrides(cb, n) for n in ("on_epoch_begin", "on_epoch_end", "on_batch_end"))
