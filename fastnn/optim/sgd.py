"""SGD with momentum, dampening, Nesterov, weight decay and maximize (PyTorch's formulas)."""
from __future__ import annotations

from .. import backend
from .._checks import check_nesterov, finite, nonnegative
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent.

    ``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False)``;
    the whole update is one fused pass per arena (``fastnn.ops.sgd_step``).
    """

    state_slots = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _check_group(self, group):
        # At every step (schedulers may have changed the values): the checks sgd_step runs.
        nonnegative(group["lr"], "lr")
        momentum = nonnegative(group["momentum"], "momentum")
        dampening = finite(group["dampening"], "dampening")
        nonnegative(group["weight_decay"], "weight_decay")
        check_nesterov(group["nesterov"], momentum, dampening)

    def _ensure_state(self, arena, state, group):
        # With momentum, a buffer; PyTorch: the first step copies the gradient into it.
        if group["momentum"] != 0 and state.get("momentum_buffer") is None:
            self._new_buffer(arena, state, "momentum_buffer")
            return True
        return False

    def _update(self, arena, state, group):
        first = self._ensure_state(arena, state, group)
        momentum = group["momentum"]
        buf = state["momentum_buffer"] if momentum != 0 else None
        backend.current().sgd_step(
            arena.data, arena.grad, buf, lr=group["lr"], momentum=momentum,
            dampening=group["dampening"], weight_decay=group["weight_decay"],
            nesterov=bool(group["nesterov"]), maximize=bool(group["maximize"]), first_step=first)
