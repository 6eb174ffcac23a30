"""Parameter arenas: one flat buffer for many parameters.

An arena gathers parameters of one dtype into a contiguous ``data`` buffer and
a ``grad`` buffer of the same layout; each Parameter's ``data``/``grad``
become views into them. An optimizer step is then one kernel call over flat
memory (what PyTorch calls a fused multi-tensor update), ``zero_grad`` is one
memset, and optimizer state (momentum, Adam moments) lives in flat arrays of
the same layout.

A parameter lives in at most one arena. Gathering it into a new arena moves
it there and marks the old arena ``stale``; whoever holds the old one (an
optimizer) checks ``stale`` and rebuilds, so two optimizers over overlapping
parameters stay correct.

Each parameter's segment starts on a 64-byte boundary (cache line and
AVX-512 vector), so per-parameter views are aligned. The padding has zero
gradient and zero state, so updates leave it zero, except those whose formula
gives 0/0 there: Adam, RMSprop and Adagrad with eps=0 write NaN (as PyTorch
does on any element whose gradient and state are zero). Such NaN belongs to
no parameter; :func:`only_padding_nonfinite` tells it apart and clears it.
"""
from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np

from .parameter import Parameter

_ALIGN_BYTES = 64


def _aligned_empty(n: int, dtype) -> np.ndarray:
    """A zeroed 1-D array of n elements whose first element is 64-byte aligned."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + _ALIGN_BYTES, dtype=np.uint8)
    offset = (-raw.ctypes.data) % _ALIGN_BYTES
    return raw[offset:offset + n * itemsize].view(dtype)


class Arena:
    """Contiguous storage for ``params`` (all of one dtype), in order."""

    def __init__(self, params: Sequence[Parameter]):
        params = list(params)
        if not params:
            raise ValueError("params: an arena needs at least one parameter")
        dtype = params[0].dtype
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"params: expected Parameter objects, got {type(p).__name__}")
            if p.dtype != dtype:
                raise TypeError(f"params: an arena holds one dtype, got {dtype} and {p.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("params: a parameter appears more than once")
        step = _ALIGN_BYTES // dtype.itemsize
        self.offsets: List[int] = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += -(-p.size // step) * step
        self.params = params
        self.dtype = dtype
        self.data = _aligned_empty(total, dtype)
        self.grad = _aligned_empty(total, dtype)
        self.stale = False
        for p, off in zip(params, self.offsets):
            if p._arena is not None and p._arena is not self:
                p._arena.stale = True
            p._rebind(self.data[off:off + p.size].reshape(p.shape),
                      self.grad[off:off + p.size].reshape(p.shape), self)

    @property
    def size(self) -> int:
        return self.data.size

    def zeros_like(self) -> np.ndarray:
        """A zeroed, aligned flat buffer of this arena's layout (for optimizer state)."""
        return _aligned_empty(self.data.size, self.dtype)

    def views(self, flat: np.ndarray) -> List[np.ndarray]:
        """Per-parameter views of a flat buffer of this arena's layout."""
        return [flat[o:o + p.size].reshape(p.shape) for p, o in zip(self.params, self.offsets)]

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def clear_padding(self) -> None:
        """Zero ``data`` between (and after) the parameters' segments."""
        ends = [o + p.size for p, o in zip(self.params, self.offsets)]
        for end, nxt in zip(ends, self.offsets[1:] + [self.data.size]):
            self.data[end:nxt] = 0

    def owns(self, params: Sequence[Parameter]) -> bool:
        """True if this arena is current and holds exactly ``params`` in this order."""
        return (not self.stale and len(params) == len(self.params)
                and all(a is b for a, b in zip(params, self.params)))


def consolidate(params: Iterable[Parameter]) -> List[Arena]:
    """Gather parameters into arenas, one per dtype (in first-seen order).

    Parameters already held, in order, by a current arena are left where they are.
    """
    by_dtype = {}
    for p in params:
        by_dtype.setdefault(p.dtype, []).append(p)
    arenas = []
    for group in by_dtype.values():
        existing = group[0]._arena
        arenas.append(existing if existing is not None and existing.owns(group) else Arena(group))
    return arenas


def zero_grads(params: Iterable[Parameter]) -> None:
    """Zero the gradients of ``params``: one memset per arena they fill completely,
    parameter by parameter otherwise."""
    params = list(params)
    ids = {id(p) for p in params}
    done = set()
    for p in params:
        arena = p._arena
        if arena is not None and not arena.stale and all(id(q) in ids for q in arena.params):
            if id(arena) not in done:
                done.add(id(arena))
                arena.zero_grad()
        else:
            p.zero_grad()


def only_padding_nonfinite(optimizer) -> bool:
    """After a flat check of ``optimizer``'s arenas found non-finite values: True, with the
    padding cleared, when every parameter itself is finite (the NaN was 0/0 in padding)."""
    if not all(np.isfinite(p.data).all() for g in optimizer.param_groups for p in g["params"]):
        return False
    group_arenas = getattr(optimizer, "group_arenas", None)
    for gi in range(len(optimizer.param_groups)) if group_arenas is not None else ():
        for arena in group_arenas(gi, rebuild=False):
            arena.clear_padding()
    return True
