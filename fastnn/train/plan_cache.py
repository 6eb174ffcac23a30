"""Compiled plans cached on the optimizer, so that calling ``fit`` again costs a lookup, not a compile.

A cached plan is reused only while everything it was compiled from is unchanged: the
model's modules and their attributes (types, parameters, options such as Dropout's p or an
activation's slope, anything patched onto an instance), the loss and its options, the
optimizer's parameter groups and its parameter arena, the batch size and the dtype. Any
change compiles a new plan, so a plan never trains stale arenas. Unsupported combinations
are not cached (``explain`` is asked again).
"""
from __future__ import annotations

from itertools import chain
from operator import attrgetter, itemgetter

__all__ = ["cached_plan"]

_requires_grad = attrgetter("requires_grad")


class _PlanSlot:
    """Holds an optimizer's cached plan (and fit's stepper around it); copies and pickles of
    the optimizer start empty."""

    __slots__ = ("key", "values", "plan", "stepper")

    def __init__(self):
        self.key = self.values = self.plan = self.stepper = None

    def __deepcopy__(self, memo):
        return _PlanSlot()

    def __reduce__(self):
        return (_PlanSlot, ())


def _public(m):
    """A module's options and parameters: its public attributes (the forward state a module
    keeps is private) but the mode, which fit sets."""
    return tuple(k for k in m.__dict__ if k[0] != "_" and k != "training")


class _Key:
    """Everything a compiled plan depends on, compared cheaply: the modules' public attributes
    (read with itemgetters made once), their attribute counts (something patched onto an
    instance adds one), the loss's type and options, the optimizer's groups and arena, the
    batch size. Compared with ==, identity first, so arrays and parameters compare by
    identity (a replaced one fails the comparison)."""

    def __init__(self, model, loss_fn):
        self.children = tuple(model._modules.values())
        self.modules = (model,) + self.children
        self.getters = [itemgetter(*keys) if keys else (lambda d: ())
                        for keys in map(_public, self.modules)]
        keys = _public(loss_fn)
        self.loss_getter = itemgetter(*keys) if keys else (lambda d: ())

    def values(self, model, loss_fn, optimizer, batch_size):
        groups = optimizer.param_groups
        arenas = optimizer.group_arenas(0) if len(groups) == 1 else ()
        params = tuple(tuple(g["params"]) for g in groups)
        dicts = list(map(vars, self.modules))  # map/itemgetter, not generators: fit checks this on every call
        return ([g(d) for g, d in zip(self.getters, dicts)], tuple(map(len, dicts)), type(loss_fn),
                len(loss_fn.__dict__), self.loss_getter(loss_fn.__dict__), type(optimizer), tuple(vars(optimizer)),
                params, tuple(map(_requires_grad, chain.from_iterable(params))),
                tuple((a, a.stale) for a in arenas), batch_size)

    def matches(self, model, loss_fn, optimizer, batch_size, stored) -> bool:
        if tuple(model._modules.values()) != self.children:
            return False
        try:
            return _same(self.values(model, loss_fn, optimizer, batch_size), stored)
        except KeyError:  # an attribute was deleted
            return False


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a replaced array compared elementwise: not the same
        return False


def cached_plan(model, loss_fn, optimizer, batch_size, compile_plan):
    """(slot, reused): the optimizer's slot holding a plan whose key still matches (reused),
    or a newly compiled one (``compile_plan()``; slot None when it returns None)."""
    slot = optimizer.__dict__.get("_fit_plan")
    if (slot is not None and slot.plan is not None and slot.plan.model is model
            and type(loss_fn) is type(slot.plan.loss_fn)
            and slot.key.matches(model, loss_fn, optimizer, batch_size, slot.values)):
        slot.plan.loss_fn = loss_fn  # an equal loss (its type and options are in the key)
        return slot, True
    plan = compile_plan()
    if plan is None:
        return None, False
    if slot is None:
        slot = _PlanSlot()
        optimizer.__dict__["_fit_plan"] = slot
    slot.key = _Key(model, loss_fn)
    slot.plan, slot.stepper = plan, None
    slot.values = slot.key.values(model, loss_fn, optimizer, batch_size)
    return slot, False
