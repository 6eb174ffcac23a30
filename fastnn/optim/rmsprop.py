"""RMSprop (PyTorch's formulas and arguments), one fused pass per arena and step."""
from __future__ import annotations

from .. import backend
from .._checks import check_flag, check_hyper
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
    maximize=False)``. State, as PyTorch names it: ``step``, ``square_avg``, ``momentum_buffer``
    (when momentum > 0) and ``grad_avg`` (when centered), created when first needed."""

    state_slots = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, group):
        check_hyper(group["lr"], "lr", "learning rate", low=0.0)
        check_hyper(group["eps"], "eps", "epsilon value", low=0.0)
        check_hyper(group["momentum"], "momentum", "momentum value", low=0.0)
        check_hyper(group["weight_decay"], "weight_decay", "weight_decay value", low=0.0)
        check_hyper(group["alpha"], "alpha", "alpha value", low=0.0)
        for flag in ("centered", "maximize"):
            check_flag(group[flag], flag, ints=True)

    def _ensure_state(self, arena, state, group):
        if "square_avg" not in state:
            self._new_buffer(arena, state, "square_avg")
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            self._new_buffer(arena, state, "momentum_buffer")
        if group["centered"] and "grad_avg" not in state:
            self._new_buffer(arena, state, "grad_avg")
        self._new_step(state)
        return False

    def _update(self, arena, state, group):
        self._ensure_state(arena, state, group)
        momentum, centered = group["momentum"], bool(group["centered"])
        backend.current().rmsprop_step(
            arena.data, arena.grad, state["square_avg"], state["grad_avg"] if centered else None,
            state["momentum_buffer"] if momentum > 0 else None, lr=group["lr"], alpha=group["alpha"],
            eps=group["eps"], weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
            maximize=bool(group["maximize"]))
        box = state["step"]
        box[()] = float(box) + 1.0
