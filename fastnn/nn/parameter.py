"""Parameter: a trainable array and its gradient.

``param.data`` and ``param.grad`` are NumPy arrays. Once an optimizer (or
``fastnn.nn.arena.consolidate``) has gathered a model's parameters into one
flat arena, both are views into it; assigning to ``param.data`` therefore
copies into that storage instead of rebinding, so the arena stays the single
source of truth.

Unlike PyTorch, ``grad`` always exists (zeros until the first backward), so
backward kernels can accumulate into it without a branch.
"""
from __future__ import annotations

import numpy as np


class Parameter:
    __slots__ = ("_data", "_grad", "requires_grad", "_arena", "__weakref__")

    def __init__(self, data, requires_grad: bool = True):
        data = np.array(data, copy=True, order="C")
        if data.dtype not in (np.float32, np.float64):
            raise TypeError(f"data: expected a float32 or float64 array, got dtype {data.dtype}")
        self._data = data
        self._grad = np.zeros_like(data)
        self.requires_grad = bool(requires_grad)
        self._arena = None

    # --- storage -------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self._data.shape:
            raise ValueError(f"data: expected shape {self._data.shape}, got {value.shape}")
        self._data[...] = value

    @property
    def grad(self) -> np.ndarray:
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is None:  # PyTorch's "set_to_none": here the same as zeroing
            self._grad.fill(0)
            return
        value = np.asarray(value)
        if value.shape != self._grad.shape:
            raise ValueError(f"grad: expected shape {self._grad.shape}, got {value.shape}")
        self._grad[...] = value

    def _rebind(self, data_view: np.ndarray, grad_view: np.ndarray, arena) -> None:
        """Move storage into an arena (called by the arena only)."""
        data_view[...] = self._data
        grad_view[...] = self._grad
        self._data, self._grad, self._arena = data_view, grad_view, arena

    # --- array-like ------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)

    def numpy(self) -> np.ndarray:
        """A copy of the values."""
        return self._data.copy()

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def __deepcopy__(self, memo):
        # A copy gets its own storage, outside any arena: sharing the original's arena views
        # would leave a new optimizer on the copy updating memory nobody reads.
        new = Parameter(self._data, requires_grad=self.requires_grad)
        new._grad[...] = self._grad
        memo[id(self)] = new
        return new

    def zero_grad(self) -> None:
        self._grad.fill(0)

    def __repr__(self) -> str:
        body = np.array2string(self._data, prefix="Parameter(", separator=", ")
        return f"Parameter({body}, dtype={self._data.dtype})"
