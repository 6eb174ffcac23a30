"""Shared fixtures and helpers: dtypes, odd sizes, tolerances, strided views, thread counts."""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np
import pytest

import fastnn

DTYPES = [np.float32, np.float64]

# A real Ctrl-C reaches fit only on the main thread with Python's own SIGINT handler (a shell's
# background job starts with SIGINT ignored, so the signal would be lost there).
needs_ctrl_c = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or threading.current_thread() is not threading.main_thread()
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs POSIX signals in the main thread and Python's default SIGINT handler")

# A prime length past the kernels' parallel threshold for the cheapest pass
# (fastnn._core.parallel_thresholds(); test_ops_activations checks it stays past), so
# the OpenMP path of every elementwise kernel runs too.
PAR_N = 131101

# Odd lengths: 1, tiny, primes, non-multiples of every SIMD width, and PAR_N.
SIZES = [1, 2, 3, 7, 16, 17, 64, 255, 1027, PAR_N]

# Relative/absolute tolerances for comparing a kernel with the NumPy reference.
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=1e-6), np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13)}


def assert_close(actual, expected, dtype=None, **override):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    dtype = np.dtype(dtype or actual.dtype)
    tol = dict(TOL[dtype], **override)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, **tol)


def strided(a: np.ndarray) -> np.ndarray:
    """The same values as ``a`` in a non-contiguous view (every other element of a bigger buffer)."""
    a = np.asarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],) if a.ndim else (2,), dtype=a.dtype)
    view = big[..., ::2] if a.ndim else big[::2][0:1].reshape(())
    view[...] = a
    assert a.ndim == 0 or a.size <= 1 or not view.flags.c_contiguous
    return view


@contextlib.contextmanager
def num_threads(n: int):
    """Run a block with fastnn using n threads, restoring the previous count."""
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(n)
    try:
        yield
    finally:
        fastnn.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)
