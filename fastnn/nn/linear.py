"""Linear: y = x·Wᵀ + b, with W stored (out_features, in_features) as in PyTorch."""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..random import default_generator
from .module import Module
from .parameter import Parameter


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _float_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
    return dtype


def _dense_forward(x2, weight, bias, activation=None, slope=0.01, preact=None):
    """The layer's product on the current backend."""
    return backend.current().linear(x2, weight, bias, activation=activation, negative_slope=slope,
                                    preact_out=preact)


def _dense_backward(g, x2, weight, grad_weight, grad_bias, need_input_grad, activation=None, saved=None,
                    slope=0.01):
    return backend.current().linear_backward(g, x2, weight, grad_weight=grad_weight, grad_bias=grad_bias,
                                             need_grad_input=need_input_grad, activation=activation,
                                             saved=saved, negative_slope=slope)


class Linear(Module):
    """Fully connected layer on inputs of shape (*, in_features).

    Weights and bias start uniform in ±1/√in_features (PyTorch's default),
    drawn from fastnn's generator (``fastnn.manual_seed``). Inputs of another
    numeric dtype are converted to the layer's dtype.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        dtype = _float_dtype(dtype)
        bound = 1.0 / math.sqrt(self.in_features)
        rng = default_generator()
        self.weight = Parameter(rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, self.out_features).astype(dtype)) if bias else None
        self._x = None

    def _as_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        dtype = self.weight.data.dtype
        if x.dtype != dtype:
            if x.dtype.kind not in "iuf":
                raise TypeError(f"{self.describe()}: expected a numeric input, got dtype {x.dtype}")
            x = x.astype(dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self.describe()} expected input with {self.in_features} features, "
                             f"got array of shape {x.shape}")
        return x

    # The per-step paths below read Parameter._data/_grad (what the data/grad properties
    # return) directly: they run at every step, and a property call is a function call.
    def _input2d(self, x):
        """x as (rows, in_features) in the layer's dtype, and the output's leading shape when x
        is not already 2-D (None otherwise: the common case skips the reshapes)."""
        if (type(x) is np.ndarray and x.ndim == 2 and x.dtype is self.weight._data.dtype
                and x.shape[1] == self.in_features):
            return x, None  # what _as_input returns for it, without its calls
        x = self._as_input(x)
        if x.ndim == 2:
            return x, None
        return x.reshape(-1, self.in_features), x.shape[:-1]

    def _grads(self):
        """(grad_weight, grad_bias) to accumulate into; None for a frozen parameter or no bias."""
        w, b = self.weight, self.bias
        return (w._grad if w.requires_grad else None,
                None if b is None or not b.requires_grad else b._grad)

    def describe(self) -> str:
        return f"Linear({self.in_features}→{self.out_features})"

    def forward(self, x):
        x2, lead = self._input2d(x)
        self.__dict__["_x"] = x2  # plain state, not a Parameter: no registration needed
        bias = self.bias
        y = _dense_forward(x2, self.weight._data, None if bias is None else bias._data)
        return y if lead is None else y.reshape(lead + (self.out_features,))

    def backward(self, grad_out, need_input_grad: bool = True):
        if self._x is None:
            raise RuntimeError(f"{self.describe()}: backward() called before forward()")
        x2 = self._x
        shape2 = (x2.shape[0], self.out_features)
        g = np.asarray(grad_out, dtype=self.weight._data.dtype)
        if g.shape != shape2:
            g = g.reshape(shape2)
        grad_weight, grad_bias = self._grads()
        gx = _dense_backward(g, x2, self.weight._data, grad_weight, grad_bias, need_input_grad)
        return self._input_grad(gx, grad_out, g)

    def _input_grad(self, gx, grad_out, g):
        """The input gradient in the shape of the input (gx is 2-D; ``g`` is grad_out as used)."""
        if gx is None or g is grad_out or np.shape(grad_out) == g.shape:
            return gx
        return gx.reshape(np.shape(grad_out)[:-1] + (self.in_features,))

    # --- fused with the activation that follows (used by Sequential) ---------------
    def _forward_fused(self, x, act_module, act_name: str, slope: float):
        """act(x·Wᵀ + b) in one GEMM pass: the bias and activation are applied in the
        product's epilogue. Leaves both modules in the state their own forward would."""
        x2, lead = self._input2d(x)
        d = self.__dict__
        d["_x"] = x2
        z = np.empty((x2.shape[0], self.out_features), x2.dtype) if act_module.reads_preact else None
        bias = self.bias
        y = _dense_forward(x2, self.weight._data, None if bias is None else bias._data, act_name, slope, z)
        d["_call_count"] = self._call_count + 1
        shape = None if lead is None else lead + (self.out_features,)
        act_module._record_fused(y if z is None else z, shape)
        return y if shape is None else y.reshape(shape)

    def _backward_fused(self, grad_out, act_name: str, slope: float, saved, need_input_grad: bool):
        """Backward of the fused pair: dZ = grad_out ⊙ act'(saved) as the GEMM's prologue."""
        x2 = self._x
        shape2 = (x2.shape[0], self.out_features)
        g = np.asarray(grad_out, dtype=self.weight._data.dtype)
        if g.shape != shape2:
            g = g.reshape(shape2)
        saved = np.asarray(saved)
        if saved.shape != shape2:
            saved = saved.reshape(shape2)
        grad_weight, grad_bias = self._grads()
        gx = _dense_backward(g, x2, self.weight._data, grad_weight, grad_bias, need_input_grad, act_name,
                             saved, slope)
        return self._input_grad(gx, grad_out, g)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
