# _threads.pxi — thread count and build facts.

cdef extern from "common.h":
    int fnn_get_num_threads() nogil
    void fnn_set_num_threads(int n) nogil
    int fnn_has_openmp() nogil
    int64_t FNN_PAR_MIN_WORK
    int64_t FNN_COST_ARITH
    int64_t FNN_COST_TRANSCENDENTAL

cdef extern from "gemm/gemm_internal.h":
    double FNN_GEMM_PAR_MIN_WORK


def get_num_threads():
    """Threads each parallel kernel uses (1 in a serial build)."""
    return fnn_get_num_threads()


def max_num_threads():
    """The largest count set_num_threads accepts: 4 threads per logical CPU, at least 64.
    More only oversubscribes the cores, and an OpenMP runtime that fails to create a
    huge team aborts the process instead of raising."""
    import os
    return max(64, 4 * (os.cpu_count() or 1))


def set_num_threads(n):
    """Set the thread count for all fastnn kernels (1 <= n <= max_num_threads())."""
    if isinstance(n, bool) or not isinstance(n, int):
        import numpy
        if not isinstance(n, numpy.integer):
            raise TypeError(f"n: expected an integer thread count, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a thread count >= 1, got {n}")
    if n > max_num_threads():
        raise ValueError(f"n: expected at most {max_num_threads()} threads, got {n}")
    fnn_set_num_threads(n)


def parallel_thresholds():
    """When kernels fork their thread team: an elementwise pass of n elements that cost c cheap
    passes each runs on every thread when n·c >= "elementwise" (c = 1, "arith" for divisions,
    square roots or hashing, "transcendental" for exp/log/erf/tanh); a product of m·n·k
    multiply-adds when that is >= "gemm". Below, the calling thread does it alone."""
    return {"elementwise": int(FNN_PAR_MIN_WORK), "arith": int(FNN_COST_ARITH),
            "transcendental": int(FNN_COST_TRANSCENDENTAL), "gemm": int(FNN_GEMM_PAR_MIN_WORK)}


def has_openmp():
    """True when the extension was built with OpenMP."""
    return bool(fnn_has_openmp())


cdef extern from "team.h":
    void fnn_team_stats(int64_t *regions, int64_t *jobs) nogil
    void fnn_team_test_delay(int tid, int64_t us) nogil

cdef extern from "plan.h":
    void fnn_plan_set_team_mode(int mode) nogil
    int fnn_plan_team_mode() nogil

_TEAM_MODES = ("off", "auto", "always")


def plan_team_mode(mode=None):
    """The plans' persistent-team mode, and set it when ``mode`` is given: 'auto' (default: a
    plan call whose steps have enough parallel work runs them in one parallel region instead of
    forking per product), 'off' (fork per product, as the kernels do alone) or 'always' (a team
    whenever a step has anything to split). The results are the same bits in every mode; for
    tests and benchmarks, not thread-safe with running plans. Returns the mode before the call."""
    old = _TEAM_MODES[fnn_plan_team_mode()]
    if mode is not None:
        if mode not in _TEAM_MODES:
            raise ValueError(f"mode: expected one of {_TEAM_MODES}, got {mode!r}")
        fnn_plan_set_team_mode(_TEAM_MODES.index(mode))
    return old


def team_stats():
    """(regions, jobs): persistent teams opened by plan calls, and the jobs posted to them,
    since the library loaded."""
    cdef int64_t regions = 0, jobs = 0
    fnn_team_stats(&regions, &jobs)
    return int(regions), int(jobs)


def _team_test_delay(int thread_id, int64_t microseconds):
    """Test hook: helper ``thread_id`` (>= 1) of a plan's team sleeps this long before joining
    each job it sees (0 turns it off), so thread 0 does most chunks itself."""
    if microseconds < 0:
        raise ValueError(f"microseconds: must be >= 0, got {microseconds}")
    fnn_team_test_delay(thread_id, microseconds)
