"""Loss functions, value and gradient in one fused pass (C kernels; same
signatures and semantics as ``fastnn.reference.losses``).

Each function returns the loss as a Python float. When ``grad`` is given (an
array of the input's shape and dtype, C-contiguous, writable, not overlapping
input or target) it is overwritten, in the same pass over memory, with
d(loss)/d(input) for that reduction. ``reduction`` is 'mean' or 'sum'
('none' is not supported). Semantics follow PyTorch (see semantics.md).

The loss is accumulated in double in fixed blocks, so it is bitwise identical
for any thread count. NaN in the inputs propagates to the loss. When an error
is raised after the kernel ran (a value out of range), ``grad`` holds
unspecified values.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from ._validate import as_float, check_logits, check_no_overlap, check_out, check_scalar

_REDUCTION_CODES = {"mean": 0, "sum": 1}
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _reduction(reduction) -> int:
    if not isinstance(reduction, str) or reduction not in _REDUCTION_CODES:
        hint = " (reduction='none' is not supported: losses are reduced in C)" if reduction == "none" else ""
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}{hint}")
    return _REDUCTION_CODES[reduction]


def _index(flat: int, shape) -> object:
    idx = tuple(int(i) for i in np.unravel_index(flat, shape))
    return idx[0] if len(idx) == 1 else idx


def _pair(input, target, grad):
    """input and target as same-shape, same-dtype contiguous float arrays; grad checked."""
    x = as_float(input, "input")
    if x.size == 0:
        raise ValueError(f"input: empty batch (shape {x.shape})")
    y = as_float(target, "target", dtype=x.dtype)
    if y.shape != x.shape:
        raise ValueError(f"target: expected shape {x.shape} to match input, got {y.shape}")
    if grad is not None:
        check_out(grad, "grad", x.shape, x.dtype)
        check_no_overlap(grad, "grad", ("input", x), ("target", y))
    return x, y


def _same(a, like) -> bool:
    """An ndarray of like's dtype and shape."""
    return isinstance(a, np.ndarray) and a.dtype is like.dtype and a.shape == like.shape


def _pair_fast(input, target, grad) -> bool:
    """True for the usual call: aligned float arrays of one dtype and shape (C never sees
    unaligned memory, not even to reject it), grad clear of both. The compiled wrapper checks
    the rest (non-empty, contiguous, grad writable) and raises before running; then _pair
    converts or explains."""
    return (isinstance(input, np.ndarray) and (input.dtype is _F32 or input.dtype is _F64)
            and _same(target, input) and input.flags.aligned and target.flags.aligned
            and (grad is None or (type(grad) is np.ndarray and _same(grad, input) and grad.flags.aligned
                                  and _core.spans_disjoint((grad,), (input, target)))))


def _run(fn, input, target, reduction, grad) -> float:
    red = _reduction(reduction)
    result = None
    if _pair_fast(input, target, grad):
        x, y = input, target
        try:
            result = fn(x, y, grad, red)
        except (ValueError, TypeError):
            pass
    if result is None:
        x, y = _pair(input, target, grad)
        result = fn(x, y, grad, red)
    status, bad, loss = result
    # The kernel stops at the first element out of range (input checked before target).
    if status == 1:
        raise ValueError(f"input: expected probabilities in [0, 1], got {float(x.flat[bad])} "
                         f"at index {_index(bad, x.shape)}")
    if status == 2:
        raise ValueError(f"target: expected values in [0, 1], got {float(y.flat[bad])} "
                         f"at index {_index(bad, y.shape)}")
    return float(loss)


def mse_loss(input, target, reduction="mean", grad=None) -> float:
    """mean((input − target)²) over every element; grad 2(input − target)/N."""
    return _run(_core.mse_loss_fused, input, target, reduction, grad)


def l1_loss(input, target, reduction="mean", grad=None) -> float:
    """mean(|input − target|); grad sign(input − target)/N (0 where equal)."""
    return _run(_core.l1_loss_fused, input, target, reduction, grad)


