"""Divergence: the one place that turns a non-finite loss, gradient or parameter into
``fastnn.DivergenceError``, whichever stepper noticed it."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import DivergenceError
from .inputs import lrs

__all__ = ["Diverged", "divergence_error", "optimizer_finite", "LOSS", "GRAD", "UPDATE"]

LOSS = "the loss became non-finite"
GRAD = "a gradient became non-finite"
UPDATE = "the update overflowed: the parameters are no longer finite"


class Diverged(Exception):
    """Raised by a stepper: ``what`` (LOSS, GRAD or UPDATE) happened at 1-based ``batch`` of
    ``epoch`` with batch loss ``value``; ``applied``: that step's update was applied (UPDATE)."""

    def __init__(self, what: str, value: float, epoch: int, batch: int):
        super().__init__(what)
        self.what, self.value, self.epoch, self.batch = what, value, epoch, batch
        self.applied = what == UPDATE


def divergence_error(d: Diverged, epochs: int, steps: int, optimizer) -> DivergenceError:
    """The DivergenceError fit raises for ``d`` (``steps`` batches per epoch)."""
    step = (d.epoch - 1) * steps + d.batch  # every earlier epoch ran all its steps
    rates = lrs(optimizer)
    lr = rates[0]
    lr_text = f"lr={lr:g}" if len(set(rates)) == 1 else "lr=" + "/".join(f"{v:g}" for v in rates)
    advice = (f"The learning rate is probably too high: try lr={lr / 10:g} or smaller."
              if lr > 0 else "Check the inputs and targets for extreme values.")
    outcome = ("The update was applied and the parameters are lost: restore them from a checkpoint."
               if d.applied else
               "The update was not applied: the model keeps the parameters from before this step.")
    msg = (f"fit: {d.what} at epoch {d.epoch}/{epochs}, batch {d.batch}/{steps} (global step {step}), "
           f"loss={d.value:g}, {lr_text}. {outcome} {advice}")
    exc = DivergenceError(msg, epoch=d.epoch, step=step, loss=d.value, lr=lr)
    exc.batch = d.batch
    return exc


def _all_finite_fn():
    fn = getattr(backend.current(), "all_finite", None)
    return fn if fn is not None else (lambda a: bool(np.isfinite(a).all()))


def optimizer_finite(optimizer, attr: str) -> bool:
    """All of the optimizer's parameters' ``grad`` (or ``data``) finite: one check per flat arena."""
    check = _all_finite_fn()
    group_arenas = getattr(optimizer, "group_arenas", None)
    arena_groups = (None if group_arenas is None else
                    [group_arenas(gi, rebuild=False) for gi in range(len(optimizer.param_groups))])
    if arena_groups is not None and all(not a.stale for group in arena_groups for a in group):
        return all(check(getattr(a, attr)) for group in arena_groups for a in group)
    return all(check(getattr(p, attr)) for g in optimizer.param_groups for p in g["params"])
