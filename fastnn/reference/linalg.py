"""Matrix product and the dense layer in pure NumPy: the spec for ``fastnn.ops.linalg``."""
from __future__ import annotations

import numpy as np

from .._checks import ACTIVATIONS, check_linear, check_linear_backward, check_matmul  # noqa: F401
from . import activations as _act


def matmul(a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
    """out = alpha·op(a)·op(b) + beta·out (out's old contents are ignored when beta == 0)."""
    a, b, shape, out, alpha, beta = check_matmul(a, b, trans_a, trans_b, out, alpha, beta)
    dt = a.dtype.type
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    prod = (opa @ opb) if opa.shape[1] else np.zeros(shape, dt)
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
    x, weight, bias, activation, negative_slope, shape = check_linear(x, weight, bias, activation,
                                                                      negative_slope, out, preact_out)
    dt = x.dtype
    z = x @ weight.T if x.shape[1] else np.zeros(shape, dt)
    if bias is not None:
        z = z + bias
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
    grad_out, x, weight, saved, activation, negative_slope = check_linear_backward(
        grad_out, x, weight, grad_weight, grad_bias, activation, saved, negative_slope)
    dt = x.dtype
    dz = np.asarray(_activation_grad(grad_out, saved, activation, negative_slope), dtype=dt)
    if grad_weight is not None:
        grad_weight += dz.T @ x
    if grad_bias is not None:
        grad_bias += dz.sum(axis=0, dtype=np.float64).astype(dt)
    if not need_grad_input:
        return None
    return (dz @ weight).astype(dt, copy=False)


__all__ = ["matmul", "linear", "linear_backward"]
