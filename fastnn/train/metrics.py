"""Accuracy for the classification losses: counted in Python for the eager loop, described to
the compiled plan (which counts it in C) otherwise. Both count the same things:
CrossEntropyLoss with class-index targets: argmax of the output == label (per row);
BCELoss: (output > 0.5) == (target > 0.5); BCEWithLogitsLoss: (output > 0) == (target > 0.5)
(per element)."""
from __future__ import annotations

import numpy as np

from ..nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss

__all__ = ["accuracy_counter", "plan_metric"]


def accuracy_counter(loss_fn, metrics):
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


def plan_metric(loss_fn, counter):
    """(kind, threshold) of the plan's C metric for ``accuracy_counter``'s result (kind 'none'
    without one)."""
    if counter is None:
        return "none", 0.0
    if isinstance(loss_fn, CrossEntropyLoss):
        return "argmax", 0.0
    return "threshold", 0.5 if isinstance(loss_fn, BCELoss) else 0.0
