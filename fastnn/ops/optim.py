"""Fused optimizer updates and gradient-clipping helpers (C kernels; same signatures
as ``fastnn.reference.optim``).

Every update works in place on flat arrays of one float dtype and equal size —
typically a parameter arena, its gradient arena and state arenas of the same
layout — in one parallel pass, with PyTorch's formulas (``shared/semantics.md``).
The gradient is only read. Hyper-parameters are Python floats; the step count
``step`` is the count *after* this step's increment (the first step is 1).

Arguments are checked here before any C code runs: arrays must be
``numpy.ndarray`` (no coercion: the update is in place), C-contiguous, of one
dtype and size, updated ones writable, and none may share memory with another;
hyper-parameters must be finite and in PyTorch's ranges. Errors name the
argument.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from .. import _core
from ._validate import FLOAT_DTYPES, as_float, check_scalar

# --- validation shared with fastnn.reference.optim -----------------------------------


def _array(a, name: str, like=None, writable: bool = True) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray (updated in place), got {type(a).__name__}")
    if like is None:
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
    else:
        if a.dtype != like.dtype:
            raise TypeError(f"{name}: expected dtype {like.dtype} (as param), got {a.dtype}")
        if a.size != like.size:
            raise ValueError(f"{name}: expected {like.size} elements (as param), got {a.size}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if not a.flags.aligned:
        raise ValueError(f"{name}: expected an array aligned to its items")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return a


def _disjoint(named) -> None:
    """Contiguous arrays share memory exactly when their byte ranges intersect."""
    spans = []
    for name, a in named:
        if a is None or a.nbytes == 0:
            continue
        lo = a.__array_interface__["data"][0]
        hi = lo + a.nbytes
        for other, (olo, ohi) in spans:
            if lo < ohi and olo < hi:
                raise ValueError(f"{name}: must not share memory with {other}")
        spans.append((name, (lo, hi)))


def check_real(value, name: str, *, low=None, high=None, high_open=False) -> float:
    """``check_scalar`` with a fast path for plain Python floats and ints (the usual case:
    an optimizer validates its hyper-parameters at every step)."""
    t = type(value)
    if t is float or t is int:  # not bool: type(True) is bool
        v = float(value)
        if (math.isfinite(v) and (low is None or v >= low)
                and (high is None or (v < high if high_open else v <= high))):
            return v
    return check_scalar(value, name, low=low, high=high, high_open=high_open)


def _arrays(*values) -> bool:
    """All are ndarrays (the compiled wrappers take them typed, and must never see None)."""
    for v in values:
        if not isinstance(v, np.ndarray):
            return False
    return True


def _bools(*values) -> bool:
    """All are True or False (the flags' usual form; _flag also takes 0, 1 and numpy bools)."""
    for v in values:
        if v is not True and v is not False:
            return False
    return True


def _finite_float(v) -> bool:
    return type(v) is float and math.isfinite(v)


def _reals_ok(*values) -> bool:
    """All are finite Python floats >= 0 (what check_real(v, low=0.0) accepts without a word)."""
    for v in values:
        if type(v) is not float or not (0.0 <= v < math.inf):
            return False
    return True


def _unit_float(v) -> bool:
    """A Python float in [0, 1) (Adam's betas)."""
    return type(v) is float and 0.0 <= v < 1.0


def _flag(value, name: str) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {value!r}")


def _step(value, name: str = "step") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an integer step count, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected a step count >= 1 (counted after the increment), got {value}")
    if value >= 2**63:  # the kernels take an int64 step count
        raise ValueError(f"{name}: expected a step count < 2**63, got {value}")
    return int(value)


def check_sgd(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
              maximize, first_step, overlap=True):
    """Validate sgd_step's arguments; returns the normalised hyper-parameters. ``overlap``:
    also check that no two arrays share memory (the compiled layer checks that itself)."""
    param = _array(param, "param")
    grad = _array(grad, "grad", like=param, writable=False)
    hp = dict(lr=check_real(lr, "lr", low=0.0), momentum=check_real(momentum, "momentum", low=0.0),
              dampening=check_real(dampening, "dampening"),
              weight_decay=check_real(weight_decay, "weight_decay", low=0.0),
              nesterov=_flag(nesterov, "nesterov"), maximize=_flag(maximize, "maximize"),
              first_step=_flag(first_step, "first_step"))
    if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
        raise ValueError("nesterov: Nesterov momentum requires a momentum > 0 and zero dampening, "
                         f"got momentum={hp['momentum']}, dampening={hp['dampening']}")
    if hp["momentum"] != 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer: required when momentum != 0")
        _array(momentum_buffer, "momentum_buffer", like=param)
    else:
        momentum_buffer = None
    if overlap:
        _disjoint([("param", param), ("grad", grad), ("momentum_buffer", momentum_buffer)])
    return hp


def check_adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
               weight_decay, amsgrad, maximize, decoupled_weight_decay, overlap=True):
    param = _array(param, "param")
    grad = _array(grad, "grad", like=param, writable=False)
    _array(exp_avg, "exp_avg", like=param)
    _array(exp_avg_sq, "exp_avg_sq", like=param)
    hp = dict(step=_step(step), lr=check_real(lr, "lr", low=0.0),
              beta1=check_real(beta1, "beta1", low=0.0, high=1.0, high_open=True),
              beta2=check_real(beta2, "beta2", low=0.0, high=1.0, high_open=True),
              eps=check_real(eps, "eps", low=0.0),
              weight_decay=check_real(weight_decay, "weight_decay", low=0.0),
              amsgrad=_flag(amsgrad, "amsgrad"), maximize=_flag(maximize, "maximize"),
              decoupled_weight_decay=_flag(decoupled_weight_decay, "decoupled_weight_decay"))
    if hp["amsgrad"]:
        if max_exp_avg_sq is None:
            raise ValueError("max_exp_avg_sq: required when amsgrad=True")
        _array(max_exp_avg_sq, "max_exp_avg_sq", like=param)
    else:
        max_exp_avg_sq = None
    if overlap:
        _disjoint([("param", param), ("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq),
                   ("max_exp_avg_sq", max_exp_avg_sq)])
    return hp


def check_rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                  momentum, centered, maximize, overlap=True):
    param = _array(param, "param")
    grad = _array(grad, "grad", like=param, writable=False)
    _array(square_avg, "square_avg", like=param)
    hp = dict(lr=check_real(lr, "lr", low=0.0), alpha=check_real(alpha, "alpha", low=0.0),
              eps=check_real(eps, "eps", low=0.0),
              weight_decay=check_real(weight_decay, "weight_decay", low=0.0),
              momentum=check_real(momentum, "momentum", low=0.0),
              centered=_flag(centered, "centered"), maximize=_flag(maximize, "maximize"))
    if hp["centered"]:
        if grad_avg is None:
            raise ValueError("grad_avg: required when centered=True")
        _array(grad_avg, "grad_avg", like=param)
    else:
        grad_avg = None
    if hp["momentum"] > 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer: required when momentum > 0")
        _array(momentum_buffer, "momentum_buffer", like=param)
    else:
        momentum_buffer = None
    if overlap:
        _disjoint([("param", param), ("grad", grad), ("square_avg", square_avg), ("grad_avg", grad_avg),
                   ("momentum_buffer", momentum_buffer)])
    return hp


