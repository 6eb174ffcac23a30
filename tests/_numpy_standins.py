"""TEMPORARY NumPy stand-ins for kernels that are being written elsewhere — delete when they land.

The GEMM behind ``Linear``, the loss kernels, ``sgd_step`` and ``all_finite``
are not in this branch yet. The ``numpy_standins`` fixture installs plain NumPy
versions of them into ``fastnn.ops`` and ``fastnn.reference`` for the duration
of a test, following the agreed signatures, and ONLY for names those modules do
not define yet: once a real kernel exists it is used and its stand-in here is
dead code. Library code never imports this file; the stand-ins are not a spec
(``fastnn.reference`` is) and are written for brevity, not validation.

Use: ``from _numpy_standins import numpy_standins`` in a test module plus
``pytestmark = pytest.mark.usefixtures("numpy_standins")``; outside pytest,
``install()`` / ``uninstall()``.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastnn


def linear(x, weight, bias=None):
    y = np.asarray(x) @ np.asarray(weight).T
    if bias is not None:
        y = y + bias
    return np.ascontiguousarray(y, dtype=np.asarray(weight).dtype)


def linear_backward(grad_out, x, weight, grad_weight=None, grad_bias=None, need_grad_input=True):
    if grad_weight is not None:
        grad_weight += (grad_out.T @ x).astype(grad_weight.dtype)
    if grad_bias is not None:
        grad_bias += grad_out.sum(axis=0, dtype=np.float64).astype(grad_bias.dtype)
    return np.ascontiguousarray(grad_out @ weight) if need_grad_input else None


def _target(target, x):
    t = np.asarray(target, dtype=np.float64)
    return t.reshape(x.shape) if t.shape != x.shape and t.size == x.size else t


def _finish(per_elem, dper, x, reduction, grad, count):
    scale = 1.0 / count if reduction == "mean" else 1.0
    if grad is not None:
        grad[...] = dper * scale
    return float(per_elem.sum() * scale)


def mse_loss(input, target, reduction="mean", grad=None):
    x = np.asarray(input, dtype=np.float64)
    d = x - _target(target, x)
    return _finish(d * d, 2.0 * d, x, reduction, grad, x.size)


def l1_loss(input, target, reduction="mean", grad=None):
    x = np.asarray(input, dtype=np.float64)
    d = x - _target(target, x)
    return _finish(np.abs(d), np.sign(d), x, reduction, grad, x.size)


def bce_loss(input, target, reduction="mean", grad=None):
    x = np.asarray(input, dtype=np.float64)
    t = _target(target, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = -(t * np.maximum(np.log(x), -100.0) + (1 - t) * np.maximum(np.log1p(-x), -100.0))
        dper = (x - t) / np.maximum(x * (1 - x), 1e-12)
    return _finish(per, dper, x, reduction, grad, x.size)


def bce_with_logits_loss(input, target, reduction="mean", grad=None):
    x = np.asarray(input, dtype=np.float64)
    t = _target(target, x)
    per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return _finish(per, 1.0 / (1.0 + np.exp(-x)) - t, x, reduction, grad, x.size)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, grad=None):
    x = np.asarray(input, dtype=np.float64)
    labels = np.asarray(target).astype(np.int64)
    n, c = x.shape
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    q = np.full_like(x, label_smoothing / c)
    q[np.arange(n), labels] += 1.0 - label_smoothing
    per = -(q * logp).sum(axis=1)
    return _finish(per, np.exp(logp) - q, x, reduction, grad, n)


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum, dampening, weight_decay,
             nesterov, maximize, first_step):
    g = -grad if maximize else grad.copy()
    if weight_decay != 0:
        g = g + param.dtype.type(weight_decay) * param
    if momentum != 0:
        if first_step:
            momentum_buffer[...] = g
        else:
            momentum_buffer *= param.dtype.type(momentum)
            momentum_buffer += param.dtype.type(1 - dampening) * g
        g = g + param.dtype.type(momentum) * momentum_buffer if nesterov else momentum_buffer
    param -= param.dtype.type(lr) * g


def all_finite(x):
    return bool(np.isfinite(x).all())


STANDINS = {f.__name__: f for f in (linear, linear_backward, mse_loss, l1_loss, bce_loss,
                                   bce_with_logits_loss, cross_entropy, sgd_step, all_finite)}
_installed = []


def install():
    """Add each missing op to fastnn.ops and fastnn.reference; returns what was added."""
    for module in (fastnn.ops, fastnn.reference):
        for name, fn in STANDINS.items():
            if not hasattr(module, name):
                setattr(module, name, fn)
                _installed.append((module, name))
    return list(_installed)


def uninstall():
    while _installed:
        module, name = _installed.pop()
        delattr(module, name)


@pytest.fixture
def numpy_standins(monkeypatch):
    for module in (fastnn.ops, fastnn.reference):
        for name, fn in STANDINS.items():
            if not hasattr(module, name):
                monkeypatch.setattr(module, name, fn, raising=False)
    yield
