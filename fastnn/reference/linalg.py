"""Matrix product and the dense layer in pure NumPy: the spec for ``fastnn.ops.linalg``."""
from __future__ import annotations

import numpy as np

from . import activations as _act

ACTIVATIONS = (None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh")


def _float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def _dtype(*arrays):
    return np.float64 if any(a is not None and np.asarray(a).dtype == np.float64 for a in arrays) else np.float32


def matmul(a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
    """out = alpha·op(a)·op(b) + beta·out (out's old contents are ignored when beta == 0)."""
    dt = _dtype(a, b)
    a = np.asarray(a).astype(dt, copy=False)
    b = np.asarray(b).astype(dt, copy=False)
    if a.ndim != 2:
        raise ValueError(f"a: expected a 2-D array, got shape {a.shape}")
    if b.ndim != 2:
        raise ValueError(f"b: expected a 2-D array, got shape {b.shape}")
    if beta != 0 and out is None:
        raise ValueError("out: beta != 0 requires out")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    prod = (opa @ opb) if opa.shape[1] else np.zeros((opa.shape[0], opb.shape[1]), dt)
    value = dt(alpha) * prod
    if beta != 0:
        value = value + dt(beta) * out
    if out is None:
        return value.astype(dt, copy=False)
    out[...] = value
    return out


def _activate(z, activation, negative_slope):
    if activation is None:
        return z
    if activation == "leaky_relu":
        return _act.leaky_relu(z, negative_slope)
    if activation in ("gelu", "gelu_tanh"):
        return _act.gelu(z, approximate="tanh" if activation == "gelu_tanh" else "none")
    return getattr(_act, activation)(z)


def linear(x, weight, bias=None, activation=None, negative_slope=0.01, out=None, preact_out=None):
    """y = act(x·weightᵀ + bias). x (batch, in), weight (out, in), bias (out,).
    preact_out, if given, receives z = x·weightᵀ + bias."""
    dt = _dtype(x, weight, bias)
    x = np.asarray(x).astype(dt, copy=False)
    weight = np.asarray(weight).astype(dt, copy=False)
    z = x @ weight.T if x.shape[1] else np.zeros((x.shape[0], weight.shape[0]), dt)
    if bias is not None:
        z = z + np.asarray(bias).astype(dt, copy=False)
    z = z.astype(dt, copy=False)
    if preact_out is not None:
        preact_out[...] = z
    y = np.asarray(_activate(z, activation, negative_slope), dtype=dt)
    if out is None:
        return y
    out[...] = y
    return out


def _activation_grad(grad_out, saved, activation, negative_slope):
    """dZ = grad_out ⊙ act'(z), from the saved forward output y (relu, leaky_relu, sigmoid,
    tanh) or pre-activation z (gelu, gelu_tanh)."""
    if activation is None:
        return grad_out
    if activation == "relu":
        return _act.relu_backward(grad_out, saved)  # y > 0 exactly where z > 0
    if activation == "leaky_relu":
        return _act.leaky_relu_backward(grad_out, saved, negative_slope)  # same, for slope >= 0
    if activation == "sigmoid":
        return _act.sigmoid_backward(grad_out, saved)
    if activation == "tanh":
        return _act.tanh_backward(grad_out, saved)
    return _act.gelu_backward(grad_out, saved, approximate="tanh" if activation == "gelu_tanh" else "none")


def linear_backward(grad_out, x, weight, grad_weight=None, grad_bias=None, need_grad_input=True,
                    activation=None, saved=None, negative_slope=0.01):
    """Backward of y = act(x·weightᵀ + b): dZ = grad_out ⊙ act'(saved);
    returns dZ·weight (or None), grad_weight += dZᵀ·x, grad_bias += Σ_rows dZ."""
    dt = _dtype(grad_out, x, weight)
    grad_out = np.asarray(grad_out).astype(dt, copy=False)
    x = np.asarray(x).astype(dt, copy=False)
    weight = np.asarray(weight).astype(dt, copy=False)
    if activation is not None:
        if saved is None:
            raise ValueError("saved: required when an activation is given")
        saved = np.asarray(saved).astype(dt, copy=False)
    dz = np.asarray(_activation_grad(grad_out, saved, activation, negative_slope), dtype=dt)
    if grad_weight is not None:
        grad_weight += dz.T @ x
    if grad_bias is not None:
        grad_bias += dz.sum(axis=0, dtype=np.float64).astype(dt)
    if not need_grad_input:
        return None
    return (dz @ weight).astype(dt, copy=False)


__all__ = ["matmul", "linear", "linear_backward"]
