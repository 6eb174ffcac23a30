/* fma_peak.c — the machine's multiply-add ceiling, measured.
 *
 * Benchmarks quote achieved GFLOP/s against this: every thread of the team
 * runs independent chains of vector FMAs on registers (no memory traffic),
 * enough chains to cover the FMA latency on two pipes, with the vector width
 * of the active kernel set. A figure read off the running machine, not a
 * datasheet's clock × width, so a VM's real clock and sharing are in it. */
#include "gemm_internal.h"
#include "fma_peak.h"

#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PEAK_CHAINS 12

#if FNN_HAVE_X86_KERNELS
#include <immintrin.h>

/* PEAK_CHAINS independent a = a·m + c chains of one vector width; the sum of
 * the results is returned so the work is not optimised away. */
#define DEFINE_CHAINS(NAME, ATTR, VEC, SET1, FMADD, ADD, TO_FLOAT)                          \
    ATTR static float NAME(int64_t iters)                                                  \
    {                                                                                      \
        VEC acc[PEAK_CHAINS];                                                              \
        const VEC mul = SET1(0.999999f), add = SET1(1e-7f);                                \
        for (int c = 0; c < PEAK_CHAINS; c++)                                              \
            acc[c] = SET1((float)c);                                                       \
        for (int64_t it = 0; it < iters; it++) {                                           \
            _Pragma("GCC unroll 12") for (int c = 0; c < PEAK_CHAINS; c++)                 \
                acc[c] = FMADD(acc[c], mul, add);                                          \
        }                                                                                  \
        VEC s = acc[0];                                                                    \
        for (int c = 1; c < PEAK_CHAINS; c++)                                              \
            s = ADD(s, acc[c]);                                                            \
        return TO_FLOAT(s);                                                                \
    }

DEFINE_CHAINS(chains_avx2, FNN_TARGET_AVX2, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
              _mm256_cvtss_f32)
DEFINE_CHAINS(chains_avx512, FNN_TARGET_AVX512, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
              _mm512_reduce_add_ps)
#undef DEFINE_CHAINS
#endif

static float chains_portable(int64_t iters)
{
    float acc[PEAK_CHAINS];
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = (float)c;
    for (int64_t it = 0; it < iters; it++)
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = acc[c] * 0.999999f + 1e-7f;
    float s = 0;
    for (int c = 0; c < PEAK_CHAINS; c++)
        s += acc[c];
    return s;
}

/* Multiply-adds per chain step (vector lanes) of the active set. */
static int lanes_f32(int id)
{
    return id == FNN_KERNELS_AVX512 ? 16 : id == FNN_KERNELS_AVX2 ? 8 : 1;
}

int64_t fnn_fma_peak_flops_per_iter(void)
{
    return 2 * PEAK_CHAINS * (int64_t)lanes_f32(fnn_gemm_active()->id);
}

/* Run `iters` chain steps on every thread of the team; returns the number of
 * threads that ran (the caller times the call: flops = threads · iters ·
 * fnn_fma_peak_flops_per_iter()). `sink` receives a result so the work stays. */
int fnn_fma_peak_run(int64_t iters, float *sink)
{
    const int id = fnn_gemm_active()->id;
    int team = 1;
    float total = 0;
    FNN_PRAGMA(omp parallel reduction(+ : total) num_threads(fnn_get_num_threads()))
    {
#ifdef _OPENMP
        FNN_PRAGMA(omp single)
        team = omp_get_num_threads();
#endif
#if FNN_HAVE_X86_KERNELS
        if (id == FNN_KERNELS_AVX512)
            total += chains_avx512(iters);
        else if (id == FNN_KERNELS_AVX2)
            total += chains_avx2(iters);
        else
#endif
            total += chains_portable(iters);
    }
    (void)id;
    *sink = total;
    return team;
}

static double now_s(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* The calling thread's CPU time (POSIX), or wall time where there is none:
 * preemption on a busy machine stops this clock, so a loop's rate by it is
 * the core's rate while the thread ran. */
static double thread_cpu_s(void)
{
#if defined(CLOCK_THREAD_CPUTIME_ID)
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
    return now_s();
}

static float chains_active(int id, int64_t iters)
{
#if FNN_HAVE_X86_KERNELS
    if (id == FNN_KERNELS_AVX512)
        return chains_avx512(iters);
    if (id == FNN_KERNELS_AVX2)
        return chains_avx2(iters);
#endif
    (void)id;
    return chains_portable(iters);
}

/* `iters` chain steps on each of `nthreads` threads, started together (a
 * barrier after the fork, so the fork's cost and a late thread are not in the
 * figure) and each timing its own loop: seconds[t] gets thread t's time
 * and cpu_seconds[t] its CPU time (both have nthreads entries). Returns the
 * team size that ran; the all-core rate is team · iters · flops_per_iter /
 * max(seconds). */
int fnn_fma_peak_timed(int64_t iters, int nthreads, double *seconds, double *cpu_seconds, float *sink)
{
    const int id = fnn_gemm_active()->id;
    int team = 1;
    float total = 0;
    if (nthreads < 1)
        nthreads = 1;
    for (int t = 0; t < nthreads; t++)
        seconds[t] = cpu_seconds[t] = 0;
    FNN_PRAGMA(omp parallel reduction(+ : total) num_threads(nthreads))
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        FNN_PRAGMA(omp single)
        team = omp_get_num_threads();
        /* omp single ends with a barrier: every thread starts here together */
#endif
        const double t0 = now_s(), c0 = thread_cpu_s();
        total += chains_active(id, iters);
        cpu_seconds[tid] = thread_cpu_s() - c0;
        seconds[tid] = now_s() - t0;
    }
    *sink = total;
    return team;
}
