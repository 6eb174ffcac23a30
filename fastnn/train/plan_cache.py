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



class _PlanSlot:
    """Holds an optimizer's cached plan (and fit's stepper around it); copies and pickles of
    the optimizer start empty."""

    __slots__ = ("key", "plan", "stepper")

    def __init__(self):
        self.key = self.plan = self.stepper = None

    def __deepcopy__(self, memo):
        return _PlanSlot()

    def __reduce__(self):
        return (_PlanSlot, ())


def _config(m):
    """A module's options and parameters: its public attributes (what forward state a module
    keeps is private) but the mode, which fit sets."""
    return {k: v for k, v in m.__dict__.items() if k[0] != "_" and k != "training"}


def signature(model, loss_fn, optimizer, batch_size):
    """Everything a compiled plan depends on. Compared with ==, which is identity first, so
    arrays and parameters compare by identity (a replaced one fails the comparison)."""
    groups = optimizer.param_groups
    arenas = optimizer._current_arenas(0) if len(groups) == 1 else ()
    children = tuple(model._modules.values())
    return (type(model), _config(model), children, [(type(m), _config(m)) for m in children],
            type(loss_fn), _config(loss_fn), type(optimizer), tuple(vars(optimizer)),
            tuple(tuple(g["params"]) for g in groups),
            tuple(p.requires_grad for g in groups for p in g["params"]),
            tuple((a, a.stale) for a in arenas), batch_size)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a replaced array compared elementwise: not the same
        return False


def cached_plan(model, loss_fn, optimizer, batch_size, compile_plan):
    """(slot, reused): the optimizer's slot holding a plan whose signature still matches
    (reused), or a newly compiled one (``compile_plan()``; slot None when it returns None)."""
    slot = optimizer.__dict__.get("_fit_plan")
    if slot is not None and slot.plan is not None and slot.plan.model is model:
        key = signature(model, loss_fn, optimizer, batch_size)
        if _same(slot.key, key):
            slot.plan.loss_fn = loss_fn  # an equal loss (its type and options are in the key)
            return slot, True
    plan = compile_plan()
    if plan is None:
        return None, False
    if slot is None:
        slot = _PlanSlot()
        optimizer.__dict__["_fit_plan"] = slot
    slot.key, slot.plan, slot.stepper = signature(model, loss_fn, optimizer, batch_size), plan, None
    return slot, False
