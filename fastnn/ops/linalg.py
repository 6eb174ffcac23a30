"""Matrix product and the dense layer (C kernels; same signatures as ``fastnn.reference.linalg``).

``matmul`` takes any 2-D views (transposed, sliced, negative strides) without copying them:
the packed GEMM reads general strides. ``linear`` fuses bias and activation into the GEMM's
epilogue; ``linear_backward`` applies the activation derivative once and accumulates the
parameter gradients in place, as PyTorch does.

Each Python thread gets its own packing workspace, so products running concurrently from
several threads (the GIL is released) never share buffers.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from .. import _core
from ._validate import as_float, check_choice, check_no_overlap, check_out, check_scalar, result_dtype

ACTIVATIONS = (None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh")
# Codes of src_c/common.h's fnn_act enum.
_ACT_CODES = {None: 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4, "gelu": 5, "gelu_tanh": 6}

_local = threading.local()
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def workspace() -> "_core.Workspace":
    """This thread's GEMM workspace (created on first use, reused afterwards)."""
    ws = getattr(_local, "ws", None)
    if ws is None:
        ws = _local.ws = _core.Workspace()
    return ws


def _matrix(a, name: str, dtype) -> np.ndarray:
    """``a`` as a 2-D float array of ``dtype``, keeping its strides when they are whole elements."""
    a = as_float(a, name, dtype=dtype, contiguous=False)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {a.shape}")
    if not a.flags.aligned or any(s % a.itemsize for s in a.strides):
        a = np.array(a, order="C")  # a real copy (ascontiguousarray keeps such views)
    return a


def _plain(a, b) -> bool:
    """Two aligned ndarrays of one native float dtype: the case the fast paths take."""
    return (type(a) is np.ndarray and type(b) is np.ndarray and a.dtype is b.dtype
            and (a.dtype is _F32 or a.dtype is _F64) and a.flags.aligned and b.flags.aligned)


def matmul(a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
    """out = alpha·op(a)·op(b) + beta·out, op(x) = xᵀ when the flag is set. 2-D only.

    Result dtype: float64 if a or b is float64, else float32. beta != 0 needs ``out`` (whose
    old contents are ignored when beta == 0). ``out`` must not overlap a or b.
    """
    # Fast path (a few hundred ns instead of several µs for tiny products): the compiled
    # wrapper re-checks everything memory safety depends on, and any complaint from it
    # sends the call through the full validation below, which explains it properly.
    if (_plain(a, b) and type(alpha) is float and type(beta) is float
            and math.isfinite(alpha) and math.isfinite(beta)):
        if out is None:
            if beta == 0 and a.ndim == 2 and b.ndim == 2:
                res = np.empty((a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1]),
                               a.dtype)
                try:
                    return _core.gemm(workspace(), res, a, b, trans_a, trans_b, alpha, beta)
                except (ValueError, TypeError):
                    pass
        elif (type(out) is np.ndarray and out.dtype is a.dtype
              and not np.may_share_memory(out, a) and not np.may_share_memory(out, b)):
            try:
                return _core.gemm(workspace(), out, a, b, trans_a, trans_b, alpha, beta)
            except (ValueError, TypeError):
                pass
    return _matmul_checked(a, b, trans_a, trans_b, out, alpha, beta)


def _matmul_checked(a, b, trans_a, trans_b, out, alpha, beta):
    dt = result_dtype(a, b)
    a = _matrix(a, "a", dt)
    b = _matrix(b, "b", dt)
    alpha = check_scalar(alpha, "alpha")
    beta = check_scalar(beta, "beta")
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if kb != k:
        raise ValueError(
            f"b: inner dimensions do not match: op(a) has shape ({m}, {k}), op(b) has shape ({kb}, {n})"
            f" (a {a.shape}, trans_a={bool(trans_a)}; b {b.shape}, trans_b={bool(trans_b)})")
    if out is None:
        if beta != 0:
            raise ValueError(f"out: beta={beta} needs an out array to scale and add to")
        out = np.empty((m, n), dt)
    else:
        check_out(out, "out", (m, n), dt, contiguous=False)
        check_no_overlap(out, "out", ("a", a), ("b", b))
    _core.gemm(workspace(), out, a, b, bool(trans_a), bool(trans_b), alpha, beta)
    return out


