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

from .. import _core
from .._checks import (check_batch_norm, check_batch_norm_backward, check_dropout, check_dropout_backward,
                       check_layer_norm, check_layer_norm_backward)


# ----------------------------------------------------------------- dropout

def dropout(x, p, seed, out=None, mask=None):
    """y = x·keep/(1−p) with keep_i = [u(seed, i) >= p], u the counter-based
    uniform of src_c/layers.h (a pure function of seed and the flat C-order
    index i). p in [0, 1]; p == 1 gives zeros. ``mask`` (uint8, x's shape)
    receives keep. ``out`` may be x."""
    x, p, seed, out, mask = check_dropout(x, p, seed, out, mask)
    _core.dropout_forward(out, mask, x, p, seed)
    return out


def dropout_backward(grad_out, mask, p, out=None):
    """grad_out·mask/(1−p) (zeros when p == 1). ``out`` may be grad_out."""
    grad_out, mask, p, out = check_dropout_backward(grad_out, mask, p, out)
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
    (x, weight, bias, running_mean, running_var, training, momentum, eps, out, save_mean,
     save_invstd) = check_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, out,
                                     save_mean, save_invstd)
    n, c = x.shape
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
    (grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, training, need_grad_input,
     out) = check_batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias,
                                      training, need_grad_input, out)
    n, c = grad_out.shape
    _core.batch_norm_backward(out, grad_weight, grad_bias, grad_out, x, weight, save_mean,
                              save_invstd, n, c, training)
    return out


# -------------------------------------------------------------- layer norm

def layer_norm(x, weight, bias, eps=1e-5, out=None, save_mean=None, save_invstd=None):
    """(x − μ)/√(σ² + eps)·weight + bias, μ and σ² (biased) over the last axis.
    save_mean/save_invstd (shape x.shape[:-1]) receive μ and 1/√(σ² + eps)."""
    x, weight, bias, eps, out, save_mean, save_invstd, (rows, cols) = check_layer_norm(
        x, weight, bias, eps, out, save_mean, save_invstd)
    _core.layer_norm_forward(out, save_mean, save_invstd, x, weight, bias, rows, cols, eps)
    return out


def layer_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight=None,
                        grad_bias=None, need_grad_input=True, out=None):
    """Gradients of ``layer_norm`` from its saved mean and invstd; accumulates
    Σ dy·x̂ into grad_weight and Σ dy into grad_bias (sums over every row)."""
    (grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, need_grad_input, out,
     (rows, cols)) = check_layer_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight,
                                               grad_bias, need_grad_input, out)
    _core.layer_norm_backward(out, grad_weight, grad_bias, grad_out, x, weight, save_mean,
                              save_invstd, rows, cols)
    return out


__all__ = [
    "dropout", "dropout_backward", "batch_norm", "batch_norm_backward",
    "layer_norm", "layer_norm_backward",
]