def check_adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize, overlap=True):
    param = _array(param, "param")
    grad = _array(grad, "grad", like=param, writable=False)
    _array(state_sum, "state_sum", like=param)
    hp = dict(step=_step(step), lr=check_real(lr, "lr", low=0.0),
              lr_decay=check_real(lr_decay, "lr_decay", low=0.0),
              weight_decay=check_real(weight_decay, "weight_decay", low=0.0),
              eps=check_real(eps, "eps", low=0.0), maximize=_flag(maximize, "maximize"))
    if overlap:
        _disjoint([("param", param), ("grad", grad), ("state_sum", state_sum)])
    return hp


def check_norm_type(norm_type) -> float:
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, (Real, np.floating, np.integer)):
        raise TypeError(f"norm_type: expected a real number, got {type(norm_type).__name__}")
    p = float(norm_type)
    if not (p > 0):  # also rejects NaN
        raise ValueError(f"norm_type: expected a value > 0 or inf, got {p}")
    return p


def check_bounds(low, high):
    vals = []
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Real, np.floating, np.integer)):
            raise TypeError(f"{name}: expected a real number, got {type(v).__name__}")
        v = float(v)
        if math.isnan(v):
            raise ValueError(f"{name}: expected a number, got nan")
        vals.append(v)
    if vals[0] > vals[1]:
        raise ValueError(f"low: expected low <= high, got low={vals[0]}, high={vals[1]}")
    return vals


