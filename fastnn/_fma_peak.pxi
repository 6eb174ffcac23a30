# _fma_peak.pxi — the machine's FMA ceiling, single-core and all-core, with a quiet check
# (src_c/gemm/fma_peak.c).

from libc.stdlib cimport malloc, free

cdef extern from "gemm/fma_peak.h" nogil:
    int fnn_fma_peak_timed(int64_t iters, int nthreads, double *seconds, double *cpu_seconds, float *sink)


cdef tuple _fma_run(int64_t iters, int nthreads, double *secs, double *cpu, int64_t flops_per_iter):
    """(wall, cpu) GFLOP/s of one timed run on nthreads threads: all the threads' work over
    the slowest thread's time (they start together, after the fork)."""
    cdef float sink = 0
    cdef int team
    with nogil:
        team = fnn_fma_peak_timed(iters, nthreads, secs, cpu, &sink)
    cdef double slow_wall = 0, slow_cpu = 0
    for t in range(team):
        slow_wall = max(slow_wall, secs[t])
        slow_cpu = max(slow_cpu, cpu[t])
    flops = <double>team * iters * flops_per_iter / 1e9
    return (flops / slow_wall if slow_wall > 0 else 0.0, flops / slow_cpu if slow_cpu > 0 else 0.0,
            slow_wall)


def fma_peak(double seconds=0.3, int runs=7, threads=None):
    """The float32 multiply-add ceiling of this machine, GFLOP/s, measured now: independent
    FMA chains on registers (no memory traffic) with the active kernel set's vector width.

    Runs alternate between one thread and ``threads`` threads (default: fastnn's thread
    count — all cores when that is the core count), ``runs`` timed runs each, every thread
    timing its own loop after a common start so the OpenMP fork is not in the figure.
    Returns a dict:
      ``single_core``, ``all_core`` — best run by wall-clock time (the ceiling to quote on a
      quiet machine), with ``threads``;
      ``single_core_cpu``, ``all_core_cpu`` — best run by each thread's CPU time (preemption
      stops that clock: a steadier figure on a busy machine);
      ``single_core_runs``, ``all_core_runs`` — every run (wall);
      ``single_core_spread``, ``all_core_spread`` — (best − median) / best over the runs;
      ``load_average`` — (1, 5, 15 min) before and after;
      ``quiet`` — both spreads under 5% and the wall and CPU figures within 5%;
      ``kernels`` — the kernel set measured."""
    if not seconds > 0:
        raise ValueError(f"seconds: expected a positive duration, got {seconds!r}")
    if runs < 1:
        raise ValueError(f"runs: expected at least 1, got {runs!r}")
    cdef int nt = fnn_get_num_threads() if threads is None else int(threads)
    if nt < 1:
        raise ValueError(f"threads: expected at least 1, got {threads!r}")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    cdef double *secs = <double *>malloc(sizeof(double) * nt)
    cdef double *cpu = <double *>malloc(sizeof(double) * nt)
    if secs == NULL or cpu == NULL:
        free(secs)
        free(cpu)
        raise MemoryError()
    cdef int64_t fpi = fnn_fma_peak_flops_per_iter()
    cdef int64_t iters = 1 << 12
    cdef double per_run = seconds / (2.0 * runs)
    single, multi = [], []
    try:
        while True:  # size one run to ~per_run seconds on one thread
            wall = _fma_run(iters, 1, secs, cpu, fpi)[2]
            if wall >= per_run or iters >= (1 << 40):
                break
            iters *= 2
        for _ in range(runs):
            single.append(_fma_run(iters, 1, secs, cpu, fpi))
            multi.append(_fma_run(iters, nt, secs, cpu, fpi))
    finally:
        free(secs)
        free(cpu)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    def spread(v):
        best = max(v)
        med = sorted(v)[len(v) // 2]
        return (best - med) / best if best > 0 else float("nan")

    s_wall, m_wall = [r[0] for r in single], [r[0] for r in multi]
    s_cpu, m_cpu = max(r[1] for r in single), max(r[1] for r in multi)
    agree = max(s_wall) >= 0.95 * s_cpu and max(m_wall) >= 0.95 * m_cpu
    return {
        "single_core": max(s_wall), "all_core": max(m_wall), "threads": nt,
        "single_core_cpu": s_cpu, "all_core_cpu": m_cpu,
        "single_core_runs": s_wall, "all_core_runs": m_wall,
        "single_core_spread": spread(s_wall), "all_core_spread": spread(m_wall),
        "load_average": (load_before, load_after),
        "quiet": spread(s_wall) < 0.05 and spread(m_wall) < 0.05 and agree,
        "kernels": gemm_kernel_name(),
    }
