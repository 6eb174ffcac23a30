# _threads.pxi — thread count and build facts.

cdef extern from "common.h":
    int fnn_get_num_threads() nogil
    void fnn_set_num_threads(int n) nogil
    int fnn_has_openmp() nogil


def get_num_threads():
    """Threads each parallel kernel uses (1 in a serial build)."""
    return fnn_get_num_threads()


def set_num_threads(int n):
    """Set the thread count for all fastnn kernels (n >= 1)."""
    if n < 1:
        raise ValueError(f"n: expected a thread count >= 1, got {n}")
    fnn_set_num_threads(n)


def has_openmp():
    """True when the extension was built with OpenMP."""
    return bool(fnn_has_openmp())
