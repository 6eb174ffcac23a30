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

from .. import _core, _enums
from .._checks import (as_float, check_labels, check_logits, check_loss_pair, check_out, check_reduction,
                       check_label_smoothing, label_error)


# LossStatus.OK as a plain int, read from the core on first use (an IntEnum member lookup per
# call costs more than a tiny loss's other Python).
_STATUS_OK = None


def _status_ok() -> int:
    global _STATUS_OK
    _STATUS_OK = int(_enums.LossStatus.OK)
    return _STATUS_OK


def _index(flat: int, shape) -> object:
    idx = tuple(int(i) for i in np.unravel_index(flat, shape))
    return idx[0] if len(idx) == 1 else idx


def _run(fn, input, target, reduction, grad) -> float:
    red = _enums.REDUCTION_CODES[check_reduction(reduction)]
    x, y = check_loss_pair(input, target, grad)
    status, bad, loss = fn(x, y, grad, red)  # grad's overlap with x and y: checked by the wrapper
    if status != (_STATUS_OK if _STATUS_OK is not None else _status_ok()):
        _raise_out_of_range(status, bad, x, y)
    return float(loss)


def _raise_out_of_range(status, bad, x, y):
    """The kernel stops at the first element out of range (input checked before target)."""
    if status == _enums.LossStatus.BAD_INPUT:
        raise ValueError(f"input: expected probabilities in [0, 1], got {float(x.flat[bad])} "
                         f"at index {_index(bad, x.shape)}")
    raise ValueError(f"target: expected values in [0, 1], got {float(y.flat[bad])} "
                         f"at index {_index(bad, y.shape)}")


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


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, grad=None) -> float:
    """Softmax cross-entropy of logits input (N, C) with integer labels target (N,).

    loss_i = (1−ε)(−log p[i, y_i]) + ε·mean_c(−log p[i, c]), p = softmax (log-sum-exp);
    'mean' averages over N. grad = (softmax − ((1−ε)·onehot + ε/C)) / N.
    Labels may be any integer dtype (floats only if integral); a label outside
    [0, C) raises IndexError before it is used.
    """
    red = _enums.REDUCTION_CODES[check_reduction(reduction)]
    eps = check_label_smoothing(label_smoothing)
    x = as_float(input, "input")
    rows, classes = check_logits(x)
    labels = check_labels(target, rows, classes, check_range=False)  # C range-checks int64 labels
    if grad is not None:
        check_out(grad, "grad", x.shape, x.dtype)
    status, bad, loss = _core.cross_entropy_fused(x, labels, grad, red, eps)
    if status != (_STATUS_OK if _STATUS_OK is not None else _status_ok()):
        raise label_error(int(labels[bad]), bad, classes)
    return float(loss)


def _labels(target, rows: int, classes: int):
    """fastnn.train's label check (kept for it; new code calls fastnn._checks.check_labels)."""
    return check_labels(target, rows, classes, check_range=False)


_label_error = label_error

__all__ = ["mse_loss", "l1_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy"]
