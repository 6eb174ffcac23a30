/* schedule.c — how a product's tiles are shared out over the team.
 *
 * static:  each thread owns a rectangle of C fixed before the product starts
 *          (gemm_job_run); the product runs at the pace of its slowest thread.
 * dynamic: threads claim macro-tiles of C from a shared counter
 *          (gemm_tiles_run), so a thread on a free core takes the tiles of one
 *          that shares its core with another process.
 * Both compute every element with the same operations in the same order, so
 * the results are bitwise identical. FASTNN_GEMM_SCHEDULE=static|dynamic (or
 * FASTNN_TUNING's gemm_schedule, tuning.h) sets the start-up choice;
 * fnn_gemm_set_schedule switches it (tests, benchmarks). */
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"

int fnn_gemm_sched = -1;
int fnn_gemm_delay_tid = -1;
int64_t fnn_gemm_delay_us = 0;
static int64_t fnn_gemm_delays = 0; /* delays taken since the hook was set (tests read it) */

static int sched_of_name(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "static"))
        return FNN_SCHED_STATIC;
    if (!strcmp(name, "dynamic"))
        return FNN_SCHED_DYNAMIC;
    return -1;
}

int fnn_gemm_schedule(void)
{
    if (fnn_gemm_sched < 0) /* the start-up choice: tuning.h (FASTNN_GEMM_SCHEDULE) */
        fnn_gemm_sched = fnn_tuning()->gemm_schedule ? FNN_SCHED_DYNAMIC : FNN_SCHED_STATIC;
    return FNN_HAVE_GEMM_DYNAMIC ? fnn_gemm_sched : FNN_SCHED_STATIC;
}

const char *fnn_gemm_schedule_name(void)
{
    return fnn_gemm_schedule() == FNN_SCHED_DYNAMIC ? "dynamic" : "static";
}

int fnn_gemm_set_schedule(const char *name)
{
    const int s = sched_of_name(name);
    if (s < 0)
        return -2;
    if (s == FNN_SCHED_DYNAMIC && !FNN_HAVE_GEMM_DYNAMIC)
        return -1;
    fnn_gemm_sched = s;
    return 0;
}

void fnn_gemm_test_delay(int tid, int64_t us)
{
    fnn_gemm_delay_us = us > 0 ? us : 0;
    fnn_gemm_delay_tid = us > 0 ? tid : -1;
    fnn_gemm_delays = 0;
}

int64_t fnn_gemm_test_delays(void)
{
    return fnn_gemm_delays;
}

void fnn_gemm_delay_now(void)
{
    const int64_t us = fnn_gemm_delay_us;
    if (us <= 0)
        return;
#if defined(_OPENMP)
#pragma omp atomic
#endif
    fnn_gemm_delays++;
    fnn_sleep_us(us);
}
