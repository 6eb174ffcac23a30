"""The global random generator behind parameter initialisation, dropout and shuffling.

``fastnn.manual_seed(s)`` makes everything that draws from it reproducible, as
``torch.manual_seed`` does. Kernels that need randomness (dropout) take an
integer seed drawn from this generator, so their output does not depend on the
thread count.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed fastnn's global generator; returns it."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The generator fastnn draws from (replaced by each ``manual_seed``)."""
    return _generator


def draw_seed() -> int:
    """A fresh 63-bit seed for a kernel that generates its own random numbers."""
    return int(_generator.integers(0, 2**63 - 1))
