/* fma_peak.h — the timed FMA-ceiling probe (fma_peak.c); fnn_fma_peak_run and
 * fnn_fma_peak_flops_per_iter are declared in gemm.h. */
#ifndef FASTNN_FMA_PEAK_H
#define FASTNN_FMA_PEAK_H
#include <stdint.h>

/* iters chain steps on each of nthreads threads started together, each timing
 * its own loop into seconds[0..nthreads) (wall) and cpu_seconds[0..nthreads)
 * (the thread's CPU time); returns the team size that ran. */
int fnn_fma_peak_timed(int64_t iters, int nthreads, double *seconds, double *cpu_seconds, float *sink);

#endif
