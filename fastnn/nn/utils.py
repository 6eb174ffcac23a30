"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both take a single Parameter or an iterable of them (``model.parameters()``). Where the
given parameters fill a whole arena (``fastnn.nn.arena``), its flat gradient buffer is
processed in one kernel call — one norm, one scale — otherwise each parameter's gradient
on its own. The padding between parameters in an arena has zero gradient, so it changes
no norm and scaling or clamping it is harmless.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Union

import numpy as np

from .. import backend
from .._checks import check_scalar
from .._checks import check_norm_type
from .parameter import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _param_list(parameters) -> List[Parameter]:
    if isinstance(parameters, Parameter):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(f"parameters: expected a Parameter or an iterable of Parameters, "
                        f"got {type(parameters).__name__}") from None
    seen, out = set(), []
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters: expected fastnn.nn.Parameter objects, got {type(p).__name__}")
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _grad_buffers(params: List[Parameter]) -> List[np.ndarray]:
    """Flat gradient buffers covering exactly ``params``: whole arenas where they are covered
    completely, single gradients otherwise."""
    ids = {id(p) for p in params}
    buffers, done = [], set()
    for p in params:
        arena = p._arena
        if arena is not None and not arena.stale and all(id(q) in ids for q in arena.params):
            if id(arena) not in done:
                done.add(id(arena))
                buffers.append(arena.grad)
        else:
            buffers.append(p.grad.reshape(-1))
    return buffers


def clip_grad_norm_(parameters: Union[Parameter, Iterable[Parameter]], max_norm, norm_type=2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    The total norm is the norm of the per-buffer norms (= the norm of all gradient elements
    concatenated), computed in double. As PyTorch, every gradient is multiplied by
    ``min(1, max_norm / (total + 1e-6))`` — in effect, scaled when total > max_norm — and the
    total norm (before clipping) is returned as a float. A non-finite total raises
    RuntimeError with ``error_if_nonfinite=True``; otherwise the gradients are scaled by it
    anyway (NaN/zero), as PyTorch does.
    """
    params = _param_list(parameters)
    max_norm = check_scalar(max_norm, "max_norm", low=0.0)
    p = check_norm_type(norm_type)
    if not params:
        return 0.0
    ops = backend.current()
    buffers = _grad_buffers(params)
    norms = np.array([ops.grad_norm(g, p) for g in buffers], dtype=np.float64)
    total = ops.grad_norm(norms, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {p} of the gradients is non-finite "
                           f"({total}), so it cannot be clipped; pass error_if_nonfinite=False to scale "
                           "the gradients by it anyway")
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # PyTorch multiplies by min(coef, 1) unconditionally; ×1 changes nothing
        for g in buffers:
            if math.isnan(coef):
                g.fill(np.nan)  # what multiplying by NaN gives
            else:
                ops.scale_(g, coef)
    return total


def clip_grad_value_(parameters: Union[Parameter, Iterable[Parameter]], clip_value) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place (NaN stays NaN)."""
    params = _param_list(parameters)
    c = check_scalar(clip_value, "clip_value", low=0.0)
    ops = backend.current()
    for g in _grad_buffers(params):
        ops.clamp_(g, -c, c)
