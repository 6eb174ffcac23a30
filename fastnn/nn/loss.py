"""Loss modules: ``loss = loss_fn(output, target)`` then ``loss.backward()``.

Each call computes the loss and its gradient in one fused kernel pass (the
gradient only when ``output`` came from a fastnn module, i.e. when there is a
chain to backpropagate through). The result is a 0-d ``fastnn.Tensor``:
``loss.item()`` is the value, ``loss.backward()`` fills ``.grad`` of every
parameter that produced ``output``. Formulas follow PyTorch exactly.
"""
from __future__ import annotations

import numpy as np

from .. import _core, _native, backend
from ..ops._validate import as_float, check_choice, check_scalar
from .module import Module

_REDUCTIONS = ("mean", "sum")
_F64 = np.dtype(np.float64)
_F32_MAX = float(np.finfo(np.float32).max)  # a float32 loss beyond it overflows to inf


class _Loss(Module):
    _op = None  # name of the kernel function in the backend

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_choice(reduction, "reduction", _REDUCTIONS)
        self._grad = None

    def _kwargs(self):
        return {}

    # The usual call (contiguous arrays of one float dtype, int64 labels, values in range, the C
    # backend) runs the same loss kernel in one compiled call (_core.loss_call / eager_loss, see
    # fastnn/_plan_eager.pxi); anything else, including every error, takes Module.__call__ and
    # forward below.
    if _native.available():
        __call__ = _core.loss_call

    def forward(self, input, target):
        x = as_float(input, "input")
        wants_grad = getattr(input, "_link", None) is not None
        # A plain ndarray (empty_like would make a Tensor of a Tensor input).
        grad = np.empty(x.shape, x.dtype) if wants_grad else None
        value = getattr(backend.current(), self._op)(x, target, reduction=self.reduction, grad=grad, **self._kwargs())
        self.__dict__["_grad"] = grad  # plain state: no Parameter/Module registration needed
        if x.dtype is _F64 or abs(value) <= _F32_MAX:
            return np.array(value, x.dtype)
        with np.errstate(over="ignore"):  # a diverging float32 loss becomes inf, reported by fit()
            return np.asarray(value, dtype=x.dtype)

    def backward(self, grad_out=1.0, need_input_grad: bool = True):
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward: its input was not produced by a fastnn module "
                               f"(or was derived from one by a NumPy operation), so there is nothing to "
                               f"backpropagate through")
        if not need_input_grad:
            return None
        scale = grad_out if type(grad_out) is float else float(np.asarray(grad_out))
        return self._grad if scale == 1.0 else self._grad * self._grad.dtype.type(scale)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """mean((output − target)²)."""
    _op = "mse_loss"


class L1Loss(_Loss):
    """mean(|output − target|)."""
    _op = "l1_loss"


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1] (logs clamped at −100)."""
    _op = "bce_loss"


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, in the stable form max(x,0) − x·y + log1p(e^−|x|)."""
    _op = "bce_with_logits_loss"


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (N, C) against integer class labels (N,), with optional label smoothing."""
    _op = "cross_entropy"

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.label_smoothing = check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)

    def _kwargs(self):
        return {"label_smoothing": self.label_smoothing}

    def extra_repr(self):
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


# The classes whose calls may take the one-call path, by exact type (a subclass may change the loss).
if _native.available():
    _core.eager_register_module_call(Module.__call__)
    _core.eager_register_losses({MSELoss: 0, L1Loss: 1, BCELoss: 2, BCEWithLogitsLoss: 3, CrossEntropyLoss: 4},
                            _Loss.backward)
