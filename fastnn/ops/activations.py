"""Activations, forward and backward (C kernels; same signatures as
``fastnn.reference.activations``).

Inputs of any shape; outputs have the input's shape and float dtype. ``out``
may be given (same shape and dtype, C-contiguous) and may alias the input.
Backward functions take the gradient w.r.t. the output and return the
gradient w.r.t. the input; sigmoid, tanh and softmax differentiate from their
saved output ``y``, the others from their input ``x``.
"""
from __future__ import annotations

import numpy as np

from .. import _core, _enums
from .._checks import as_float, check_choice, check_no_overlap, check_out, check_scalar, out_or_new


def _gelu_code(approximate: str) -> int:
    check_choice(approximate, "approximate", ("none", "tanh"))
    return _enums.ACTIVATION_CODES["gelu_tanh" if approximate == "tanh" else "gelu"]


def _code(name: str) -> int:
    return _enums.ACTIVATION_CODES[name]


def _forward(x, code: int, param: float, out):
    x = as_float(x, "x")
    if out is None:
        out = np.empty(x.shape, x.dtype)  # new memory: nothing to alias
    else:
        check_out(out, "out", x.shape, x.dtype)
        check_no_overlap([("out", out)], [("x", x)], may_alias=("x",))
    _core.act_forward(out, x, code, param)
    return out


def _backward(grad_out, saved, saved_name: str, code: int, param: float, out):
    grad_out = as_float(grad_out, "grad_out")
    saved = as_float(saved, saved_name, dtype=grad_out.dtype)
    if saved.shape != grad_out.shape:
        raise ValueError(f"{saved_name}: expected shape {grad_out.shape} (as grad_out), got {saved.shape}")
    if out is None:
        out = np.empty(grad_out.shape, grad_out.dtype)
    else:
        check_out(out, "out", grad_out.shape, grad_out.dtype)
        check_no_overlap([("out", out)], [("grad_out", grad_out), (saved_name, saved)],
                         may_alias=("grad_out", saved_name))
    _core.act_backward(out, grad_out, saved, code, param)
    return out


def relu(x, out=None):
    """max(x, 0)."""
    return _forward(x, _code("relu"), 0.0, out)


def relu_backward(grad_out, x, out=None):
    """grad_out · [x > 0]."""
    return _backward(grad_out, x, "x", _code("relu"), 0.0, out)


def leaky_relu(x, negative_slope=0.01, out=None):
    """x if x > 0 else negative_slope · x."""
    return _forward(x, _code("leaky_relu"), check_scalar(negative_slope, "negative_slope"), out)


def leaky_relu_backward(grad_out, x, negative_slope=0.01, out=None):
    return _backward(grad_out, x, "x", _code("leaky_relu"), check_scalar(negative_slope, "negative_slope"), out)


def sigmoid(x, out=None):
    """1 / (1 + exp(−x)), computed without overflow."""
    return _forward(x, _code("sigmoid"), 0.0, out)


def sigmoid_backward(grad_out, y, out=None):
    """grad_out · y(1 − y), from the forward output y."""
    return _backward(grad_out, y, "y", _code("sigmoid"), 0.0, out)


def tanh(x, out=None):
    return _forward(x, _code("tanh"), 0.0, out)


def tanh_backward(grad_out, y, out=None):
    """grad_out · (1 − y²), from the forward output y."""
    return _backward(grad_out, y, "y", _code("tanh"), 0.0, out)


def gelu(x, approximate="none", out=None):
    """x·Φ(x) (exact, erf form) or its tanh approximation (approximate='tanh')."""
    return _forward(x, _gelu_code(approximate), 0.0, out)


def gelu_backward(grad_out, x, approximate="none", out=None):
    return _backward(grad_out, x, "x", _gelu_code(approximate), 0.0, out)


def _rows_cols(shape):
    if len(shape) == 0:
        raise ValueError("x: softmax needs at least a 1-D array, got a scalar")
    cols = shape[-1]
    if cols == 0:
        raise ValueError(f"x: softmax over an empty last axis, shape {shape}")
    return int(np.prod(shape[:-1], dtype=np.int64)), cols


def softmax(x, out=None):
    """Softmax over the last axis, stabilised by the row maximum."""
    x = as_float(x, "x")
    rows, cols = _rows_cols(x.shape)
    out = out_or_new(out, "out", x.shape, x.dtype)
    check_no_overlap([("out", out)], [("x", x)], may_alias=("x",))
    _core.softmax_forward(out, x, rows, cols)
    return out


def softmax_backward(grad_out, y, out=None):
    """y ⊙ (grad_out − Σ_last-axis grad_out·y), from the forward output y."""
    grad_out = as_float(grad_out, "grad_out")
    y = as_float(y, "y", dtype=grad_out.dtype)
    if y.shape != grad_out.shape:
        raise ValueError(f"y: expected shape {grad_out.shape} (as grad_out), got {y.shape}")
    rows, cols = _rows_cols(y.shape)
    out = out_or_new(out, "out", y.shape, y.dtype)
    check_no_overlap([("out", out)], [("grad_out", grad_out), ("y", y)], may_alias=("grad_out", "y"))
    _core.softmax_backward(out, grad_out, y, rows, cols)
    return out


__all__ = [
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "gelu", "gelu_backward", "softmax", "softmax_backward",
]
