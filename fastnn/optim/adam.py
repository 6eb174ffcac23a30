"""Adam and AdamW (PyTorch's formulas and arguments), one fused pass per arena and step."""
from __future__ import annotations

from .. import backend
from ..ops.optim import _bools, _reals_ok, _unit_float, check_real
from .optimizer import Optimizer


def check_hyper(value, name: str, what: str, **bounds) -> float:
    """PyTorch's "Invalid <what>: <value>" ValueError, prefixed with the argument name."""
    try:
        return check_real(value, name, **bounds)
    except ValueError as e:
        detail = str(e).split(": ", 1)[-1]
        raise ValueError(f"{name}: Invalid {what}: {value!r} ({detail})") from None


def check_flag(value, name: str) -> None:
    if value is not True and value is not False and value not in (0, 1):
        raise TypeError(f"{name}: expected True or False, got {value!r}")


class Adam(Optimizer):
    """Adam, or AdamW with ``decoupled_weight_decay=True``.

    ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
    maximize=False, decoupled_weight_decay=False)``. State per parameter, as PyTorch names it:
    ``step`` (a float, like PyTorch's step tensor), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``; each kept as one flat array per arena and created at the
    first step. The step count is incremented before the update (the first step uses t = 1).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 *, maximize=False, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group):
        if self._plain_group(group):
            return
        check_hyper(group["lr"], "lr", "learning rate", low=0.0)
        check_hyper(group["eps"], "eps", "epsilon value", low=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            check_hyper(b, "betas", f"beta parameter at index {i}", low=0.0, high=1.0, high_open=True)
        check_hyper(group["weight_decay"], "weight_decay", "weight_decay value", low=0.0)
        for flag in ("amsgrad", "maximize", "decoupled_weight_decay"):
            check_flag(group[flag], flag)

    @staticmethod
    def _plain_group(group) -> bool:
        """True for plain floats in range and bool flags: what the checks below accept without a
        word, by the fast test adam_step's fast path uses (this runs at every step)."""
        betas = group["betas"]
        if not (type(betas) is tuple or type(betas) is list) or len(betas) != 2:
            return False
        return (_reals_ok(group["lr"], group["eps"], group["weight_decay"]) and _unit_float(betas[0])
                and _unit_float(betas[1])
                and _bools(group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]))

    def _update(self, arena, state, group):
        if "exp_avg" not in state:
            state["exp_avg"] = arena.zeros_like()
            state["exp_avg_sq"] = arena.zeros_like()
        amsgrad = bool(group["amsgrad"])
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = arena.zeros_like()
        t = float(state.get("step", 0.0)) + 1.0
        beta1, beta2 = group["betas"]
        backend.current().adam_step(
            arena.data, arena.grad, state["exp_avg"], state["exp_avg_sq"],
            state["max_exp_avg_sq"] if amsgrad else None, step=int(t), lr=group["lr"],
            beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            amsgrad=amsgrad, maximize=bool(group["maximize"]),
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]))
        state["step"] = t


class AdamW(Adam):
    """Adam with decoupled weight decay: ``θ ← θ(1 − γλ)`` before the moment updates.

    ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
    maximize=False)`` — PyTorch's defaults (note weight_decay=1e-2).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
