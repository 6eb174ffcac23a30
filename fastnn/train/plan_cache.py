"""Compiled plans cached on the optimizer, so that calling ``fit`` again costs a lookup, not a compile.

A cached plan is reused only while everything it was compiled from is unchanged: the
model's modules and their attributes (types, parameters, options such as Dropout's p or an
activation's slope, anything patched onto an instance), the loss and its options, the
optimizer's parameter groups and its parameter arena, the batch size and the dtype. Any
change compiles a new plan, so a plan never trains stale arenas. Unsupported combinations
are not cached (``explain`` is asked again).
"""
from __future__ import annotations

__all__ = ["cached_plan"]

# Attributes that change while training without changing what a plan computes.
_VOLATILE = frozenset(("training", "_call_count", "_forward_io"))
_SCALARS = (int, float, bool, str, type(None), tuple)


class _PlanSlot:
    """Holds an optimizer's cached plan; copies and pickles of the optimizer start empty."""

    __slots__ = ("key", "plan")

    def __init__(self):
        self.key = self.plan = None

    def __deepcopy__(self, memo):
        return _PlanSlot()

    def __reduce__(self):
        return (_PlanSlot, ())


def _module_key(m, identity: bool = True):
    d = m.__dict__
    return (type(m), id(m) if identity else None,
            tuple((k, v if type(v) in _SCALARS else id(v)) for k, v in d.items() if k not in _VOLATILE))


def signature(model, loss_fn, optimizer, batch_size):
    """Everything a compiled plan depends on, as a cheap comparable tuple."""
    groups = optimizer.param_groups
    arenas = optimizer._current_arenas(0) if len(groups) == 1 else ()
    return (_module_key(model), tuple(_module_key(m) for m in model._modules.values()), _module_key(loss_fn, identity=False),
            type(optimizer), tuple(vars(optimizer)), tuple(tuple(map(id, g["params"])) for g in groups),
            tuple(p.requires_grad for g in groups for p in g["params"]),
            tuple((id(a), a.stale, a.dtype) for a in arenas), batch_size)


def cached_plan(model, loss_fn, optimizer, batch_size, compile_plan):
    """(plan, reused): the optimizer's cached plan when its signature still matches, else
    ``compile_plan()`` (cached when it returns a plan)."""
    slot = optimizer.__dict__.get("_fit_plan")
    key = signature(model, loss_fn, optimizer, batch_size)
    if slot is not None and slot.key == key and slot.plan.model is model:
        slot.plan.loss_fn = loss_fn  # an equal loss (its options are in the key)
        return slot.plan, True
    plan = compile_plan()
    if plan is not None:
        plan.loss_fn = loss_fn
        if slot is None:
            slot = _PlanSlot()
            optimizer.__dict__["_fit_plan"] = slot
        slot.key, slot.plan = signature(model, loss_fn, optimizer, batch_size), plan
    return plan, False
