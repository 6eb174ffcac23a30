# _tuning.pxi — the tuning table (src_c/tuning.h): every threshold and block size the kernels read.

cdef extern from "tuning.h":
    ctypedef struct fnn_tuning_row:
        const char *name
        int64_t value
        const char *value_name
        const char *source
        int changes_bits
    int fnn_tuning_row_at(int i, fnn_tuning_row *out)

cdef extern from "cpu.h":
    int fnn_cpu_avx2()
    int fnn_cpu_kernels()
    int FNN_KERNELS_AVX512


def plan_kernels():
    """The build the plans' direct loops (and vmath) run: 'avx2+fma' when the kernel set in use
    (src_c/cpu.h) is avx2, 'avx512+avx2' when it is avx512 (the products in 64-byte vectors,
    the rest in the AVX2 build), else 'portable'. Read when a plan is compiled."""
    if fnn_cpu_kernels() == FNN_KERNELS_AVX512:
        return "avx512+avx2"
    return "avx2+fma" if fnn_cpu_avx2() else "portable"


def tuning():
    """The tuning table, fixed at start-up: ``values`` (name -> value; the GEMM schedule by
    name), ``overridden`` (name -> the environment variable that set it: FASTNN_TUNING,
    FASTNN_GEMM_BLOCKS or FASTNN_GEMM_SCHEDULE), ``from_cpu`` (the cache sizes detected) and
    ``changes_results`` (the fields whose value changes summation order; the others only move
    work between threads or equivalent code paths). gemm_mc/kc/nc 0 means "from the caches"."""
    cdef fnn_tuning_row row
    cdef int i = 0
    values, overridden, from_cpu, changes = {}, {}, [], []
    while fnn_tuning_row_at(i, &row) == 0:
        name = row.name.decode()
        values[name] = row.value_name.decode() if row.value_name != NULL else int(row.value)
        source = row.source.decode()
        if source == "cpu":
            from_cpu.append(name)
        elif source != "default":
            overridden[name] = source
        if row.changes_bits:
            changes.append(name)
        i += 1
    return {"values": values, "overridden": overridden, "from_cpu": from_cpu, "changes_results": changes}
