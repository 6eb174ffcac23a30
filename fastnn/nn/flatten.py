"""Shape-only modules: Flatten and Identity (any dtype; no parameters)."""
from __future__ import annotations

import numpy as np

from .module import Module


def _dim(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    return int(value)


class Flatten(Module):
    """Flatten(start_dim=1, end_dim=-1): merge dims start_dim..end_dim into one,
    e.g. (N, C, H, W) → (N, C·H·W). The backward reshapes the gradient back."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = _dim(start_dim, "start_dim")
        self.end_dim = _dim(end_dim, "end_dim")
        self._in_shape = None

    def _axes(self, ndim: int):
        n = max(ndim, 1)  # a 0-d input flattens as a 1-d one, as in PyTorch
        axes = []
        for name, d in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -n <= d < n:
                raise IndexError(f"{name}: dimension out of range (expected to be in range of "
                                 f"[{-n}, {n - 1}], but got {d}) for an input with {ndim} dimensions")
            axes.append(d + n if d < 0 else d)
        if axes[0] > axes[1]:
            raise ValueError(f"start_dim: must not come after end_dim, got start_dim={self.start_dim}, "
                             f"end_dim={self.end_dim} for an input with {ndim} dimensions")
        return axes

    def forward(self, x):
        x = np.asarray(x)
        s, e = self._axes(x.ndim)
        self._in_shape = x.shape
        if x.ndim == 0:
            return x.reshape(1)
        shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1], dtype=np.int64)),) + x.shape[e + 1:]
        return x.reshape(shape)

    def backward(self, grad_out, need_input_grad: bool = True):
        if self._in_shape is None:
            raise RuntimeError("Flatten: backward() called before forward()")
        if not need_input_grad:
            return None
        g = np.asarray(grad_out)
        if g.size != int(np.prod(self._in_shape, dtype=np.int64)):
            raise ValueError(f"grad_out: expected {int(np.prod(self._in_shape))} elements to reshape to "
                             f"{self._in_shape}, got shape {g.shape}")
        return g.reshape(self._in_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input; arguments are accepted and ignored, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def backward(self, grad_out, need_input_grad: bool = True):
        return grad_out if need_input_grad else None
