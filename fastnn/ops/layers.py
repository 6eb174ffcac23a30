"""Dropout, batch norm and layer norm, forward and backward (C kernels; same
signatures as ``fastnn.reference.layers``).

Shapes:
    dropout:     x (any shape); mask uint8 of x's shape (1 = kept)
    batch_norm:  x (N, C); weight, bias, running_mean, running_var, save_* (C,)
    layer_norm:  x (*, C) normalised over the last axis; weight, bias (C,);
                 save_mean, save_invstd of shape x.shape[:-1]

Backward functions return the gradient w.r.t. the input (or None when
``need_grad_input`` is False) and ACCUMULATE into ``grad_weight``/``grad_bias``
when those are given. ``out`` may be the input array itself (in place); any
other overlap between an output and an input raises.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._checks import as_float, check_flag, check_inplace, check_no_overlap, check_p, check_scalar
from .._checks import check_seed, out_or_new

_MASK_DTYPES = (np.dtype(np.uint8), np.dtype(np.bool_))
_inplace = check_inplace


# ------------------------------------------------------------------ checks

def _vector(a, name: str, c: int, dtype) -> np.ndarray | None:
    """An optional (c,) input vector, converted to dtype."""
    if a is None:
        return None
    a = as_float(a, name, dtype=dtype)
    if a.shape != (c,):
        raise ValueError(f"{name}: expected shape ({c},), got {a.shape}")
    return a


def _mask(mask, name: str, shape, output: bool) -> np.ndarray:
    if output and not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(mask).__name__}")
    mask = np.asarray(mask)
    if mask.dtype not in _MASK_DTYPES:
        raise TypeError(f"{name}: expected a uint8 array, got dtype {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {mask.shape}")
    if not mask.flags.c_contiguous:
        if output:
            raise ValueError(f"{name}: expected a C-contiguous array")
        mask = np.ascontiguousarray(mask)
    if output and not mask.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return mask


_no_overlap = check_no_overlap


def _need_batch(n: int, shape) -> None:
    if n < 2:
        raise ValueError(f"x: Expected more than 1 value per channel when training, "
                         f"got input of shape {tuple(shape)}")


# ----------------------------------------------------------------- dropout

def dropout(x, p, seed, out=None, mask=None):
    """y = x·keep/(1−p) with keep_i = [u(seed, i) >= p], u the counter-based
    uniform of src_c/layers.h (a pure function of seed and the flat C-order
    index i). p in [0, 1]; p == 1 gives zeros. ``mask`` (uint8, x's shape)
    receives keep. ``out`` may be x."""
    p = check_p(p)
    seed = check_seed(seed)
    x = as_float(x, "x")
    out = out_or_new(out, "out", x.shape, x.dtype)
    if mask is not None:
        mask = _mask(mask, "mask", x.shape, output=True)
    _no_overlap([("out", out), ("mask", mask)], [("x", x)], may_alias=("x",))
    _core.dropout_forward(out, mask, x, p, seed)
    return out


def dropout_backward(grad_out, mask, p, out=None):
    """grad_out·mask/(1−p) (zeros when p == 1). ``out`` may be grad_out."""
    p = check_p(p)
    grad_out = as_float(grad_out, "grad_out")
    mask = _mask(mask, "mask", grad_out.shape, output=False)
    out = out_or_new(out, "out", grad_out.shape, grad_out.dtype)
    _no_overlap([("out", out)], [("grad_out", grad_out), ("mask", mask)], may_alias=("grad_out",))
    _core.dropout_backward(out, grad_out, mask, p)
    return out


# -------------------------------------------------------------- batch norm

def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5,
               out=None, save_mean=None, save_invstd=None):
    """Batch normalisation of x (N, C) over the batch axis.

    training=True, or no running statistics: normalise with the batch mean and
    biased variance (needs N >= 2); when training with running statistics,
    update them in place: running = (1−momentum)·running + momentum·batch, with
    the unbiased variance. training=False with running statistics: normalise
    with them. weight/bias None mean γ = 1, β = 0. save_mean/save_invstd (C,)
    receive the mean and 1/√(var + eps) used, for the backward.
    """
    x = as_float(x, "x", ndim=2)
    n, c = x.shape
    training = check_flag(training, "training")
    momentum = check_scalar(momentum, "momentum", low=0.0, high=1.0)
    eps = check_scalar(eps, "eps", low=0.0)
    weight = _vector(weight, "weight", c, x.dtype)
    bias = _vector(bias, "bias", c, x.dtype)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean: running_mean and running_var must both be given or both be None")
    running_mean = _inplace(running_mean, "running_mean", (c,), x.dtype)
    running_var = _inplace(running_var, "running_var", (c,), x.dtype)
    if training or running_mean is None:
        _need_batch(n, x.shape)
    out = out_or_new(out, "out", x.shape, x.dtype)
    save_mean = _inplace(save_mean, "save_mean", (c,), x.dtype)
    save_invstd = _inplace(save_invstd, "save_invstd", (c,), x.dtype)
    _no_overlap([("out", out), ("save_mean", save_mean), ("save_invstd", save_invstd),
                 ("running_mean", running_mean), ("running_var", running_var)],
                [("x", x), ("weight", weight), ("bias", bias)], may_alias=("x",))
    _core.batch_norm_forward(out, save_mean, save_invstd, running_mean, running_var, x,
                             weight, bias, n, c, training, momentum, eps)
    return out


def batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight=None,
                        grad_bias=None, training=True, need_grad_input=True, out=None):
    """Gradients of ``batch_norm`` from its saved mean and invstd.

    ``training`` says whether the forward normalised with batch statistics
    (then the mean and variance depend on x and dx has two extra terms).
    Accumulates Σ dy·x̂ into grad_weight and Σ dy into grad_bias when given;
    returns dx (N, C), or None when need_grad_input is False.
    """
    grad_out = as_float(grad_out, "grad_out", ndim=2)
    n, c = grad_out.shape
    dt = grad_out.dtype
    x = as_float(x, "x", dtype=dt)
    if x.shape != grad_out.shape:
        raise ValueError(f"x: expected shape {grad_out.shape} (as grad_out), got {x.shape}")
    training = check_flag(training, "training")
    need_grad_input = check_flag(need_grad_input, "need_grad_input")
    weight = _vector(weight, "weight", c, dt)
    if save_mean is None or save_invstd is None:
        raise TypeError(f"{'save_mean' if save_mean is None else 'save_invstd'}: expected the array "
                        f"saved by batch_norm, got None")
    save_mean = _vector(save_mean, "save_mean", c, dt)
    save_invstd = _vector(save_invstd, "save_invstd", c, dt)
    grad_weight = _inplace(grad_weight, "grad_weight", (c,), dt)
    grad_bias = _inplace(grad_bias, "grad_bias", (c,), dt)
    out = out_or_new(out, "out", grad_out.shape, dt) if need_grad_input else None
    _no_overlap([("out", out), ("grad_weight", grad_weight), ("grad_bias", grad_bias)],
                [("grad_out", grad_out), ("x", x), ("weight", weight), ("save_mean", save_mean),
                 ("save_invstd", save_invstd)], may_alias=("grad_out", "x"))
    _core.batch_norm_backward(out, grad_weight, grad_bias, grad_out, x, weight, save_mean,
                              save_invstd, n, c, training)
    return out


# -------------------------------------------------------------- layer norm

def _rows_cols(x: np.ndarray):
    if x.ndim == 0:
        raise ValueError("x: layer norm needs at least a 1-D array, got a scalar")
    cols = x.shape[-1]
    if cols == 0:
        raise ValueError(f"x: layer norm over an empty last axis, shape {x.shape}")
    return int(np.prod(x.shape[:-1], dtype=np.int64)), cols


def layer_norm(x, weight, bias, eps=1e-5, out=None, save_mean=None, save_invstd=None):
    """(x − μ)/√(σ² + eps)·weight + bias, μ and σ² (biased) over the last axis.
    save_mean/save_invstd (shape x.shape[:-1]) receive μ and 1/√(σ² + eps)."""
    x = as_float(x, "x")
    rows, cols = _rows_cols(x)
    eps = check_scalar(eps, "eps", low=0.0)
    weight = _vector(weight, "weight", cols, x.dtype)
    bias = _vector(bias, "bias", cols, x.dtype)
    out = out_or_new(out, "out", x.shape, x.dtype)
    save_mean = _inplace(save_mean, "save_mean", x.shape[:-1], x.dtype)
    save_invstd = _inplace(save_invstd, "save_invstd", x.shape[:-1], x.dtype)
    _no_overlap([("out", out), ("save_mean", save_mean), ("save_invstd", save_invstd)],
                [("x", x), ("weight", weight), ("bias", bias)], may_alias=("x",))
    _core.layer_norm_forward(out, save_mean, save_invstd, x, weight, bias, rows, cols, eps)
    return out


def layer_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight=None,
                        grad_bias=None, need_grad_input=True, out=None):
    """Gradients of ``layer_norm`` from its saved mean and invstd; accumulates
    Σ dy·x̂ into grad_weight and Σ dy into grad_bias (sums over every row)."""
    grad_out = as_float(grad_out, "grad_out")
    rows, cols = _rows_cols(grad_out)
    dt = grad_out.dtype
    x = as_float(x, "x", dtype=dt)
    if x.shape != grad_out.shape:
        raise ValueError(f"x: expected shape {grad_out.shape} (as grad_out), got {x.shape}")
    need_grad_input = check_flag(need_grad_input, "need_grad_input")
    weight = _vector(weight, "weight", cols, dt)
    if save_mean is None or save_invstd is None:
        raise TypeError(f"{'save_mean' if save_mean is None else 'save_invstd'}: expected the array "
                        f"saved by layer_norm, got None")
    stats_shape = grad_out.shape[:-1]
    save_mean = as_float(save_mean, "save_mean", dtype=dt)
    save_invstd = as_float(save_invstd, "save_invstd", dtype=dt)
    for name, a in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if a.shape != stats_shape:
            raise ValueError(f"{name}: expected shape {stats_shape}, got {a.shape}")
    grad_weight = _inplace(grad_weight, "grad_weight", (cols,), dt)
    grad_bias = _inplace(grad_bias, "grad_bias", (cols,), dt)
    out = out_or_new(out, "out", grad_out.shape, dt) if need_grad_input else None
    _no_overlap([("out", out), ("grad_weight", grad_weight), ("grad_bias", grad_bias)],
                [("grad_out", grad_out), ("x", x), ("weight", weight), ("save_mean", save_mean),
                 ("save_invstd", save_invstd)], may_alias=("grad_out", "x"))
    _core.layer_norm_backward(out, grad_weight, grad_bias, grad_out, x, weight, save_mean,
                              save_invstd, rows, cols)
    return out


__all__ = [
    "dropout", "dropout_backward", "batch_norm", "batch_norm_backward",
    "layer_norm", "layer_norm_backward",
]
