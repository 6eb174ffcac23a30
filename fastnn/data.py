"""Mini-batch iteration over in-memory arrays.

``Batches(X, y, batch_size=32, shuffle=True, rng=rng)`` is re-iterable: each
``for xb, yb in batches`` is one epoch. With shuffling, the epoch's permutation
is applied once (one gather of X and y per epoch) and the batches are then
contiguous slices of the permuted copy, so each batch is a C-contiguous view
that the kernels take without another copy. A single full batch is not
shuffled (its gradient does not depend on the order). The last batch is short when
``batch_size`` does not divide the number of samples; nothing is dropped.
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

__all__ = ["Batches", "num_batches", "resolve_batch_size"]


def resolve_batch_size(batch_size, n: int) -> int:
    """``batch_size`` checked (a positive integer, or None for the full batch) and capped at n."""
    if batch_size is None:
        return n
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size: expected a positive integer or None, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer or None, got {batch_size}")
    return min(int(batch_size), n)


def num_batches(n: int, batch_size: int) -> int:
    """Steps per epoch: ceil(n / batch_size)."""
    return -(-n // batch_size)


class Batches:
    """Mini-batches of ``(X, y)`` (y may be None), one epoch per iteration.

    X, y: arrays with the same first dimension n (samples).
    batch_size: samples per batch (None = all n); the last batch holds the remainder.
    shuffle: draw a new permutation from ``rng`` at the start of every epoch.
    rng: a ``numpy.random.Generator`` (default: a fresh one from fastnn's global
        generator, so ``fastnn.manual_seed`` makes the order reproducible).
    """

    def __init__(self, X, y=None, batch_size: Optional[int] = 32, shuffle: bool = True,
                 rng: Optional[np.random.Generator] = None):
        self.X = np.asarray(X)
        self.y = None if y is None else np.asarray(y)
        n = len(self.X) if self.X.ndim else 0
        if n == 0:
            raise ValueError("X: expected at least one sample, got an empty array")
        if self.y is not None and (self.y.ndim == 0 or len(self.y) != n):
            raise ValueError(f"y: expected {n} samples to match X, got "
                             f"{'a scalar' if self.y.ndim == 0 else len(self.y)}")
        self.n = n
        self.batch_size = resolve_batch_size(batch_size, n)
        self.shuffle = bool(shuffle)
        if rng is None and self.shuffle:
            from .random import draw_seed
            rng = np.random.default_rng(draw_seed())
        self.rng = rng

    def __len__(self) -> int:
        return num_batches(self.n, self.batch_size)

    def __iter__(self) -> Iterator[Tuple[np.ndarray, Optional[np.ndarray]]]:
        X, y = self.X, self.y
        if self.shuffle and self.batch_size < self.n:  # one full batch: the order changes nothing
            perm = self.rng.permutation(self.n)
            X = X[perm]
            y = None if y is None else y[perm]
        bs = self.batch_size
        for start in range(0, self.n, bs):
            yield X[start:start + bs], (None if y is None else y[start:start + bs])
