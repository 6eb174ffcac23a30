"""The backend seam: which implementation of the kernel functions modules call.

Two backends share one set of function names and semantics: ``"c"``
(``fastnn.ops``, the compiled kernels, default) and ``"reference"``
(``fastnn.reference``, plain NumPy, the spec). Any model can run on either,
which is how tests verify a whole training step against NumPy::

    with fastnn.use_backend("reference"):
        loss = loss_fn(model(x), y)
"""
from __future__ import annotations

import contextlib
import contextvars

from . import ops, reference

BACKENDS = {"c": ops, "reference": reference}
_current = contextvars.ContextVar("fastnn_backend", default=ops)


def current():
    """The module of kernel functions in effect (``fastnn.ops`` or ``fastnn.reference``)."""
    return _current.get()


def _lookup(name: str):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"name: expected one of {', '.join(map(repr, BACKENDS))}, got {name!r}") from None


def set_backend(name: str) -> None:
    """Switch the backend for the current thread/context: ``"c"`` or ``"reference"``."""
    _current.set(_lookup(name))


def get_backend() -> str:
    return "reference" if _current.get() is reference else "c"


@contextlib.contextmanager
def use_backend(name: str):
    """Run a block on the given backend, restoring the previous one afterwards."""
    token = _current.set(_lookup(name))
    try:
        yield
    finally:
        _current.reset(token)
