/* threads.c — the one thread-count setting all fastnn parallel regions share.
 *
 * fnn_set_num_threads(n) records n for every calling thread (a Python thread
 * that trains a second model sees the same setting) and also sets the OpenMP
 * runtime's own value, so threadpoolctl reports it. The effective count is
 * the smaller of ours and the runtime's, so threadpoolctl's limits (which call
 * omp_set_num_threads) still apply after an explicit fnn_set_num_threads. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#endif
#include "common.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <time.h>
#endif

static int fnn_num_threads = 0; /* 0: not set, follow the OpenMP runtime */

int fnn_get_num_threads(void)
{
#ifdef _OPENMP
    /* Inside a parallel region (a plan's team, team.h) kernels run on the calling thread:
     * their own regions would only nest, or oversubscribe the cores. */
    if (omp_in_parallel())
        return 1;
    int runtime = omp_get_max_threads();
    int n = fnn_num_threads;
    return (n > 0 && n < runtime) ? n : runtime;
#else
    return 1;
#endif
}

void fnn_set_num_threads(int n)
{
#ifdef _OPENMP
    fnn_num_threads = n > 0 ? n : 0;
    if (n > 0)
        omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int fnn_has_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

void fnn_sleep_us(int64_t us)
{
    if (us <= 0)
        return;
#if defined(_WIN32)
    Sleep((DWORD)((us + 999) / 1000));
#else
    struct timespec ts;
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000L;
    nanosleep(&ts, NULL);
#endif
}
