"""gradcheck: compare backpropagation with central finite differences.

The cheap way to trust a gradient: nudge each number by ±h, run the forward
pass twice, and compare (f(θ+h) − f(θ−h)) / 2h with what ``backward`` says.
It costs two forward passes per number — far too slow for training, exactly
right for checking.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np

from .errors import GradcheckError
from .nn.module import Module
from .nn.parameter import Parameter
from .tensor import backprop


def _objective(out, weights: np.ndarray) -> float:
    return float(np.sum(np.asarray(out, dtype=np.float64) * weights))


def _chain_modules(out):
    mods, link = [], getattr(out, "_link", None)
    while link is not None:
        mods.append(link.module)
        link = getattr(link.input, "_link", None)
    return mods


def gradcheck(fn: Callable, input, params: Optional[Iterable[Parameter]] = None, *,
              eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Check the gradients of ``fn(input)`` by central finite differences, in float64.

    ``fn`` maps one float64 array to the output of fastnn modules (a loss, or
    any Tensor: a fixed random weighting reduces it to a scalar). Checked:
    the gradient w.r.t. ``input`` and w.r.t. every parameter in ``params``
    (default: all parameters of the modules on the output's chain). Returns
    True, or raises ``GradcheckError`` naming the worst element (returns False
    instead with ``raise_exception=False``).

    Example::

        model = fnn.nn.Sequential(fnn.nn.Linear(3, 4, dtype=np.float64), fnn.nn.Tanh())
        fnn.gradcheck(lambda x: loss_fn(model(x), y), x)
    """
    x = np.array(input, dtype=None, copy=True)
    if x.dtype != np.float64:
        raise TypeError(f"input: gradcheck needs float64 (finite differences in float32 are too noisy), got {x.dtype}")
    out = fn(x)
    if getattr(out, "_link", None) is None:
        raise TypeError("fn: must return the output of a fastnn module (a fastnn.Tensor)")
    if params is None:
        params = []
        seen = set()
        for m in _chain_modules(out):
            for p in (m.parameters() if isinstance(m, Module) else []):
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
    params = list(params)
    for p in params:
        if p.dtype != np.float64:
            raise TypeError(f"params: gradcheck needs float64 parameters, got {p.dtype} (build the model with dtype=np.float64)")

    weights = np.random.default_rng(seed).standard_normal(np.shape(out)) if np.ndim(out) else np.float64(1.0)
    saved_grads = [p.grad.copy() for p in params]
    for p in params:
        p.zero_grad()
    analytic_x = backprop(out, weights if np.ndim(out) else None, need_input_grad=True)
    analytic_x = np.zeros_like(x) if analytic_x is None else np.asarray(analytic_x, dtype=np.float64)
    analytic_params = [p.grad.copy() for p in params]
    for p, g in zip(params, saved_grads):
        p.grad[...] = g

    def numeric(array: np.ndarray, evaluate) -> np.ndarray:
        grad = np.zeros(array.shape)
        flat = array.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = evaluate()
            flat[i] = orig - eps
            minus = evaluate()
            flat[i] = orig
            grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
        return grad

    checks = [("input", analytic_x, numeric(x, lambda: _objective(fn(x), weights)))]
    for i, (p, a) in enumerate(zip(params, analytic_params)):
        checks.append((f"params[{i}] {p.shape}", a, numeric(p.data, lambda: _objective(fn(x), weights))))

    for name, a, n in checks:
        err = np.abs(a - n)
        bad = err > atol + rtol * np.abs(n)
        if bad.any():
            idx = np.unravel_index(np.argmax(err - (atol + rtol * np.abs(n))), err.shape) if err.ndim else ()
            msg = (f"gradcheck: gradient w.r.t. {name} disagrees with finite differences at index "
                   f"{tuple(int(i) for i in idx)}: analytic {a[idx]!r}, numeric {n[idx]!r} "
                   f"({int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol})")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
