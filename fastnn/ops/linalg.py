"""Matrix product and the dense layer (C kernels; same signatures as ``fastnn.reference.linalg``).

``matmul`` takes any 2-D views (transposed, sliced, negative strides) without copying them:
the packed GEMM reads general strides. ``linear`` fuses bias and activation into the GEMM's
epilogue; ``linear_backward`` applies the activation derivative once and accumulates the
parameter gradients in place, as PyTorch does.

Arguments are checked once, by ``fastnn._checks`` (the same checks as the reference); the
compiled wrapper then checks what memory safety depends on — dtype, strides, shapes,
writability and that no output overlaps an input — and raises before C runs.

Each Python thread gets its own packing workspace, so products running concurrently from
several threads (the GIL is released) never share buffers.
"""
from __future__ import annotations

import threading

import numpy as np

from .. import _core, _enums
from .._checks import ACTIVATIONS, check_linear, check_linear_backward, check_matmul  # noqa: F401

_local = threading.local()


def workspace() -> "_core.Workspace":
    """This thread's GEMM workspace (created on first use, reused afterwards)."""
    ws = getattr(_local, "ws", None)
    if ws is None:
        ws = _local.ws = _core.Workspace()
    return ws


def matmul(a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
    """out = alpha·op(a)·op(b) + beta·out, op(x) = xᵀ when the flag is set. 2-D only.

    Result dtype: float64 if a or b is float64, else float32. beta != 0 needs ``out`` (whose
    old contents are ignored when beta == 0). ``out`` must not overlap a or b.
    """
    # The last argument, overlap=False (positional: cheaper to pass): the wrapper checks overlap.
    a, b, shape, out, alpha, beta = check_matmul(a, b, trans_a, trans_b, out, alpha, beta, False)
    if out is None:
        out = np.empty(shape, a.dtype)
    return _core.gemm(workspace(), out, a, b, trans_a, trans_b, alpha, beta)  # bint: any truth value


def linear(x, weight, bias=None, activation=None, negative_slope=0.01, out=None, preact_out=None):
    """y = act(x·weightᵀ + bias), fused: the bias and activation are applied to each tile of
    the product while it is in registers/L1, and y is written once.

    x (batch, in), weight (out, in) as PyTorch, bias (out,) or None. activation: None, 'relu',
    'leaky_relu' (negative_slope), 'sigmoid', 'tanh', 'gelu', 'gelu_tanh'. preact_out, if
    given, also receives z = x·weightᵀ + bias (GELU's backward needs it).
    """
    x, weight, bias, activation, slope, shape = check_linear(x, weight, bias, activation, negative_slope,
                                                             out, preact_out, False)  # overlap=False
    if out is None:
        out = np.empty(shape, x.dtype)
    return _core.dense_forward(workspace(), out, x, weight, bias, preact_out,
                               _enums.ACTIVATION_CODES[activation], slope)


def linear_backward(grad_out, x, weight, grad_weight=None, grad_bias=None, need_grad_input=True,
                    activation=None, saved=None, negative_slope=0.01):
    """Backward of y = act(x·weightᵀ + b).

    dZ = grad_out ⊙ act'(saved) (``saved`` is the forward output y for relu, leaky_relu with
    negative_slope >= 0, sigmoid, tanh; the pre-activation z for gelu, gelu_tanh), then
    returns grad_input = dZ·weight (a new array; None if need_grad_input is False),
    grad_weight += dZᵀ·x and grad_bias += Σ_rows dZ, both accumulated in place (skipped if None).
    """
    grad_out, x, weight, saved, activation, slope = check_linear_backward(
        grad_out, x, weight, grad_weight, grad_bias, activation, saved, negative_slope, False)  # overlap=False
    grad_input = np.empty((len(x), weight.shape[1]), x.dtype) if need_grad_input else None
    _core.dense_backward(workspace(), grad_input, grad_weight, grad_bias, grad_out, x, weight, saved,
                         _enums.ACTIVATION_CODES[activation], slope)
    return grad_input


__all__ = ["matmul", "linear", "linear_backward"]
