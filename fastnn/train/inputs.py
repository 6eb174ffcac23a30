"""fit's and evaluate's inputs: arrays checked once and converted to the model's dtype, and the
small facts about the loss, optimizer and scheduler the loop needs."""
from __future__ import annotations

import inspect
from typing import List

import numpy as np

from .. import _core, _native
from ..nn.loss import CrossEntropyLoss
from ..nn.module import Module

__all__ = ["prepare", "model_dtype", "per_sample_weight", "lrs", "wants_metric", "set_modes"]


def _numeric(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected a numeric array, could not convert ({e})") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name}: expected an array of samples, got a scalar")
    if arr.dtype.kind == "f" and not _all_finite(arr):
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
        raise ValueError(f"{name}: contains NaN or infinity (first in sample {bad})")
    return arr


# One C pass, no temporary (np.isfinite(arr).all() costs ~1.5 us even on 4 numbers; fit checks X and y per call).
_all_finite = ((lambda a: _core.all_finite(a) if a.dtype in _C_FLOATS and a.flags.c_contiguous
                else bool(np.isfinite(a).all())) if _native.available() else (lambda a: bool(np.isfinite(a).all())))
_C_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def model_dtype(model: Module):
    todo = [model]  # modules in named_modules' (pre)order, stopping at the first parameter
    while todo:
        m = todo.pop()
        for p in m._parameters.values():
            if p is not None:
                return p.dtype
        todo.extend(reversed(m._modules.values()))
    return None


def prepare(X, y, loss_fn, model, names=("X", "y")):
    """Checked arrays, X (and float targets) in the model's dtype so batches are not converted each step."""
    X, y = _numeric(X, names[0]), _numeric(y, names[1])
    if len(X) == 0:
        raise ValueError(f"{names[0]}: expected at least one sample, got an empty array")
    if len(y) != len(X):
        raise ValueError(f"{names[1]}: expected {len(X)} samples to match {names[0]}, got {len(y)}")
    dtype = model_dtype(model)
    if dtype is not None and X.dtype != dtype:
        X = X.astype(dtype)
    if isinstance(loss_fn, CrossEntropyLoss):
        if y.dtype.kind in "iu" and y.dtype != np.int64:
            y = y.astype(np.int64)
    elif dtype is not None and y.dtype != dtype:
        y = y.astype(dtype)
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def per_sample_weight(loss_fn, n: int) -> float:
    """Multiplier turning a batch loss into a sum over its samples (mean vs sum reduction)."""
    return 1.0 if getattr(loss_fn, "reduction", "mean") == "sum" else float(n)


def lrs(optimizer) -> List[float]:
    return [float(g["lr"]) for g in optimizer.param_groups]


def wants_metric(scheduler) -> bool:
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


def set_modes(modes) -> None:
    for m, training in modes:
        object.__setattr__(m, "training", training)
