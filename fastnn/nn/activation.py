"""Activation modules. Each keeps what its derivative needs: the input for
ReLU, LeakyReLU and GELU, the output for Sigmoid, Tanh and Softmax."""
from __future__ import annotations

import numpy as np

from .. import backend
from .._checks import as_float, check_choice, check_scalar
from .module import Module


class _Elementwise(Module):
    reads_output = False
    reads_preact = False  # when fused after a Linear: keep z (not y) for the derivative

    def fused_name(self):
        """The activation's name for the GEMM epilogue, or None if it can't be fused."""
        return None

    def _record_fused(self, saved, shape):
        """State after a fused Linear+activation forward: ``saved`` is y, or z when reads_preact,
        2-D; ``shape`` the output's shape when that is not 2-D (None otherwise)."""
        d = self.__dict__  # plain state: no Parameter/Module registration needed
        d["_saved"] = saved if shape is None else saved.reshape(shape)
        d["_call_count"] = self._call_count + 1

    def __init__(self):
        super().__init__()
        self._saved = None

    def forward(self, x):
        x = as_float(x, "input")
        y = self._forward(backend.current(), x)
        self.__dict__["_saved"] = y if self.reads_output else x
        return y

    def backward(self, grad_out, need_input_grad: bool = True):
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}: backward() called before forward()")
        if not need_input_grad:
            return None
        g = as_float(grad_out, "grad_out", dtype=self._saved.dtype)
        return self._backward(backend.current(), g, self._saved)


class ReLU(_Elementwise):
    """max(x, 0)."""

    def fused_name(self):
        return "relu"  # y > 0 exactly where x > 0, so the derivative can read y

    def _forward(self, B, x):
        return B.relu(x)

    def _backward(self, B, g, x):
        return B.relu_backward(g, x)


class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope·x (default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = check_scalar(negative_slope, "negative_slope")

    def fused_name(self):
        # Differentiating from y needs sign(y) == sign(x), true only for slope >= 0.
        return "leaky_relu" if self.negative_slope >= 0 else None

    def _forward(self, B, x):
        return B.leaky_relu(x, self.negative_slope)

    def _backward(self, B, g, x):
        return B.leaky_relu_backward(g, x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Elementwise):
    reads_output = True

    def fused_name(self):
        return "sigmoid"

    def _forward(self, B, x):
        return B.sigmoid(x)

    def _backward(self, B, g, y):
        return B.sigmoid_backward(g, y)


class Tanh(_Elementwise):
    reads_output = True

    def fused_name(self):
        return "tanh"

    def _forward(self, B, x):
        return B.tanh(x)

    def _backward(self, B, g, y):
        return B.tanh_backward(g, y)


class GELU(_Elementwise):
    """x·Φ(x); ``approximate='tanh'`` for the tanh approximation."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = check_choice(approximate, "approximate", ("none", "tanh"))

    reads_preact = True

    def fused_name(self):
        return "gelu_tanh" if self.approximate == "tanh" else "gelu"

    def _forward(self, B, x):
        return B.gelu(x, self.approximate)

    def _backward(self, B, g, x):
        return B.gelu_backward(g, x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(_Elementwise):
    """Softmax over the last axis (``dim=-1``; other axes are not supported)."""

    reads_output = True

    def __init__(self, dim: int = -1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"dim: expected an integer, got {type(dim).__name__}")
        self.dim = int(dim)

    def _forward(self, B, x):
        if self.dim not in (-1, x.ndim - 1):
            raise ValueError(f"dim: only the last axis is supported, got dim={self.dim} for a {x.ndim}-D input")
        return B.softmax(x)

    def _backward(self, B, g, y):
        return B.softmax_backward(g, y)

    def extra_repr(self):
        return f"dim={self.dim}"
