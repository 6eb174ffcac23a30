"""Tensor: the array a fastnn module returns, remembering how to backpropagate.

A ``Tensor`` is a read-only ``numpy.ndarray`` subclass, so every NumPy function
accepts it, plus one link of a computation chain: which module produced it
(and from which input). ``loss.backward()`` walks that chain from the loss to
the first module, calling each module's ``backward`` and so accumulating
``.grad`` on every parameter on the way — also through chained calls such as
``dec(enc(x))``.

The chain is linear (each module has one input); arrays derived from a Tensor
by NumPy operations are plain data and carry no link. Module outputs are
read-only because modules keep them for their backward pass: writing to one
would silently change the gradients.

A module keeps what its backward needs from its most recent call only. If a
module is called again before ``backward`` on an earlier output, that
``backward`` raises instead of using the newer call's activations.
"""
from __future__ import annotations

import operator

import numpy as np

from . import _core, _native


class _Link(tuple):
    """How a Tensor was produced: ``module(input)`` at the module's call number ``version``.

    ``_Link((module, version, input))``: a tuple, so making one (at every module call) runs
    no Python ``__init__``; the fields are read through C-level item getters."""

    __slots__ = ()
    module = property(operator.itemgetter(0))
    version = property(operator.itemgetter(1))
    input = property(operator.itemgetter(2))


class Tensor(np.ndarray):
    # Views and results of NumPy operations are plain data, not chain links: a new array
    # object starts with an empty __dict__, so it reads this class default. (No
    # __array_finalize__ is needed for that, and not having one keeps every view cheap.)
    _link = None

    @staticmethod
    def _wrap(array: np.ndarray, link) -> "Tensor":
        t = array.view(Tensor)
        t._link = link
        t.setflags(write=False)  # the same as flags.writeable = False, at a third of the cost
        return t

    @property
    def producer(self):
        """The module that produced this tensor (None for plain data)."""
        return None if self._link is None else self._link.module

    def numpy(self) -> np.ndarray:
        """A writable, plain-ndarray copy."""
        return np.array(self, copy=True).view(np.ndarray)

    def detach(self) -> np.ndarray:
        """The values as a plain (read-only) ndarray view, cut from the chain."""
        return self.view(np.ndarray)

    # backward(grad=None): backpropagate from this tensor; fills ``.grad`` of every parameter on
    # the chain. ``grad`` is d(objective)/d(this tensor); it defaults to 1 for a scalar (a loss)
    # and is required otherwise, as in PyTorch. Compiled (fastnn/_plan_eager.pxi): one Python
    # frame fewer in every loss.backward().
    if _native.available():
        backward = _core.tensor_backward
    else:
        def backward(self, grad=None) -> None:
            backprop(self, grad, need_input_grad=False)


# backprop(tensor, grad=None, need_input_grad=False, stop_at=None): walk the chain ending at
# ``tensor``; return d/d(first input) if asked. ``stop_at`` ends the walk at the link whose input
# is that object (a composite module's own input). Raises RuntimeError when the tensor is not the
# output of a fastnn module, or when a module on the chain was called again since producing it.
# Compiled (fastnn/_plan_eager.pxi), because every loss.backward() runs it.


def _describe(module) -> str:
    describe = getattr(module, "describe", None)
    return describe() if callable(describe) else type(module).__name__


def _backprop_without_core(tensor, grad=None, need_input_grad: bool = False, stop_at=None):
    """backprop for a fastnn without its compiled core (the reference backend only): the same
    walk, module by module, as the compiled one's general case."""
    link = getattr(tensor, "_link", None)
    if link is None:
        raise RuntimeError(
            "backward: this array was not produced by a fastnn module (or was derived from one by a "
            "NumPy operation), so there is nothing to backpropagate through")
    scalar = (tensor.ndim if isinstance(tensor, np.ndarray) else np.ndim(tensor)) == 0
    if grad is None:
        if not scalar:
            raise RuntimeError(f"backward: grad is required for a non-scalar output of shape {np.shape(tensor)}")
        grad = 1.0
    elif not scalar:
        grad = np.asarray(grad)
        if grad.shape != np.shape(tensor):
            raise ValueError(f"grad: expected shape {np.shape(tensor)}, got {grad.shape}")
    while link is not None:
        module = link.module
        if module._call_count != link.version:
            raise RuntimeError(
                f"backward: {_describe(module)} was called again after producing this output, and keeps only "
                f"its latest call's activations. Call backward() before calling the module again.")
        at_stop = stop_at is not None and link.input is stop_at
        upstream = None if at_stop else getattr(link.input, "_link", None)
        grad = module.backward(grad, need_input_grad=need_input_grad or upstream is not None)
        if at_stop:
            return grad
        link = upstream
    if stop_at is not None:
        raise RuntimeError(
            "backward: the forward pass did not reach its input through fastnn modules only; a module "
            "whose forward uses other operations must implement backward() itself")
    return grad if need_input_grad else None


backprop = _core.backprop if _native.available() else _backprop_without_core
