"""Adagrad (PyTorch's formulas and arguments), one fused pass per arena and step."""
from __future__ import annotations

from .. import backend
from .._checks import check_flag, check_hyper
from .optimizer import Optimizer, _step_box


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
    *, maximize=False)``. State, as PyTorch names it: ``step`` and ``sum`` (the running sum of
    squared gradients, which starts at ``initial_accumulator_value``); like PyTorch, it exists
    from construction, so ``state_dict()`` has it before the first step."""

    state_slots = ("sum",)

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def add_param_group(self, group):
        super().add_param_group(group)
        gi = len(self.param_groups) - 1
        init = float(self.param_groups[gi]["initial_accumulator_value"])
        for arena, state in zip(self._arenas[gi], self._states[gi]):
            flat = arena.zeros_like()
            for view in arena.views(flat):  # the padding between parameters stays zero
                view.fill(init)
            state["sum"] = flat
            state["step"] = _step_box(0.0)
        self.flat_version += 1

    def _check_group(self, group):
        check_hyper(group["lr"], "lr", "learning rate", low=0.0)
        check_hyper(group["lr_decay"], "lr_decay", "lr_decay value", low=0.0)
        check_hyper(group["weight_decay"], "weight_decay", "weight_decay value", low=0.0)
        check_hyper(group["initial_accumulator_value"], "initial_accumulator_value",
                    "initial_accumulator_value", low=0.0)
        check_hyper(group["eps"], "eps", "epsilon value", low=0.0)
        check_flag(group["maximize"], "maximize", ints=True)

    def _ensure_state(self, arena, state, group):
        # The sum is made at construction (as in PyTorch); a loaded state_dict must include it.
        if "sum" not in state:
            raise KeyError("optimizer state 'sum' is missing (Adagrad creates it at construction; a loaded "
                           "state_dict must include it)")
        self._new_step(state)
        return False

    def _update(self, arena, state, group):
        self._ensure_state(arena, state, group)
        box = state["step"]
        t = float(box) + 1.0
        backend.current().adagrad_step(
            arena.data, arena.grad, state["sum"], step=int(t), lr=group["lr"], lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=bool(group["maximize"]))
        box[()] = t
