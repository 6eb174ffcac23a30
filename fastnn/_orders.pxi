# Epoch orders for runs of epochs in C: the permutations NumPy's Generator draws, made
# without its per-row overhead (the orders of a whole run are drawn up front; for a
# 4-sample data set one epoch's order had cost more than its training step).

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "numpy/random/bitgen.h":
    ctypedef struct bitgen_t:
        void *state
        uint64_t (*next_uint64)(void *st) nogil
        uint32_t (*next_uint32)(void *st) nogil


cdef inline uint64_t _bounded(bitgen_t *bg, uint64_t hi) noexcept nogil:
    """A uniform integer in [0, hi], as NumPy's random_interval draws it: the smallest
    all-ones mask covering hi, 32-bit draws below 2^32, rejection above hi."""
    cdef uint64_t mask = hi, v
    if hi == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if (hi >> 32) == 0:  # hi < 2^32
        v = bg.next_uint32(bg.state) & mask
        while v > hi:
            v = bg.next_uint32(bg.state) & mask
    else:
        v = bg.next_uint64(bg.state) & mask
        while v > hi:
            v = bg.next_uint64(bg.state) & mask
    return v


cdef _orders_here(object rng, int64_t k, int64_t n):
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, [k, n], cnp.NPY_INT64, 0)
    cdef int64_t *d = <int64_t *>cnp.PyArray_DATA(out)
    cdef int64_t r, i, j, t
    cdef int64_t *row
    bit_generator = rng.bit_generator
    cdef bitgen_t *bg = <bitgen_t *>PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    if bg == NULL:
        raise ValueError("rng: its bit generator has no BitGenerator capsule")
    with bit_generator.lock:
        with nogil:
            for r in range(k):
                row = d + r * n
                for i in range(n):
                    row[i] = i
                # Fisher-Yates from the back, as Generator.shuffle / permuted (i = 0 draws nothing)
                for i in range(n - 1, 0, -1):
                    j = <int64_t>_bounded(bg, <uint64_t>i)
                    t = row[i]
                    row[i] = row[j]
                    row[j] = t
    return out


cdef int _orders_checked = 0  # 1: equal to NumPy's; -1: not (then NumPy draws them)


def _check_orders():
    """Compare the native orders with NumPy's once; True when they are the ones in use."""
    global _orders_checked
    if _orders_checked == 0:
        import numpy as _np
        a, b = _np.random.default_rng(12345), _np.random.default_rng(12345)
        mine = _orders_here(a, 7, 37)
        theirs = b.permuted(_np.tile(_np.arange(37, dtype=_np.int64), (7, 1)), axis=1)
        same = _np.array_equal(mine, theirs) and a.integers(1 << 62) == b.integers(1 << 62)
        _orders_checked = 1 if same else -1
    return _orders_checked > 0


def epoch_orders(rng, int64_t k, int64_t n):
    """(k, n) int64: row e is the order ``rng.permutation(n)`` would give for the e-th of k
    epochs in turn (as ``rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1)``), leaving rng
    in the same state. Checked once per process against NumPy on a small case; should another
    NumPy shuffle differently, NumPy draws them."""
    if k < 0 or n < 0:
        raise ValueError(f"k, n: expected >= 0, got {k}, {n}")
    if not _check_orders():
        import numpy as _np
        return rng.permuted(_np.tile(_np.arange(n, dtype=_np.int64), (k, 1)), axis=1)
    return _orders_here(rng, k, n)