def bce_loss(input, target, reduction="mean", grad=None) -> float:
    """−mean(y·log x + (1−y)·log(1−x)), each log clamped at −100 (PyTorch's BCELoss).

    input: probabilities in [0, 1]; target in [0, 1] (ValueError otherwise).
    grad = (x − y) / max((1 − x)·x, 1e-12) / N.
    """
    return _run(_core.bce_loss_fused, input, target, reduction, grad)


def bce_with_logits_loss(input, target, reduction="mean", grad=None) -> float:
    """mean(max(x,0) − x·y + log1p(exp(−|x|))) on logits x; target in [0, 1].

    grad = (sigmoid(x) − y) / N.
    """
    return _run(_core.bce_logits_loss_fused, input, target, reduction, grad)


def _label_error(value, index: int, classes: int) -> IndexError:
    return IndexError(f"target: label {value!r} at index {index} is out of range for {classes} classes "
                      f"(expected 0 <= label < {classes})")


def _labels(target, rows: int, classes: int) -> np.ndarray:
    """Integer class labels (rows,) as contiguous int64 (range checked in C, except
    for values that int64 cannot hold)."""
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    kind = t.dtype.kind
    if kind == "b" or kind not in "iuf":
        raise TypeError(f"target: expected integer class labels, got dtype {t.dtype}")
    if t.shape != (rows,):
        raise ValueError(f"target: expected shape ({rows},) to match input's batch, got {t.shape}")
    if kind == "f":
        ok = np.isfinite(t) & (t == np.floor(t))
        if not ok.all():
            bad = int(np.argmin(ok))
            raise TypeError(f"target: expected integer class labels, got {float(t[bad])} at index {bad}")
        out = (t < 0) | (t >= classes)
        if out.any():
            bad = int(np.argmax(out))
            raise _label_error(float(t[bad]), bad, classes)
    elif kind == "u" and t.dtype.itemsize == 8:
        too_big = t > np.iinfo(np.int64).max
        if too_big.any():
            bad = int(np.argmax(too_big))
            raise _label_error(int(t[bad]), bad, classes)
    return np.ascontiguousarray(t, dtype=np.int64)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, grad=None) -> float:
    """Softmax cross-entropy of logits input (N, C) with integer labels target (N,).

    loss_i = (1−ε)(−log p[i, y_i]) + ε·mean_c(−log p[i, c]), p = softmax (log-sum-exp);
    'mean' averages over N. grad = (softmax − ((1−ε)·onehot + ε/C)) / N.
    Labels may be any integer dtype (floats only if integral); a label outside
    [0, C) raises IndexError before it is used.
    """
    red = _reduction(reduction)
    if type(label_smoothing) is float and 0.0 <= label_smoothing <= 1.0:
        eps = label_smoothing  # the usual case, without the generic number checks
    else:
        eps = check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    x = as_float(input, "input")
    rows, classes = check_logits(x)
    if type(target) is np.ndarray and target.dtype == np.int64 and target.shape == (rows,) \
            and target.flags.c_contiguous and target.flags.aligned:
        labels = target  # what _labels returns for them, without its conversions
    else:
        labels = _labels(target, rows, classes)
    if grad is not None and not (type(grad) is np.ndarray and _same(grad, x) and grad.flags.c_contiguous
                                 and grad.flags.aligned and grad.flags.writeable
                                 and _core.spans_disjoint((grad,), (x, labels))):
        check_out(grad, "grad", x.shape, x.dtype)
        check_no_overlap(grad, "grad", ("input", x), ("target", labels))
    status, bad, loss = _core.cross_entropy_fused(x, labels, grad, red, eps)
    if status != 0:
        raise _label_error(int(labels[bad]), bad, classes)
    return float(loss)


__all__ = ["mse_loss", "l1_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy"]
