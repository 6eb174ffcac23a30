"""Exceptions fastnn raises beyond the built-in ones."""
from __future__ import annotations


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or gradient.

    Raised by ``fit()`` (and training plans) with the epoch, step, loss value and
    learning rate; the model keeps the last finite parameters.
    """

    def __init__(self, message: str, *, epoch=None, step=None, loss=None, lr=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.lr = lr


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with central finite differences."""
