"""Dropout, batch norm and layer norm in pure NumPy: the spec for
``fastnn.ops.layers`` (same signatures, semantics and argument checks; statistics in float64)."""
from __future__ import annotations

import numpy as np

from .._checks import (check_batch_norm, check_batch_norm_backward, check_dropout, check_dropout_backward,
                       check_layer_norm, check_layer_norm_backward)

_U64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _finish(value, like: np.ndarray, out):
    value = np.asarray(value, dtype=like.dtype)
    if out is None:
        return value
    out[...] = value
    return out


def _mix64_int(z: int) -> int:
    """splitmix64's finaliser on one Python int."""
    z = ((z ^ (z >> 30)) * _M1) & _U64
    z = ((z ^ (z >> 27)) * _M2) & _U64
    return z ^ (z >> 31)


def _mix64(z: np.ndarray) -> np.ndarray:
    """The same on a uint64 array (array arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def dropout_uniforms(seed: int, n: int) -> np.ndarray:
    """u(seed, i) for i < n, in [0, 1): (mix64(mix64(seed) + (i+1)·φ) >> 11)·2⁻⁵³."""
    key = np.uint64(_mix64_int(int(seed) & _U64))
    i = np.arange(1, n + 1, dtype=np.uint64)
    h = _mix64(key + i * np.uint64(_GAMMA))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _dropout_scale(p: float, dtype) -> np.generic:
    return np.dtype(dtype).type(1.0 / (1.0 - p)) if p < 1.0 else np.dtype(dtype).type(0)


def dropout(x, p, seed, out=None, mask=None):
    x, p, seed, out, mask = check_dropout(x, p, seed, out, mask)
    keep = (dropout_uniforms(seed, x.size) >= p).reshape(x.shape)
    if mask is not None:
        mask[...] = keep
    factor = np.where(keep, _dropout_scale(p, x.dtype), x.dtype.type(0))
    return _finish(x * factor, x, out)


def dropout_backward(grad_out, mask, p, out=None):
    grad_out, mask, p, out = check_dropout_backward(grad_out, mask, p, out)
    factor = np.where(np.asarray(mask) != 0, _dropout_scale(p, grad_out.dtype), grad_out.dtype.type(0))
    return _finish(grad_out * factor, grad_out, out)


def _vec(a, ones: bool = False):
    return None if a is None else np.asarray(a, dtype=np.float64)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5,
               out=None, save_mean=None, save_invstd=None):
    (x, weight, bias, running_mean, running_var, training, momentum, eps, out, save_mean,
     save_invstd) = check_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, out,
                                     save_mean, save_invstd)
    xd = x.astype(np.float64)
    n = x.shape[0]
    if training or running_mean is None:
        if n < 2:
            raise ValueError(f"x: Expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        mean = xd.mean(axis=0)
        var = ((xd - mean) ** 2).mean(axis=0)  # biased: normalises this batch
        if training and running_mean is not None:
            m = float(momentum)
            running_mean[...] = (1 - m) * running_mean.astype(np.float64) + m * mean
            running_var[...] = (1 - m) * running_var.astype(np.float64) + m * var * (n / (n - 1))
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    if save_mean is not None:
        save_mean[...] = mean
    if save_invstd is not None:
        save_invstd[...] = invstd
    w = 1.0 if weight is None else _vec(weight)
    b = 0.0 if bias is None else _vec(bias)
    return _finish((xd - mean) * (invstd * w) + b, x, out)


def batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight=None,
                        grad_bias=None, training=True, need_grad_input=True, out=None):
    (grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, training, need_grad_input,
     out) = check_batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias,
                                      training, need_grad_input, out)
    dy = grad_out.astype(np.float64)
    n = dy.shape[0]
    mean, invstd = _vec(save_mean), _vec(save_invstd)
    xhat = (np.asarray(x, dtype=np.float64) - mean) * invstd
    sdy = dy.sum(axis=0)
    sdyx = (dy * xhat).sum(axis=0)
    if grad_weight is not None:
        grad_weight[...] = grad_weight.astype(np.float64) + sdyx
    if grad_bias is not None:
        grad_bias[...] = grad_bias.astype(np.float64) + sdy
    if not need_grad_input:
        return None
    w = 1.0 if weight is None else _vec(weight)
    if training:
        # y = γ·(x − μ(x))·invstd(x) + β with μ, invstd the batch statistics.
        dx = (w * invstd) * (dy - sdy / n - xhat * (sdyx / n))
    else:
        dx = (w * invstd) * dy
    return _finish(dx, grad_out, out)


def layer_norm(x, weight, bias, eps=1e-5, out=None, save_mean=None, save_invstd=None):
    x, weight, bias, eps, out, save_mean, save_invstd, _ = check_layer_norm(x, weight, bias, eps, out, save_mean,
                                                                             save_invstd)
    xd = x.astype(np.float64)
    mean = xd.mean(axis=-1, keepdims=True)
    var = ((xd - mean) ** 2).mean(axis=-1, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    if save_mean is not None:
        save_mean[...] = mean[..., 0]
    if save_invstd is not None:
        save_invstd[...] = invstd[..., 0]
    y = (xd - mean) * invstd
    if weight is not None:
        y = y * _vec(weight)
    if bias is not None:
        y = y + _vec(bias)
    return _finish(y, x, out)


def layer_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight=None,
                        grad_bias=None, need_grad_input=True, out=None):
    (grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, need_grad_input, out,
     _) = check_layer_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias,
                                    need_grad_input, out)
    cols = grad_out.shape[-1]
    dy = grad_out.astype(np.float64)
    mean = _vec(save_mean)[..., None]
    invstd = _vec(save_invstd)[..., None]
    xhat = (np.asarray(x, dtype=np.float64) - mean) * invstd
    if grad_weight is not None:
        grad_weight[...] = grad_weight.astype(np.float64) + (dy * xhat).reshape(-1, cols).sum(axis=0)
    if grad_bias is not None:
        grad_bias[...] = grad_bias.astype(np.float64) + dy.reshape(-1, cols).sum(axis=0)
    if not need_grad_input:
        return None
    g = dy if weight is None else dy * _vec(weight)
    dx = invstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return _finish(dx, grad_out, out)


__all__ = [
    "dropout", "dropout_backward", "batch_norm", "batch_norm_backward",
    "layer_norm", "layer_norm_backward",
]
