"""How a compiled plan describes each layer to C: one named, immutable record per layer kind.

``fastnn.plan``'s layer extraction builds a list of these; ``PlanCore`` (fastnn/_plan.pxi)
copies each into the matching member of src_c/plan.h's ``fnn_plan_layer`` union, by name.

- :class:`DenseSpec` — ``Linear`` and the activation fused after it;
- :class:`NormSpec` — ``LayerNorm`` or ``BatchNorm1d`` (``kind`` says which) and its activation;
- :class:`DropoutSpec` — ``Dropout`` with p > 0.

Offsets are in elements from the start of the parameter group's arena (``w_group``,
``b_group``); -1 means no such parameter. ``kind`` is a ``fastnn._enums.PlanLayer`` code and
``act`` a ``fastnn._enums.Activation`` code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from . import _enums

__all__ = ["DenseSpec", "NormSpec", "DropoutSpec", "LayerSpec"]


# Frozen, with __slots__ written out (dataclass(slots=True) needs Python 3.10): no positional
# access and no stray attributes.
@dataclass(frozen=True)
class DenseSpec:
    """z = x·Wᵀ + b, y = act(z); W is (n_out, n_in) row-major at w_off."""
    __slots__ = ("n_in", "n_out", "w_off", "b_off", "w_group", "b_group", "act", "act_param")
    n_in: int
    n_out: int
    w_off: int
    b_off: int
    w_group: int
    b_group: int
    act: int
    act_param: float  # LeakyReLU's negative slope

    @property
    def kind(self) -> int:
        return _enums.PlanLayer.DENSE


@dataclass(frozen=True, eq=False)  # eq=False: its running statistics are arrays (compared by identity)
class NormSpec:
    """LayerNorm over the last axis or training-mode BatchNorm1d (``kind``), then ``act``.

    momentum < 0 stands for ``momentum=None`` (cumulative average). With running statistics,
    running_mean / running_var / num_batches_tracked are the module's own arrays, which the
    step updates in place; ``module`` is the BatchNorm1d (checked at every call), else None.
    """
    __slots__ = ("kind", "n_in", "n_out", "w_off", "b_off", "w_group", "b_group", "act", "act_param",
                 "eps", "momentum", "running_mean", "running_var", "num_batches_tracked", "module")
    kind: int
    n_in: int
    n_out: int
    w_off: int
    b_off: int
    w_group: int
    b_group: int
    act: int
    act_param: float
    eps: float
    momentum: float
    running_mean: Optional[Any]
    running_var: Optional[Any]
    num_batches_tracked: Optional[Any]
    module: Optional[Any]


@dataclass(frozen=True)
class DropoutSpec:
    """y = keep ? x / (1 - p) : 0, one seed per step (n_in == n_out)."""
    __slots__ = ("n_in", "n_out", "p")
    n_in: int
    n_out: int
    p: float

    @property
    def kind(self) -> int:
        return _enums.PlanLayer.DROPOUT


LayerSpec = Union[DenseSpec, NormSpec, DropoutSpec]
