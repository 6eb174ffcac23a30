"""Adam and AdamW (PyTorch's formulas and arguments), one fused pass per arena and step."""
from __future__ import annotations

from .. import backend
from .._checks import check_flag, check_hyper
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam, or AdamW with ``decoupled_weight_decay=True``.

    ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
    maximize=False, decoupled_weight_decay=False)``. State per parameter, as PyTorch names it:
    ``step`` (a float, like PyTorch's step tensor), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``; each kept as one flat array per arena and created at the
    first step. The step count is incremented before the update (the first step uses t = 1).
    """

    state_slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 *, maximize=False, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group):
        # At every step (schedulers may have changed the values).
        check_hyper(group["lr"], "lr", "learning rate", low=0.0)
        check_hyper(group["eps"], "eps", "epsilon value", low=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        check_hyper(betas[0], "betas", "beta parameter at index 0", low=0.0, high=1.0, high_open=True)
        check_hyper(betas[1], "betas", "beta parameter at index 1", low=0.0, high=1.0, high_open=True)
        check_hyper(group["weight_decay"], "weight_decay", "weight_decay value", low=0.0)
        check_flag(group["amsgrad"], "amsgrad", ints=True)
        check_flag(group["maximize"], "maximize", ints=True)
        check_flag(group["decoupled_weight_decay"], "decoupled_weight_decay", ints=True)

    def _ensure_state(self, arena, state, group):
        if "exp_avg" not in state:
            self._new_buffer(arena, state, "exp_avg")
            self._new_buffer(arena, state, "exp_avg_sq")
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            self._new_buffer(arena, state, "max_exp_avg_sq")
        self._new_step(state)
        return False

    def _update(self, arena, state, group):
        self._ensure_state(arena, state, group)
        amsgrad = bool(group["amsgrad"])
        box = state["step"]
        t = float(box) + 1.0
        beta1, beta2 = group["betas"]
        backend.current().adam_step(
            arena.data, arena.grad, state["exp_avg"], state["exp_avg_sq"],
            state["max_exp_avg_sq"] if amsgrad else None, step=int(t), lr=group["lr"],
            beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            amsgrad=amsgrad, maximize=bool(group["maximize"]),
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]))
        box[()] = t


class AdamW(Adam):
    """Adam with decoupled weight decay: ``θ ← θ(1 − γλ)`` before the moment updates.

    ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
    maximize=False)`` — PyTorch's defaults (note weight_decay=1e-2).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
