"""Normalisation layers: BatchNorm1d (over the batch) and LayerNorm (over the last axis).

Both follow PyTorch's definitions, parameter names and buffer names, so
``state_dict`` keys and values carry across.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .._checks import as_float, check_scalar
from .linear import _float_dtype, _positive_int
from .module import Module
from .parameter import Parameter


def _convert(x, dtype, who: str) -> np.ndarray:
    """x as an ndarray of the layer's dtype (other numeric dtypes converted)."""
    x = np.asarray(x)
    if x.dtype != dtype:
        if x.dtype.kind not in "iuf":
            raise TypeError(f"{who}: expected a numeric input, got dtype {x.dtype}")
        x = x.astype(dtype)
    return x


def _grad_or_none(p):
    return p.grad if p is not None and p.requires_grad else None


def _data_or_none(p):
    return None if p is None else p.data


def _backward_inputs(layer, grad_out, need_input_grad: bool):
    """(grad_out checked against the saved input, weight grad, bias grad) for a norm layer's
    backward, or None when neither the input's gradient nor a parameter's is wanted."""
    if layer._saved is None:
        raise RuntimeError(f"{layer.describe()}: backward() called before forward()")
    gw, gb = _grad_or_none(layer.weight), _grad_or_none(layer.bias)
    if not need_input_grad and gw is None and gb is None:
        return None
    x = layer._saved[0]
    g = as_float(grad_out, "grad_out", dtype=layer.dtype)
    if g.shape != x.shape:
        raise ValueError(f"grad_out: expected shape {x.shape} (as the last input), got {g.shape}")
    return g, gw, gb


class BatchNorm1d(Module):
    """Batch normalisation of (N, C) inputs, per feature.

    Training: normalise with the batch mean and biased variance, and update
    ``running_mean``/``running_var`` (unbiased variance) with ``momentum``
    (None: cumulative average over ``num_batches_tracked`` batches). Eval:
    normalise with the running statistics — or, when
    ``track_running_stats=False``, with the batch's own, as PyTorch does.
    ``weight`` (ones) and ``bias`` (zeros) exist when ``affine``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps = check_scalar(eps, "eps", low=0.0)
        self.momentum = None if momentum is None else check_scalar(momentum, "momentum", low=0.0, high=1.0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = _float_dtype(dtype)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c, self.dtype))
            self.bias = Parameter(np.zeros(c, self.dtype))
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            # Updated in place only: reassigning would unregister them.
            self.register_buffer("running_mean", np.zeros(c, self.dtype))
            self.register_buffer("running_var", np.ones(c, self.dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self._saved = None

    def describe(self) -> str:
        return f"BatchNorm1d({self.num_features})"

    def _as_input(self, x) -> np.ndarray:
        x = _convert(x, self.dtype, self.describe())
        if x.ndim != 2:
            raise ValueError(f"{self.describe()} expected a 2-D input (N, {self.num_features}), "
                             f"got array of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{self.describe()} expected input with {self.num_features} features, "
                             f"got array of shape {x.shape}")
        return x

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def forward(self, x):
        x = np.ascontiguousarray(self._as_input(x))
        batch_stats = self.training or not self.track_running_stats
        if batch_stats and x.shape[0] < 2:
            raise ValueError(f"{self.describe()}: Expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        factor = 0.0
        if self.training and self.track_running_stats:
            nbt = self.num_batches_tracked
            nbt += 1  # in place: the buffer object stays registered
            factor = 1.0 / float(nbt) if self.momentum is None else self.momentum
        c = self.num_features
        save_mean, save_invstd = np.empty(c, self.dtype), np.empty(c, self.dtype)
        y = backend.current().batch_norm(
            x, _data_or_none(self.weight), _data_or_none(self.bias),
            self.running_mean if self.track_running_stats else None,
            self.running_var if self.track_running_stats else None,
            batch_stats, momentum=factor, eps=self.eps, save_mean=save_mean, save_invstd=save_invstd)
        self._saved = (x, save_mean, save_invstd, batch_stats)
        return y

    def backward(self, grad_out, need_input_grad: bool = True):
        grads = _backward_inputs(self, grad_out, need_input_grad)
        if grads is None:
            return None
        g, gw, gb = grads
        x, save_mean, save_invstd, batch_stats = self._saved
        return backend.current().batch_norm_backward(
            g, x, _data_or_none(self.weight), save_mean, save_invstd,
            grad_weight=gw, grad_bias=gb, training=batch_stats, need_grad_input=bool(need_input_grad))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


def _normalized_shape(value) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"normalized_shape: only normalisation over the last dimension is supported: "
                             f"expected an int or a 1-tuple, got {tuple(value)}")
        value = value[0]
    return (_positive_int(value, "normalized_shape"),)


class LayerNorm(Module):
    """Layer normalisation over the last dimension of inputs (*, C).

    ``normalized_shape`` is C or (C,). With ``elementwise_affine`` the layer has
    ``weight`` (ones) and, unless ``bias=False``, ``bias`` (zeros).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = check_scalar(eps, "eps", low=0.0)
        self.elementwise_affine = bool(elementwise_affine)
        self.dtype = _float_dtype(dtype)
        c = self.normalized_shape[0]
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(c, self.dtype))
            self.bias = Parameter(np.zeros(c, self.dtype)) if bias else None
        else:
            self.weight = None
            self.bias = None
        self._saved = None

    def describe(self) -> str:
        return f"LayerNorm({self.normalized_shape})"

    def _as_input(self, x) -> np.ndarray:
        x = _convert(x, self.dtype, self.describe())
        c = self.normalized_shape[0]
        if x.ndim == 0 or x.shape[-1] != c:
            raise ValueError(f"{self.describe()} expected input with last dimension {c}, "
                             f"got array of shape {x.shape}")
        return x

    def forward(self, x):
        x = np.ascontiguousarray(self._as_input(x))
        save_mean, save_invstd = np.empty(x.shape[:-1], self.dtype), np.empty(x.shape[:-1], self.dtype)
        y = backend.current().layer_norm(
            x, _data_or_none(self.weight), _data_or_none(self.bias),
            eps=self.eps, save_mean=save_mean, save_invstd=save_invstd)
        self._saved = (x, save_mean, save_invstd)
        return y

    def backward(self, grad_out, need_input_grad: bool = True):
        grads = _backward_inputs(self, grad_out, need_input_grad)
        if grads is None:
            return None
        g, gw, gb = grads
        x, save_mean, save_invstd = self._saved
        return backend.current().layer_norm_backward(
            g, x, _data_or_none(self.weight), save_mean, save_invstd,
            grad_weight=gw, grad_bias=gb, need_grad_input=bool(need_input_grad))

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