def _layer(weight) -> str:
    return f"weight is {tuple(weight.shape)}"


def _act_code(activation, negative_slope):
    check_choice(activation, "activation", ACTIVATIONS)
    slope = check_scalar(negative_slope, "negative_slope")
    return _ACT_CODES[activation], slope


def _check_x(x, weight, dt) -> np.ndarray:
    n_out, n_in = weight.shape
    x = as_float(x, "x", dtype=dt, contiguous=False)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"x: expected input with {n_in} features ({_layer(weight)}), got array of shape {x.shape}")
    if not x.flags.aligned or any(s % x.itemsize for s in x.strides):
        x = np.array(x, order="C")  # a real copy (ascontiguousarray keeps such views)
    return x


def linear(x, weight, bias=None, activation=None, negative_slope=0.01, out=None, preact_out=None):
    """y = act(x·weightᵀ + bias), fused: the bias and activation are applied to each tile of
    the product while it is in registers/L1, and y is written once.

    x (batch, in), weight (out, in) as PyTorch, bias (out,) or None. activation: None, 'relu',
    'leaky_relu' (negative_slope), 'sigmoid', 'tanh', 'gelu', 'gelu_tanh'. preact_out, if
    given, also receives z = x·weightᵀ + bias (GELU's backward needs it).
    """
    if (_plain(x, weight) and out is None and type(negative_slope) is float
            and math.isfinite(negative_slope)
            and (bias is None or (type(bias) is np.ndarray and bias.dtype is x.dtype and bias.ndim == 1))
            and (preact_out is None or (type(preact_out) is np.ndarray and preact_out.dtype is x.dtype
                                        and preact_out.flags.aligned
                                        and _core.spans_disjoint((preact_out,), (x, weight, bias))))):
        code = _ACT_CODES.get(activation) if isinstance(activation, (str, type(None))) else None
        if code is not None and x.ndim == 2 and weight.ndim == 2:
            res = np.empty((x.shape[0], weight.shape[0]), x.dtype)
            try:  # fast path, as in matmul (the compiled wrapper raises before writing anything)
                return _core.dense_forward(workspace(), res, x, weight, bias, preact_out, code, negative_slope)
            except (ValueError, TypeError):
                pass
    return _linear_checked(x, weight, bias, activation, negative_slope, out, preact_out)


def _linear_checked(x, weight, bias, activation, negative_slope, out, preact_out):
    dt = result_dtype(x, weight, bias)
    weight = _matrix(weight, "weight", dt)
    n_out, n_in = weight.shape
    x = _check_x(x, weight, dt)
    code, slope = _act_code(activation, negative_slope)
    if bias is not None:
        bias = as_float(bias, "bias", dtype=dt)
        if bias.shape != (n_out,):
            raise ValueError(f"bias: expected shape ({n_out},) ({_layer(weight)}), got {bias.shape}")
    shape = (x.shape[0], n_out)
    inputs = (("x", x), ("weight", weight), ("bias", bias))
    if out is None:
        out = np.empty(shape, dt)
    else:
        check_out(out, "out", shape, dt, contiguous=False)
        check_no_overlap(out, "out", *inputs)
    if preact_out is not None:
        check_out(preact_out, "preact_out", shape, dt, contiguous=False)
        check_no_overlap(preact_out, "preact_out", *inputs, ("out", out))
    _core.dense_forward(workspace(), out, x, weight, bias, preact_out, code, slope)
    return out


def linear_backward(grad_out, x, weight, grad_weight=None, grad_bias=None, need_grad_input=True,
                    activation=None, saved=None, negative_slope=0.01):
    """Backward of y = act(x·weightᵀ + b).

    dZ = grad_out ⊙ act'(saved) (``saved`` is the forward output y for relu, leaky_relu with
    negative_slope >= 0, sigmoid, tanh; the pre-activation z for gelu, gelu_tanh), then
    returns grad_input = dZ·weight (a new array; None if need_grad_input is False),
    grad_weight += dZᵀ·x and grad_bias += Σ_rows dZ, both accumulated in place (skipped if None).
    """
    if _backward_fast_ok(grad_out, x, weight, grad_weight, grad_bias, activation, saved, negative_slope):
        grad_input = np.empty((x.shape[0], weight.shape[1]), x.dtype) if need_grad_input else None
        try:  # fast path, as in matmul (the compiled wrapper raises before touching any memory)
            _core.dense_backward(workspace(), grad_input, grad_weight, grad_bias, grad_out, x, weight,
                                 saved if activation is not None else None, _ACT_CODES[activation],
                                 negative_slope)
            return grad_input
        except (ValueError, TypeError):
            pass
    return _linear_backward_checked(grad_out, x, weight, grad_weight, grad_bias, need_grad_input,
                                    activation, saved, negative_slope)


