"""ProgressBar: the progress output ``fit`` adds when ``verbose`` is 1 or 2."""
from __future__ import annotations

import math
import sys
import time
from typing import Optional

import numpy as np

from .callbacks import Callback

__all__ = ["ProgressBar", "end_live_line"]


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


def end_live_line(callbacks) -> None:
    """Leave the terminal on a fresh line if a progress line was being updated."""
    for cb in callbacks:
        if isinstance(cb, ProgressBar) and getattr(cb, "live", False) and getattr(cb, "_width", 0):
            cb._write("\n")
            cb._width = 0
