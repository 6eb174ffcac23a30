"""Optimizer updates and clipping helpers in plain NumPy: the spec for ``fastnn.ops.optim``.

Each update is PyTorch's per-element formula (``shared/semantics.md``) written out
with NumPy arrays, in the array's dtype, with every per-step constant formed once
in double and rounded to that dtype once — exactly what the C kernels do, so the
two agree to the last bit wherever the operations are the same IEEE operations.
Arguments are validated by the same checks as ``fastnn.ops`` (``fastnn._checks``), overlap
included, so both backends raise the same errors.

``grad_norm`` copies the C kernel's summation order (blocks of FNN_REDUCE_BLOCK elements, 8
interleaved lanes each) so that the two agree bit for bit; tests/test_ops_optim.py also checks
it against ``np.linalg.norm``, which sums differently, so the blocking is not its own spec.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import (as_float, check_adagrad, check_adam, check_bounds, check_norm_type, check_rmsprop,
                       check_scalar, check_sgd, check_state_array)

# Reduction blocking of the C norm kernel (src_c/common.h FNN_REDUCE_BLOCK, 8 lanes per block).
_BLOCK = 4096
_LANES = 8


def _signed(grad, maximize: bool):
    return -grad if maximize else grad.copy()


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=False):
    hp = check_sgd(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                   maximize, first_step)
    t = param.dtype.type
    p, g = param.reshape(-1), _signed(grad.reshape(-1), hp["maximize"])
    if hp["weight_decay"] != 0:
        g = g + t(hp["weight_decay"]) * p                      # g ← g + λθ
    if hp["momentum"] != 0:
        b = momentum_buffer.reshape(-1)
        if hp["first_step"]:
            b[...] = g                                         # b ← g (no dampening)
        else:
            b[...] = t(hp["momentum"]) * b + t(1.0 - hp["dampening"]) * g
        g = g + t(hp["momentum"]) * b if hp["nesterov"] else b.copy()
    p[...] = p - t(hp["lr"]) * g                               # θ ← θ − γg


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr, beta1, beta2, eps,
              weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False):
    hp = check_adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                    weight_decay, amsgrad, maximize, decoupled_weight_decay)
    t = param.dtype.type
    p, g = param.reshape(-1), _signed(grad.reshape(-1), hp["maximize"])
    m, v = exp_avg.reshape(-1), exp_avg_sq.reshape(-1)
    lr_, wd = hp["lr"], hp["weight_decay"]
    if wd != 0:
        if hp["decoupled_weight_decay"]:
            p[...] = p * t(1.0 - lr_ * wd)                     # AdamW: θ ← θ(1 − γλ)
        else:
            g = g + t(wd) * p                                  # Adam: g ← g + λθ
    m[...] = m + t(1.0 - hp["beta1"]) * (g - m)                # m ← m + (1−β1)(g − m)
    v[...] = t(hp["beta2"]) * v + t(1.0 - hp["beta2"]) * (g * g)
    bc1 = 1.0 - hp["beta1"] ** hp["step"]                      # bias corrections in double
    bc2 = 1.0 - hp["beta2"] ** hp["step"]
    vv = v
    if hp["amsgrad"]:
        vm = max_exp_avg_sq.reshape(-1)
        vm[...] = np.maximum(vm, v)                            # max over the raw v
        vv = vm
    denom = np.sqrt(vv) / t(math.sqrt(bc2)) + t(hp["eps"])
    p[...] = p - t(lr_ / bc1) * (m / denom)


def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr, alpha, eps,
                 weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    hp = check_rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                       momentum, centered, maximize)
    t = param.dtype.type
    p, g = param.reshape(-1), _signed(grad.reshape(-1), hp["maximize"])
    v = square_avg.reshape(-1)
    c = t(1.0 - hp["alpha"])
    if hp["weight_decay"] != 0:
        g = g + t(hp["weight_decay"]) * p
    v[...] = t(hp["alpha"]) * v + c * (g * g)                  # v ← αv + (1−α)g²
    if hp["centered"]:
        ga = grad_avg.reshape(-1)
        ga[...] = ga + c * (g - ga)                            # ḡ ← ḡ + (1−α)(g − ḡ)
        with np.errstate(invalid="ignore"):
            avg = np.sqrt(v - ga * ga) + t(hp["eps"])
    else:
        avg = np.sqrt(v) + t(hp["eps"])
    if hp["momentum"] > 0:
        b = momentum_buffer.reshape(-1)
        b[...] = t(hp["momentum"]) * b + g / avg               # b ← μb + g/avg
        p[...] = p - t(hp["lr"]) * b
    else:
        p[...] = p - t(hp["lr"]) * (g / avg)


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                 maximize=False):
    hp = check_adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize)
    t = param.dtype.type
    p, g = param.reshape(-1), _signed(grad.reshape(-1), hp["maximize"])
    s = state_sum.reshape(-1)
    if hp["weight_decay"] != 0:
        g = g + t(hp["weight_decay"]) * p
    clr = hp["lr"] / (1.0 + (hp["step"] - 1) * hp["lr_decay"])
    s[...] = s + g * g                                         # s ← s + g²
    p[...] = p - t(clr) * (g / (np.sqrt(s) + t(hp["eps"])))


def grad_norm(x, norm_type=2.0) -> float:
    """‖x‖_p in double, summed like the C kernel: blocks of 4096 elements, 8 interleaved lane
    sums per block (combined pairwise), block sums added in order."""
    p = check_norm_type(norm_type)
    x = as_float(x, "x").reshape(-1).astype(np.float64)
    if x.size == 0:
        return 0.0
    a = np.abs(x)
    if math.isinf(p):
        return float(np.max(a))                                # NaN propagates through np.max
    terms = x * x if p == 2.0 else a if p == 1.0 else a ** p
    nblocks = -(-terms.size // _BLOCK)
    padded = np.zeros(nblocks * _BLOCK)
    padded[:terms.size] = terms
    lanes = np.zeros((nblocks, _LANES))
    for row in padded.reshape(nblocks, _BLOCK // _LANES, _LANES).transpose(1, 0, 2):
        lanes += row                                           # each lane summed in index order
    blocks = ((lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])) + \
             ((lanes[:, 4] + lanes[:, 5]) + (lanes[:, 6] + lanes[:, 7]))
    total = 0.0
    for b in blocks:
        total += float(b)
    if p == 2.0:
        return math.sqrt(total)
    if p == 1.0:
        return total
    return total ** (1.0 / p)


def scale_(x, factor):
    check_state_array(x, "x")
    x[...] = x * x.dtype.type(check_scalar(factor, "factor"))
    return x


def clamp_(x, low, high):
    check_state_array(x, "x")
    lo, hi = check_bounds(low, high)
    t = x.dtype.type
    x[...] = np.where(x < t(lo), t(lo), np.where(x > t(hi), t(hi), x))
    return x


def all_finite(x) -> bool:
    return bool(np.isfinite(as_float(x, "x")).all())


__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "grad_norm", "scale_", "clamp_",
           "all_finite"]
