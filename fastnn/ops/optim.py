"""Fused optimizer updates and gradient-clipping helpers (C kernels; same signatures
as ``fastnn.reference.optim``).

Every update works in place on flat arrays of one float dtype and equal size —
typically a parameter arena, its gradient arena and state arenas of the same
layout — in one parallel pass, with PyTorch's formulas (``shared/semantics.md``).
The gradient is only read. Hyper-parameters are Python floats; the step count
``step`` is the count *after* this step's increment (the first step is 1).

Arguments are checked by ``fastnn._checks`` (as in the reference) before any C code runs; the
compiled wrapper checks the arrays again, and their overlap, right before C. Arrays must be
``numpy.ndarray`` (no coercion: the update is in place), C-contiguous, of one
dtype and size, updated ones writable, and none may share memory with another;
hyper-parameters must be finite and in PyTorch's ranges. Errors name the
argument.
"""
from __future__ import annotations

from .. import _core, _enums
from .._checks import (as_float, check_adagrad, check_adam, check_bounds, check_norm_type, check_rmsprop,
                       check_scalar, check_sgd, check_state_array)

check_real = check_scalar  # the name fastnn.optim.optimizer imports (new code: fastnn._checks.check_scalar)

# --- the kernels ----------------------------------------------------------------------

# SgdMode's (NO_MOMENTUM, FIRST_STEP, LATER_STEP) as plain ints, read from the core on first use:
# two IntEnum member lookups cost as much as the rest of a tiny update's Python.
_SGD_MODES = ()


def _sgd_modes() -> tuple:
    global _SGD_MODES
    modes = _enums.SgdMode
    _SGD_MODES = (int(modes.NO_MOMENTUM), int(modes.FIRST_STEP), int(modes.LATER_STEP))
    return _SGD_MODES


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=False):
    """SGD update in place. ``first_step``: the momentum buffer is set to the (decayed,
    sign-adjusted) gradient instead of being blended (PyTorch's first step)."""
    # The last argument, memory=False (positional: cheaper to pass): the wrapper checks the arrays.
    hp = check_sgd(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                   maximize, first_step, False)  # memory=False
    momentum = hp["momentum"]
    no_momentum, first_step, later_step = _SGD_MODES or _sgd_modes()
    if momentum == 0:
        mode, momentum_buffer = no_momentum, None
    else:
        mode = first_step if hp["first_step"] else later_step
    _core.sgd_step(param, grad, momentum_buffer, hp["lr"], momentum, hp["dampening"], hp["weight_decay"],
                   mode, hp["nesterov"], hp["maximize"])


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr, beta1, beta2, eps,
              weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False):
    """Adam (AdamW when ``decoupled_weight_decay``) update in place at step ``step`` >= 1."""
    hp = check_adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                    weight_decay, amsgrad, maximize, decoupled_weight_decay, False)  # memory=False
    _core.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if hp["amsgrad"] else None,
                    hp["step"], hp["lr"], hp["beta1"], hp["beta2"], hp["eps"], hp["weight_decay"],
                    hp["amsgrad"], hp["maximize"], hp["decoupled_weight_decay"])


def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr, alpha, eps,
                 weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    """RMSprop update in place (``grad_avg`` when centered, ``momentum_buffer`` when momentum > 0)."""
    hp = check_rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                       momentum, centered, maximize, False)  # memory=False
    _core.rmsprop_step(param, grad, square_avg, grad_avg if hp["centered"] else None,
                       momentum_buffer if hp["momentum"] > 0 else None, hp["lr"], hp["alpha"], hp["eps"],
                       hp["weight_decay"], hp["momentum"], hp["centered"], hp["maximize"])


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                 maximize=False):
    """Adagrad update in place at step ``step`` >= 1."""
    hp = check_adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize,
                       False)  # memory=False
    _core.adagrad_step(param, grad, state_sum, hp["step"], hp["lr"], hp["lr_decay"], hp["weight_decay"],
                       hp["eps"], hp["maximize"])


def grad_norm(x, norm_type=2.0) -> float:
    """‖x‖_p over all elements, as a Python float computed in double: p = 2, 1, inf (max |x|)
    or any p > 0. Summed in fixed blocks (same result for any thread count); NaN → nan."""
    p = check_norm_type(norm_type)
    x = as_float(x, "x")
    return float(_core.grad_norm(x, p))


def scale_(x, factor):
    """x *= factor in place; returns x."""
    check_state_array(x, "x")
    _core.scale_(x, check_scalar(factor, "factor"))
    return x


def clamp_(x, low, high):
    """x = min(max(x, low), high) in place (NaN stays NaN; ±inf bounds allowed); returns x."""
    check_state_array(x, "x")
    lo, hi = check_bounds(low, high)
    _core.clamp_(x, lo, hi)
    return x


def all_finite(x) -> bool:
    """True when x holds no NaN or infinity."""
    return bool(_core.all_finite(as_float(x, "x")))


__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "grad_norm", "scale_", "clamp_",
           "all_finite"]