# --- the kernels ----------------------------------------------------------------------


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=False):
    """SGD update in place. ``first_step``: the momentum buffer is set to the (decayed,
    sign-adjusted) gradient instead of being blended (PyTorch's first step)."""
    if (_arrays(param, grad) and _bools(nesterov, maximize, first_step) and _reals_ok(lr, momentum, weight_decay)
            and _finite_float(dampening) and not (nesterov and (momentum <= 0 or dampening != 0))):
        # Fast path: the hyper-parameters are plain and in range, and the compiled wrapper checks
        # the arrays completely (raising before it touches memory); a complaint from it goes
        # through the checks below, which name the problem properly.
        mode = 0 if momentum == 0 else (1 if first_step else 2)
        try:
            _core.sgd_step(param, grad, momentum_buffer if mode else None, lr, momentum, dampening,
                           weight_decay, mode, nesterov, maximize)
            return
        except (ValueError, TypeError):
            pass
    hp = check_sgd(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                   maximize, first_step, overlap=False)  # _core checks overlap
    mode = 0 if hp["momentum"] == 0 else (1 if hp["first_step"] else 2)
    _core.sgd_step(param, grad, momentum_buffer if mode else None, hp["lr"], hp["momentum"],
                   hp["dampening"], hp["weight_decay"], mode, hp["nesterov"], hp["maximize"])


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr, beta1, beta2, eps,
              weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False):
    """Adam (AdamW when ``decoupled_weight_decay``) update in place at step ``step`` >= 1."""
    if (_arrays(param, grad, exp_avg, exp_avg_sq) and _bools(amsgrad, maximize, decoupled_weight_decay)
            and _reals_ok(lr, eps, weight_decay)
            and _unit_float(beta1) and _unit_float(beta2) and type(step) is int and 1 <= step < 2**63):
        try:  # fast path, as in sgd_step
            _core.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None, step,
                            lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)
            return
        except (ValueError, TypeError):
            pass
    hp = check_adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                    weight_decay, amsgrad, maximize, decoupled_weight_decay, overlap=False)
    _core.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if hp["amsgrad"] else None,
                    hp["step"], hp["lr"], hp["beta1"], hp["beta2"], hp["eps"], hp["weight_decay"],
                    hp["amsgrad"], hp["maximize"], hp["decoupled_weight_decay"])


def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr, alpha, eps,
                 weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    """RMSprop update in place (``grad_avg`` when centered, ``momentum_buffer`` when momentum > 0)."""
    hp = check_rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                       momentum, centered, maximize, overlap=False)
    _core.rmsprop_step(param, grad, square_avg, grad_avg if hp["centered"] else None,
                       momentum_buffer if hp["momentum"] > 0 else None, hp["lr"], hp["alpha"], hp["eps"],
                       hp["weight_decay"], hp["momentum"], hp["centered"], hp["maximize"])


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                 maximize=False):
    """Adagrad update in place at step ``step`` >= 1."""
    hp = check_adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize, overlap=False)
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
    _array(x, "x")
    _core.scale_(x, check_scalar(factor, "factor"))
    return x


def clamp_(x, low, high):
    """x = min(max(x, low), high) in place (NaN stays NaN; ±inf bounds allowed); returns x."""
    _array(x, "x")
    lo, hi = check_bounds(low, high)
    _core.clamp_(x, lo, hi)
    return x


def all_finite(x) -> bool:
    """True when x holds no NaN or infinity."""
    return bool(_core.all_finite(as_float(x, "x")))


__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "grad_norm", "scale_", "clamp_",
           "all_finite"]