def _backward_fast_ok(grad_out, x, weight, grad_weight, grad_bias, activation, saved, slope) -> bool:
    """True when the arguments are the common case the compiled wrapper checks completely: plain
    arrays of one float dtype, outputs of the exact shapes and clear of every input. Anything else
    (conversions, odd outputs, a possible overlap) takes the full validation."""
    if not (_plain(x, weight) and type(grad_out) is np.ndarray and grad_out.dtype is x.dtype
            and grad_out.flags.aligned and x.ndim == 2 and weight.ndim == 2
            and type(slope) is float and math.isfinite(slope)):
        return False
    if grad_weight is not None and not (type(grad_weight) is np.ndarray and grad_weight.dtype is x.dtype
                                        and grad_weight.shape == weight.shape and grad_weight.flags.aligned):
        return False
    if grad_bias is not None and not (type(grad_bias) is np.ndarray and grad_bias.dtype is x.dtype
                                      and grad_bias.shape == weight.shape[:1] and grad_bias.flags.aligned):
        return False
    if activation is not None:
        if (type(activation) is not str or activation not in _ACT_CODES or type(saved) is not np.ndarray
                or saved.dtype is not x.dtype or not saved.flags.aligned
                or (activation == "leaky_relu" and slope < 0)):
            return False
    return (grad_weight is None and grad_bias is None) or _core.spans_disjoint(
        (grad_weight, grad_bias), (grad_out, x, weight, saved if activation is not None else None))


def _linear_backward_checked(grad_out, x, weight, grad_weight, grad_bias, need_grad_input, activation,
                             saved, negative_slope):
    dt = result_dtype(grad_out, x, weight)
    weight = _matrix(weight, "weight", dt)
    n_out, n_in = weight.shape
    x = _check_x(x, weight, dt)
    batch = x.shape[0]
    grad_out = _matrix(grad_out, "grad_out", dt)
    if grad_out.shape != (batch, n_out):
        raise ValueError(f"grad_out: expected shape ({batch}, {n_out}) (x is {x.shape}, {_layer(weight)}), "
                         f"got {grad_out.shape}")
    code, slope = _act_code(activation, negative_slope)
    if activation is not None:
        if saved is None:
            what = "pre-activation z" if activation in ("gelu", "gelu_tanh") else "forward output y"
            raise ValueError(f"saved: activation={activation!r} needs the {what}")
        if activation == "leaky_relu" and slope < 0:
            raise ValueError(f"negative_slope: linear_backward differentiates leaky_relu from its output, "
                             f"which needs negative_slope >= 0, got {slope}")
        saved = _matrix(saved, "saved", dt)
        if saved.shape != (batch, n_out):
            raise ValueError(f"saved: expected shape ({batch}, {n_out}) (as grad_out), got {saved.shape}")
    else:
        saved = None
    inputs = (("grad_out", grad_out), ("x", x), ("weight", weight), ("saved", saved))
    if grad_weight is not None:
        check_out(grad_weight, "grad_weight", (n_out, n_in), dt)
        check_no_overlap(grad_weight, "grad_weight", *inputs)
    if grad_bias is not None:
        check_out(grad_bias, "grad_bias", (n_out,), dt)
        check_no_overlap(grad_bias, "grad_bias", *inputs, ("grad_weight", grad_weight))
    grad_input = np.empty((batch, n_in), dt) if need_grad_input else None
    _core.dense_backward(workspace(), grad_input, grad_weight, grad_bias, grad_out, x, weight, saved,
                         code, slope)
    return grad_input


__all__ = ["matmul", "linear", "linear_backward"]
