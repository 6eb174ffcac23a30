"""Loss functions in pure NumPy: the spec for ``fastnn.ops.losses``.

Same signatures, semantics and errors as the C-backed versions: each returns
the loss as a Python float and, when ``grad`` is given, overwrites it with
d(loss)/d(input). Everything is computed in float64 (the gradient is rounded
once to the input's dtype at the end); formulas follow PyTorch.
"""
from __future__ import annotations


import numpy as np

from .._checks import (as_float, check_labels, check_logits, check_loss_pair, check_no_overlap, check_reduction,
                       check_out, check_scalar)

def _pair(input, target, reduction, grad):
    reduction = check_reduction(reduction)
    x, y = check_loss_pair(input, target, grad)
    check_no_overlap([("grad", grad)], [("input", x), ("target", y)])
    return x, y, reduction


def _check_unit_range(x: np.ndarray, x_what, y: np.ndarray) -> None:
    """Raise for the first element (in C order) where x (when x_what names it) or y is
    outside [0, 1]; at the same index the input is reported first. NaN is not out of
    range: it propagates."""
    bad_x = ((x < 0) | (x > 1)).ravel() if x_what else np.zeros(x.size, bool)
    bad_y = ((y < 0) | (y > 1)).ravel()
    either = bad_x | bad_y
    if not either.any():
        return
    flat = int(np.argmax(either))
    idx = tuple(int(i) for i in np.unravel_index(flat, x.shape))
    where = idx[0] if len(idx) == 1 else idx
    if bad_x[flat]:
        raise ValueError(f"input: expected {x_what} in [0, 1], got {float(x.flat[flat])} at index {where}")
    raise ValueError(f"target: expected values in [0, 1], got {float(y.flat[flat])} at index {where}")


def _reduce(terms: np.ndarray, grad_terms: np.ndarray, reduction: str, count: int, grad) -> float:
    """Loss from float64 per-element terms; grad from the float64 derivative of each term."""
    scale = 1.0 / count if reduction == "mean" else 1.0
    if grad is not None:
        grad[...] = grad_terms * scale
    total = float(np.sum(terms))
    return total / count if reduction == "mean" else total


def mse_loss(input, target, reduction="mean", grad=None) -> float:
    """mean((x − y)²); grad 2(x − y)/N."""
    x, y, reduction = _pair(input, target, reduction, grad)
    d = x.astype(np.float64) - y.astype(np.float64)
    return _reduce(d * d, 2 * d, reduction, d.size, grad)


def l1_loss(input, target, reduction="mean", grad=None) -> float:
    """mean(|x − y|); grad sign(x − y)/N, 0 where x = y."""
    x, y, reduction = _pair(input, target, reduction, grad)
    d = x.astype(np.float64) - y.astype(np.float64)
    return _reduce(np.abs(d), np.sign(d), reduction, d.size, grad)


def bce_loss(input, target, reduction="mean", grad=None) -> float:
    """−mean(y·log x + (1−y)·log(1−x)), each log clamped at ≥ −100;
    grad (x − y)/max((1 − x)x, 1e-12)/N (PyTorch's binary_cross_entropy_backward)."""
    x, y, reduction = _pair(input, target, reduction, grad)
    _check_unit_range(x, "probabilities", y)
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(x), -100.0)
        log_1mx = np.maximum(np.log1p(-x), -100.0)
    # np.maximum propagates NaN, like the clamp in PyTorch.
    terms = -(y * log_x + (1 - y) * log_1mx)
    grad_terms = (x - y) / np.maximum((1 - x) * x, 1e-12)
    return _reduce(terms, grad_terms, reduction, x.size, grad)


def bce_with_logits_loss(input, target, reduction="mean", grad=None) -> float:
    """mean(max(x, 0) − x·y + log1p(exp(−|x|))); grad (sigmoid(x) − y)/N."""
    x, y, reduction = _pair(input, target, reduction, grad)
    _check_unit_range(x, None, y)
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    e = np.exp(-np.abs(x))
    terms = np.maximum(x, 0) - x * y + np.log1p(e)
    # sigmoid(x) − y from q = sigmoid(−|x|): (1 − y) − q for x >= 0, q − y otherwise, so
    # that x >> 0 does not lose the small gradient to 1/(1+e) − 1 cancelling.
    q = e / (1 + e)
    return _reduce(terms, np.where(x >= 0, (1 - y) - q, q - y), reduction, x.size, grad)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, grad=None) -> float:
    """Softmax cross-entropy of logits (N, C) with integer labels (N,).

    loss_i = (1−ε)(−log p[i, y_i]) + ε·mean_c(−log p[i, c]); 'mean' averages over N;
    grad = (softmax − ((1−ε)·onehot + ε/C)) / N.
    """
    reduction = check_reduction(reduction)
    eps = check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    x = as_float(input, "input")
    rows, classes = check_logits(x)
    labels = check_labels(target, rows, classes)
    if grad is not None:
        check_out(grad, "grad", x.shape, x.dtype)
    check_no_overlap([("grad", grad)], [("input", x), ("target", labels)])
    z = x.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    se = e.sum(axis=1, keepdims=True)
    lse = m + np.log(se)
    neg_logp = lse - z                                   # −log p, (N, C)
    nll = neg_logp[np.arange(rows), labels]
    terms = nll if eps == 0 else (1 - eps) * nll + eps * neg_logp.mean(axis=1)
    onehot = np.zeros_like(z)
    onehot[np.arange(rows), labels] = 1.0
    # softmax as e/Σe (not exp(−neg_logp)): lse's rounding would be amplified by exp.
    grad_terms = e / se - ((1 - eps) * onehot + eps / classes)
    return _reduce(terms, grad_terms, reduction, rows, grad)


__all__ = ["mse_loss", "l1_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy"]
