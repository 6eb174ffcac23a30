"""The codes of ``src_c/fastnn_enums.h`` as ``IntEnum``s, read from the compiled core.

The numbers are declared once, in C; this module builds ``Activation``, ``Reduction``,
``LossStatus``, ``SgdMode``, ``PlanLayer``, ``PlanLoss``, ``PlanOptimizer`` and ``PlanStatus`` from
``fastnn._core.enums()`` on first use (so importing fastnn without the compiled core
still works), plus the name tables the Python API speaks in:

- ``ACTIVATION_CODES``: activation name (``None``, ``"relu"``, … ``"gelu_tanh"``) → code;
- ``REDUCTION_CODES``: ``"mean"``/``"sum"`` → code.
"""
from __future__ import annotations

import enum

_NAMES = ("Activation", "Reduction", "LossStatus", "SgdMode", "PlanLayer", "PlanLoss", "PlanOptimizer", "PlanStatus",
          "ACTIVATION_CODES", "REDUCTION_CODES")


def _build() -> None:
    from . import _core
    table = _core.enums()
    made = {name: enum.IntEnum(name, members) for name, members in table.items()}
    act = made["Activation"]
    made["ACTIVATION_CODES"] = {None: act.NONE, "identity": act.NONE, "relu": act.RELU,
                                "leaky_relu": act.LEAKY_RELU, "sigmoid": act.SIGMOID, "tanh": act.TANH,
                                "gelu": act.GELU, "gelu_tanh": act.GELU_TANH}
    made["REDUCTION_CODES"] = {"mean": made["Reduction"].MEAN, "sum": made["Reduction"].SUM}
    globals().update(made)


def __getattr__(name: str):
    if name in _NAMES:
        _build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_NAMES)
