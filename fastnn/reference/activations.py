"""Activations in pure NumPy: the spec for ``fastnn.ops.activations``."""
from __future__ import annotations

import math

import numpy as np

from .._checks import as_float, check_choice, check_no_overlap, check_out, check_scalar

_erf = np.frompyfunc(math.erf, 1, 1)


def _erf_array(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erf(x), dtype=x.dtype) if x.size else x.copy()


def _finish(value: np.ndarray, like: np.ndarray, out):
    value = np.asarray(value, dtype=like.dtype)
    if out is None:
        return value
    out[...] = value
    return out


def _input(x, out, name="x"):
    """The forward's input as fastnn.ops takes it, and its ``out`` checked as ops checks it."""
    x = as_float(x, name)
    if out is not None:
        check_out(out, "out", x.shape, x.dtype)
        check_no_overlap([("out", out)], [(name, x)], may_alias=(name,))
    return x


def _grads(grad_out, saved, saved_name, out):
    grad_out = as_float(grad_out, "grad_out")
    saved = as_float(saved, saved_name, dtype=grad_out.dtype)
    if saved.shape != grad_out.shape:
        raise ValueError(f"{saved_name}: expected shape {grad_out.shape} (as grad_out), got {saved.shape}")
    if out is not None:
        check_out(out, "out", grad_out.shape, grad_out.dtype)
        check_no_overlap([("out", out)], [("grad_out", grad_out), (saved_name, saved)],
                         may_alias=("grad_out", saved_name))
    return grad_out, saved


def _rows(x):
    if x.ndim == 0:
        raise ValueError("x: softmax needs at least a 1-D array, got a scalar")
    if x.shape[-1] == 0:
        raise ValueError(f"x: softmax over an empty last axis, shape {x.shape}")


def relu(x, out=None):
    x = _input(x, out)
    return _finish(np.maximum(x, 0), x, out)


def relu_backward(grad_out, x, out=None):
    grad_out, x = _grads(grad_out, x, "x", out)
    return _finish(np.where(x > 0, grad_out, 0), grad_out, out)


def leaky_relu(x, negative_slope=0.01, out=None):
    negative_slope = check_scalar(negative_slope, "negative_slope")
    x = _input(x, out)
    return _finish(np.where(x > 0, x, x * x.dtype.type(negative_slope)), x, out)


def leaky_relu_backward(grad_out, x, negative_slope=0.01, out=None):
    negative_slope = check_scalar(negative_slope, "negative_slope")
    grad_out, x = _grads(grad_out, x, "x", out)
    slope = grad_out.dtype.type(negative_slope)
    return _finish(np.where(x > 0, grad_out, grad_out * slope), grad_out, out)


def sigmoid(x, out=None):
    x = _input(x, out)
    # exp of a non-positive number only: no overflow for large |x|.
    e = np.exp(-np.abs(x))
    return _finish(np.where(x >= 0, 1 / (1 + e), e / (1 + e)), x, out)


def sigmoid_backward(grad_out, y, out=None):
    grad_out, y = _grads(grad_out, y, "y", out)
    return _finish(grad_out * y * (1 - y), grad_out, out)


def tanh(x, out=None):
    x = _input(x, out)
    return _finish(np.tanh(x), x, out)


def tanh_backward(grad_out, y, out=None):
    grad_out, y = _grads(grad_out, y, "y", out)
    return _finish(grad_out * (1 - y * y), grad_out, out)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def gelu(x, approximate="none", out=None):
    check_choice(approximate, "approximate", ("none", "tanh"))
    x = _input(x, out)
    if approximate == "tanh":
        # 0.5x(1 + tanh u) written as x·sigmoid(2u): same value, no cancellation for x << 0.
        value = x * sigmoid(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3))
    else:
        value = 0.5 * x * (1 + _erf_array(x / math.sqrt(2)))
    return _finish(value, x, out)


def gelu_backward(grad_out, x, approximate="none", out=None):
    check_choice(approximate, "approximate", ("none", "tanh"))
    grad_out, x = _grads(grad_out, x, "x", out)
    if approximate == "tanh":
        s = sigmoid(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3))
        d = s + 2 * x * s * (1 - s) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
    else:
        cdf = 0.5 * (1 + _erf_array(x / math.sqrt(2)))
        d = cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return _finish(grad_out * d, grad_out, out)


def softmax(x, out=None):
    x = _input(x, out)
    _rows(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return _finish(e / e.sum(axis=-1, keepdims=True), x, out)


def softmax_backward(grad_out, y, out=None):
    grad_out, y = _grads(grad_out, y, "y", out)
    _rows(y)
    return _finish(y * (grad_out - (grad_out * y).sum(axis=-1, keepdims=True)), grad_out, out)


__all__ = [
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "gelu", "gelu_backward", "softmax", "softmax_backward",
]
