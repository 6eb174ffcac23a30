"""Dropout: zero each element with probability p in training, scaling the kept
ones by 1/(1−p) (inverted dropout); the identity in eval mode."""
from __future__ import annotations

import numpy as np

from .. import backend
from .._checks import as_float, check_scalar
from ..random import draw_seed
from .module import Module


class Dropout(Module):
    """Dropout(p=0.5) on inputs of any shape.

    Each training forward draws a fresh kernel seed from fastnn's generator,
    so ``fastnn.manual_seed`` makes the masks reproducible, and the mask of a
    given seed does not depend on the thread count or on the backend. In eval
    mode (or with p == 0) input and gradient pass through unchanged.

    ``inplace`` is accepted for PyTorch compatibility and does not change the
    result; the output is always a new array, because the input is often a
    module's output that the module keeps for its own backward.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = check_scalar(p, "p", low=0.0, high=1.0)
        self.inplace = bool(inplace)
        self._mask = None
        self._shape = None
        self._dtype = None

    def forward(self, x):
        x = as_float(x, "input", contiguous=False)
        self._shape, self._dtype = x.shape, x.dtype
        if not self.training or self.p == 0.0:
            self._mask = None  # identity: backward passes gradients through
            return x
        self._mask = np.empty(x.shape, np.uint8)
        return backend.current().dropout(x, self.p, draw_seed(), mask=self._mask)

    def backward(self, grad_out, need_input_grad: bool = True):
        if self._shape is None:
            raise RuntimeError("Dropout: backward() called before forward()")
        if not need_input_grad:
            return None
        g = as_float(grad_out, "grad_out", dtype=self._dtype, contiguous=False)
        if g.shape != self._shape:
            raise ValueError(f"grad_out: expected shape {self._shape} (as the last input), got {g.shape}")
        if self._mask is None:
            return g
        return backend.current().dropout_backward(g, self._mask, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
